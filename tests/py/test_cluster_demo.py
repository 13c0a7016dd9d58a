"""`make demo` on the cluster, and the way from it to daily use (`make demo-shell`, the
site config beside the pyz); the harness's own hygiene (jupyter-up leaves nothing in
the test user's home).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess

import pytest
from cluster import HARNESS_ROOT, REPO, Cluster, harness_env, sat
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
