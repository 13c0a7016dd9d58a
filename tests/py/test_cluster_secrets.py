"""Secrets stay secret in a real session on the local cluster: the token in no process's argv and
no Satellite call, refused to a second unprivileged user dialling the port directly, and held
only by private files (the record, Jupyter's runtime files). The fast tier's side is test_secrets.py.
Needs `make harness`; skip with -m "not cluster".
"""

from __future__ import annotations

import json
import os
import pwd
import stat
import subprocess

import pytest


@pytest.fixture(scope="module")
def cluster():
    from cluster import Cluster, harness_env

    c = Cluster(harness_env())
    c.install_pyz()
    return c


def second_user() -> str:
    name = "galytest2"
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", name], check=True)
    return name


@pytest.mark.cluster
def test_a_real_session_keeps_its_token_secret(cluster) -> None:
    from cluster import Launched, assert_refused_to, run_code, sat, slurm, wait_for_page
    from faultkit import launched, run, wait_alias_gone, wait_alias_state, wait_no_jobs

    home = cluster.fresh_home()
    done = run(cluster, home, "launch", "-e", cluster.module, "-t", "00:10:00")
    session = launched(done)
    token = session["url"].split("token=")[1]
    try:
        port = wait_alias_state(session["alias"], ("mapped", "proxied"))["port"]
        browser = wait_for_page(session["url"], "JupyterLab")
        real = Launched(session["url"], session["job_id"], session["script"], session["output"], done.stdout)
        assert run_code(real, browser, "print(6*7)") == "42\n"
        # Not in any process's argv (ps of every user), not in any Satellite call.
        ps = subprocess.run(["ps", "-eww", "-o", "args"], capture_output=True, text=True, check=True).stdout
        assert token not in ps
        assert not [c for c in sat.calls() if token in repr(c)]
        # Another unprivileged user on the session's node, straight at the port, without the token: refused.
        node = slurm("squeue", "-h", "-j", session["job_id"], "-o", "%N").stdout.strip()
        assert_refused_to(second_user(), node, f"{cluster.env['ADDR_' + node.upper()]}:{port}", token)
        # Every file the user has that holds the token is private; only the record and Jupyter's own
        # runtime files (0600 in a 0700 directory) hold it; the script and job output never do.
        holders = []
        for folder, dirs, files in os.walk(home):
            for name in files:
                path = os.path.join(folder, name)
                if not stat.S_ISREG(os.lstat(path).st_mode):  # the kernels' Unix sockets
                    continue
                if token.encode() in open(path, "rb").read():
                    holders.append(path)
                    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
                    assert os.stat(folder).st_mode & 0o777 == 0o700 or folder.endswith(".galyleo"), folder
        assert session["script"] not in holders and session["output"] not in holders
        records = [h for h in holders if h.endswith(".json") and "/.galyleo/" in h]
        assert len(records) == 1, holders
        record = json.load(open(records[0]))
        assert (record["job_id"], record["alias"], record["cluster"]) == (session["job_id"], session["alias"],
                                                                          "galyleotest"), record
        runtime = os.path.join(home, ".local", "share", "jupyter", "runtime")
        kernels = [f for f in os.listdir(runtime) if f.startswith("kernel-") and f.endswith(".json")]
        assert kernels and all(stat.S_IMODE(os.stat(os.path.join(runtime, f)).st_mode) == 0o600 for f in kernels)
        assert os.stat(runtime).st_mode & 0o777 == 0o700
        # Kernels talk over Unix sockets in that private directory, not TCP ports others can dial.
        for name in kernels:
            connection = json.load(open(os.path.join(runtime, name)))
            assert connection["transport"] == "ipc" and connection["ip"].startswith(runtime), connection
        # Everything under ~/.galyleo is private, the job output Slurm wrote included.
        private = os.path.join(home, ".galyleo")
        modes = {n: stat.S_IMODE(os.stat(os.path.join(private, n)).st_mode) for n in os.listdir(private)}
        assert session["output"].rsplit("/", 1)[1] in modes and set(modes.values()) == {0o600}, modes
        assert not os.path.exists(os.path.join(home, ".bash_history"))
    finally:
        cluster.cancel(session["job_id"])
    wait_no_jobs(home)
    wait_alias_gone(session["alias"])
    assert token not in open(session["output"]).read()
