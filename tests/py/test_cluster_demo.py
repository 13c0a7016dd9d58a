"""`make demo` on the cluster, and the way from it to daily use (`make demo-shell`, the
site config beside the pyz); `make demo-ssh` (ssh-tunnel mode) from the laptop as printed;
the harness's own hygiene (jupyter-up leaves nothing in the test user's home; satellite-up
from another clone leaves the stand-in and its sessions alone).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from cluster import HARNESS_ROOT, REPO, Browser, Cluster, harness_env, sat, wait_for_page
from faultkit import wait_alias_gone

pytestmark = pytest.mark.cluster
HARNESS = os.path.join(REPO, "tests", "harness")


@pytest.fixture(scope="module")
def cluster() -> Cluster:
    return Cluster(harness_env())


def demo_shell(commands: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", os.path.join(HARNESS, "demo-shell")], input=commands, capture_output=True,
                          text=True, timeout=120)


def test_demo_prints_a_url_and_the_command_that_opens_it_here(cluster: Cluster) -> None:
    done = subprocess.run(["bash", os.path.join(HARNESS, "demo")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    job = re.search(r"Submitted batch job (\d+)", done.stdout).group(1)
    url = re.search(r"^  (https://\S+)$", done.stdout, re.M).group(1)
    alias = url.split("//")[1].split(".")[0]
    try:
        # While it runs, the demo shows it again instead of leaving a second one-hour session.
        again = subprocess.run(["bash", os.path.join(HARNESS, "demo")], capture_output=True, text=True, timeout=300)
        assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
        assert f"job {job}, still runs" in again.stdout and f"  {url}\n" in again.stdout, again.stdout
        assert [line for line in cluster.squeue() if line.split()[0] == job] and again.stdout.count("Submitted") == 1
        assert f"printf 'galyleo stop {job}\\n' | make demo-shell" in again.stdout
        # The exact command printed for the laptop opens JupyterLab from here.
        opener = next(line.strip() for line in done.stdout.splitlines() if line.strip().startswith("curl --cacert"))
        assert f":443:{cluster.env['PROXY_PUBLIC_ADDR']}" in opener
        page = subprocess.run(shlex.split(opener), capture_output=True, text=True, timeout=30)
        assert "JupyterLab" in page.stdout, page.stdout[:500]
        assert url.split("token=")[1] not in opener  # the token stays in the 0600 file
        # The site config a site would set: no `module reset` warning in the job.
        output = open(re.search(r"^Job output: (\S+)$", done.stdout, re.M).group(1)).read()
        assert "galyleo" in output and "warning: 'module" not in output and "LMOD_SYSTEM_DEFAULT" not in output
        # From the demo to daily use: the README's commands, as written, on login.
        shell = demo_shell(f"hostname; id -un; command -v galyleo; galyleo status {job}; galyleo stop {job}\n")
        assert shell.returncode == 0, shell.stderr
        lines = shell.stdout.splitlines()
        assert lines[:3] == ["login", cluster.user, os.path.join(HARNESS_ROOT, "bin", "galyleo")], lines
        assert "RUNNING" in shell.stdout and f"stopped job {job}" in shell.stdout, shell.stdout
        assert "warning: no site config" not in shell.stderr
    finally:
        subprocess.run([os.path.join(HARNESS, "on"), "login", "scancel", job], check=False)
    wait_alias_gone(alias)
    assert sat.destroy_count(alias) == 1


def test_demo_ssh_prints_a_tunnel_that_opens_the_session_here(cluster: Cluster) -> None:
    done = subprocess.run(["bash", os.path.join(HARNESS, "demo"), "ssh"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    job = re.search(r"Submitted batch job (\d+)", done.stdout).group(1)
    try:
        # The ssh command and the URL exactly as printed, run on the laptop (this shell).
        line = next(line.strip() for line in done.stdout.splitlines() if line.strip().startswith("ssh -i "))
        assert f"-i {cluster.env['LAPTOP_SSH_KEY']} " in line and f"@{cluster.env['LOGIN_PUBLIC_ADDR']}" in line
        url = re.search(r"^  (http://127\.0\.0\.1:\S+)$", done.stdout, re.M).group(1)
        tunnel = subprocess.Popen(shlex.split(line), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        try:
            wait_for_page(url, "JupyterLab", timeout=60)
        finally:
            tunnel.terminate()
            tunnel.wait(timeout=10)
        stop = re.search(r"printf '(galyleo stop \d+)\\n' \| make demo-shell", done.stdout).group(1)
        shell = demo_shell(stop + "\n")
        assert f"stopped job {job}" in shell.stdout, shell.stdout + shell.stderr
    finally:
        subprocess.run([os.path.join(HARNESS, "on"), "login", "scancel", job], check=False)


def satellite_up(harness: Path) -> None:
    done = subprocess.run(["bash", str(harness / "satellite-up")], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


def test_satellite_up_from_another_clone_keeps_the_stand_in_and_its_sessions(cluster: Cluster, tmp_path: Path) -> None:
    cluster.install_pyz()
    mine = Path(HARNESS)
    satellite_up(mine)  # this checkout's stand-in runs (it may restart once, from an older one)
    launched = cluster.launch()
    try:
        wait_for_page(launched.url, "JupyterLab")
        pid = sat._control("GET", "/health")["pid"]
        clone = tmp_path / "harness"
        shutil.copytree(mine, clone, copy_function=shutil.copy)  # a newer clone: the same files, newer dates
        os.utime(clone / "satellite_standin.py")
        satellite_up(clone)
        assert sat._control("GET", "/health")["pid"] == pid
        # What it serves changed: a restart, with the session's alias and route kept.
        with open(clone / "satellite_standin.py", "a") as handle:
            handle.write("# another version\n")
        satellite_up(clone)
        assert sat._control("GET", "/health")["pid"] != pid
        assert sat.alias_record(launched.alias)["state"] == "proxied"
        assert Browser().get(launched.url)[0] == 200
    finally:
        satellite_up(mine)
        cluster.cancel(launched.job_id)
    # The job's own destroy reaches the restarted stand-in, which knows its alias.
    cluster.wait_job_gone(launched.job_id)
    wait_alias_gone(launched.alias)
    assert sat.destroy_count(launched.alias, succeeded=True) == 1


def test_demo_shell_finds_the_site_config_beside_the_pyz(cluster: Cluster) -> None:
    shell = demo_shell("galyleo config show\n")
    assert shell.returncode == 0, shell.stderr
    site = os.path.join(HARNESS_ROOT, "galyleo.toml")
    assert re.search(rf"module_reset\s+\"?purge\"?.*site file {re.escape(site)}", shell.stdout), shell.stdout
    assert os.access(os.path.join(HARNESS_ROOT, "galyleo.pyz"), os.X_OK)


def test_jupyter_up_leaves_nothing_in_the_users_home(cluster: Cluster) -> None:
    stray = os.path.join(cluster.home, "@INIT@1")
    if os.path.exists(stray):
        os.remove(stray)
    before = set(os.listdir(cluster.home))
    done = subprocess.run(["bash", os.path.join(HARNESS, "jupyter-up")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert set(os.listdir(cluster.home)) - before == set()
    log = open(os.path.join(HARNESS_ROOT, "logs", "jupyter-up.log")).read()
    last = log[log.rindex("=== jupyter-up"):]
    assert "type module >/dev/null 2>&1 || . " in last and "@INIT@" not in last, last[-3000:]
