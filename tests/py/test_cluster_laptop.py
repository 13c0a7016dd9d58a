"""From the laptop (issue 25): `galyleo --host login ...` in this machine's root namespace,
through the harness's gateway (a bastion asking the laptop's key, then a real TOTP code
through PAM), with GALYLEO_SSH_CONFIG=$LAPTOP_SSH_CONFIG and the code fed by SSH_ASKPASS (a
script that counts its calls). One laptop HOME for the module: one shared login, so a launch
in each connection mode, list, open and stop together ask for the code once. Then the ssh-mode
tunnel serves JupyterLab and a kernel, Ctrl-C leaves the session running, `open` reopens it,
`--stop-on-exit` ends it; a wrong code and a changed host key are ssh's refusals.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from typing import Dict, Iterator, List

import pytest
from cluster import REPO, Browser, Cluster, harness_env, wait_for_page
from test_cluster_ssh import run_code_through

pytestmark = pytest.mark.cluster
SSH_SESSIONS: List[str] = []  # the ssh-mode session the first test leaves running, reopened by the next


class Laptop:
    """galyleo run on the laptop as the user would, with its own HOME (ssh control folder)."""

    def __init__(self, cluster: Cluster, env: Dict[str, str], code_command: str) -> None:
        self.cluster = cluster
        self.home = tempfile.mkdtemp(prefix="lap", dir="/tmp")  # short: it holds a socket's path
        self.count = os.path.join(self.home, "askpass.count")
        askpass = os.path.join(self.home, "askpass")
        with open(askpass, "w") as handle:
            handle.write(f"#!/bin/sh\necho \"$*\" >>'{self.count}'\nexec {code_command}\n")
        os.chmod(askpass, 0o700)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("GALYLEO_", "SBATCH_", "SLURM_"))}
        self.env.update(HOME=self.home, SSH_ASKPASS=askpass, SSH_ASKPASS_REQUIRE="force",
                        GALYLEO_SSH_CONFIG=env["LAPTOP_SSH_CONFIG"], GALYLEO_REMOTE_GALYLEO=cluster.pyz)
        self.env.pop("DISPLAY", None)
        if os.environ.get("GALYLEO_E2E_CHECKOUT"):
            self.head = ["/usr/bin/python3", "-m", "galyleo"]
            self.env["PYTHONPATH"] = REPO + ":" + os.path.join(REPO, ".venv", "lib", "python3.11", "site-packages")
        else:
            self.head = ["/usr/bin/python3", os.path.join(REPO, "dist", "galyleo.pyz")]

    def argv(self, *args: str) -> List[str]:
        return self.head + ["--host", self.cluster.login, *args]

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(self.argv(*args), env=self.env, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)

    def start(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen(self.argv(*args), env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, text=True, start_new_session=True)

    def codes_asked(self) -> int:
        return len(open(self.count).read().splitlines()) if os.path.exists(self.count) else 0

    def close(self) -> None:
        for sock in os.listdir(os.path.join(self.home, ".galyleo", "ssh")) if os.path.isdir(
                os.path.join(self.home, ".galyleo", "ssh")) else []:
            if not sock.endswith(".log"):
                subprocess.run(["ssh", "-o", f"ControlPath={self.home}/.galyleo/ssh/{sock}", "-O", "exit", "x"],
                               capture_output=True, timeout=10)
        shutil.rmtree(self.home, ignore_errors=True)


@pytest.fixture(scope="module")
def laptop() -> Iterator[Laptop]:
    env = harness_env()
    missing = [k for k in ("LAPTOP_SSH_CONFIG", "GATEWAY_OTP_COMMAND", "GATEWAY_PUBLIC_ADDR") if not env.get(k)]
    if missing:
        pytest.fail(f"the harness has no gateway (env.sh lacks {', '.join(missing)}): run `make harness`")
    cluster = Cluster(env)
    cluster.install_pyz()
    found = Laptop(cluster, env, env["GATEWAY_OTP_COMMAND"])
    yield found
    found.close()
    for job in SSH_SESSIONS:
        cluster.cancel(job)


def url_of(proc: subprocess.Popen, timeout: float = 120) -> str:
    """The local URL a holding galyleo prints last (it keeps running)."""
    deadline = time.time() + timeout
    lines = []
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"galyleo ended ({proc.wait()}): {''.join(lines)} {proc.stderr.read()}")
        lines.append(line)
        if line.startswith("http://127.0.0.1:"):
            return line.strip()
    raise AssertionError(f"no local URL within {timeout} s: {''.join(lines)}")


def interrupt(proc: subprocess.Popen) -> subprocess.CompletedProcess:
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def port_closed(url: str) -> bool:
    try:
        Browser().get(url, timeout=5)
    except OSError:
        return True
    return False


def test_both_modes_list_open_stop_ask_for_the_code_once(laptop: Laptop) -> None:
    cluster = laptop.cluster
    sat = laptop.run("launch", "-e", cluster.module, "-t", "00:10:00")
    assert sat.returncode == 0, sat.stderr
    url = sat.stdout.strip().splitlines()[-1]
    job = sat.stdout.split("Submitted batch job ", 1)[1].split()[0]
    assert url.startswith("https://") and "?token=" in url
    listed = laptop.run("list")
    assert listed.returncode == 0 and job in listed.stdout, listed
    opened = laptop.run("open", job)
    assert opened.returncode == 0 and opened.stdout.strip().splitlines()[-1] == url, opened
    missing = laptop.run("--remote-galyleo", "/nonexistent/galyleo", "list")
    assert missing.returncode == 1 and "no galyleo at '/nonexistent/galyleo'" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1, missing.stderr

    holder = laptop.start("launch", "--connect", "ssh", "-e", cluster.module, "-t", "00:10:00")
    local = url_of(holder)
    try:
        token = local.split("token=", 1)[1]
        port = local.split(":")[2].split("/")[0]
        browser = wait_for_page(local, "JupyterLab")
        assert run_code_through(local, browser, "print(6*7)") == "42\n"
        for pid in (p for p in os.listdir("/proc") if p.isdigit()):  # what anyone's `ps` shows
            try:
                argv = open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace")
            except OSError:
                continue
            assert token not in argv and f":{port}" not in argv, (pid, argv)
    finally:
        closed = interrupt(holder)
    assert closed.returncode == 0, closed.stderr
    ssh_job = closed.stderr.split("session ", 1)[1].split()[0]
    SSH_SESSIONS.append(ssh_job)
    assert f"galyleo --host {cluster.login} open {ssh_job}" in closed.stderr
    assert cluster.job_state(ssh_job) == "RUNNING" and port_closed(local)

    stopped = laptop.run("stop", job)
    assert stopped.returncode == 0 and f"stopped job {job}" in stopped.stdout, stopped
    assert laptop.codes_asked() == 1, open(laptop.count).read()


def test_open_reopens_the_tunnel_and_stop_on_exit_ends_the_session(laptop: Laptop) -> None:
    if not SSH_SESSIONS:
        pytest.skip("needs the ssh-mode session the test before leaves running")
    job = SSH_SESSIONS[0]
    holder = laptop.start("open", job, "--stop-on-exit")
    local = url_of(holder)
    try:
        wait_for_page(local, "JupyterLab")
    finally:
        closed = interrupt(holder)
    assert closed.returncode == 0 and f"stopped job {job}" in closed.stdout, closed
    laptop.cluster.wait_job_gone(job)
    assert laptop.codes_asked() == 1


def test_a_wrong_code_is_refused_and_nothing_is_launched(laptop: Laptop) -> None:
    wrong = Laptop(laptop.cluster, harness_env(), "echo 000000")
    try:
        before = laptop.cluster.squeue()
        done = wrong.run("launch", "-e", laptop.cluster.module, "-t", "00:10:00", timeout=60)
        # ssh's refusal: with ControlPersist, OpenSSH sends the jump host's own words to /dev/null
        assert done.returncode == 255 and "Connection closed" in done.stderr, done
        assert done.stderr.strip().splitlines()[-1].endswith("could not log in to login (ssh exit status 255)")
        assert wrong.codes_asked() >= 1 and laptop.cluster.squeue() == before
    finally:
        wrong.close()


def test_a_changed_host_key_is_refused(laptop: Laptop) -> None:
    env = harness_env()
    changed = Laptop(laptop.cluster, env, env["GATEWAY_OTP_COMMAND"])
    try:
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{changed.home}/other"], check=True)
        other_key = " ".join(open(f"{changed.home}/other.pub").read().split()[:2])
        known = os.path.join(changed.home, "known_hosts")
        with open(env["LAPTOP_SSH_CONFIG"].replace("laptop_ssh_config", "laptop_known_hosts")) as handle:
            lines = [line if not line.startswith(f"{laptop.cluster.login},") else
                     f"{line.split()[0]} {other_key}\n" for line in handle]
        with open(known, "w") as handle:
            handle.writelines(lines)
        config = os.path.join(changed.home, "ssh_config")
        with open(config, "w") as handle:  # the first value wins: our known_hosts before the harness's
            handle.write(f"UserKnownHostsFile {known}\nInclude {env['LAPTOP_SSH_CONFIG']}\n")
        changed.env["GALYLEO_SSH_CONFIG"] = config
        done = changed.run("list", timeout=60)
        assert done.returncode == 255 and "REMOTE HOST IDENTIFICATION HAS CHANGED" in done.stderr, done
        assert f"could not log in to {laptop.cluster.login}" in done.stderr.strip().splitlines()[-1]
    finally:
        changed.close()
