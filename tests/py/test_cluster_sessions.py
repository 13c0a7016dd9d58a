"""Session lifecycle on the real local cluster: pending with a reason that never
clears, release, running, open, logs, stop; --wait; Ctrl-C while pending;
--json against the documented schema; --dry-run leaves no trace.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time

import jsonschema
import pytest
from cluster import LOGIN, REPO, Browser, Cluster, on, sat, slurm, wait_for_page
from test_cluster_e2e import sbatch_generated

pytestmark = pytest.mark.cluster
SCHEMA = json.load(open(os.path.join(REPO, "docs", "session.schema.json")))


def valid(document: dict) -> dict:
    jsonschema.Draft202012Validator(SCHEMA).validate(document)
    return document


def json_of(done: subprocess.CompletedProcess) -> dict:
    assert done.returncode == 0, done.stderr
    return valid(json.loads(done.stdout))


def wait_state(cluster: Cluster, job_id: str, state: str, timeout: float = 60) -> dict:
    deadline = time.time() + timeout
    doc: dict = {}
    while time.time() < deadline:
        doc = json_of(cluster.galyleo("status", job_id, "--json"))
        if doc["state"] == state:
            return doc
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} not {state}: {doc}")


def test_pending_forever_then_released_running_open_logs_stop(cluster: Cluster) -> None:
    launched = json_of(cluster.galyleo("launch", "--json", "-e", cluster.module, "-t", "03:00:00", "--no-preflight"))
    job_id, alias = launched["job_id"], launched["alias"]
    try:
        doc = wait_state(cluster, job_id, "PENDING")
        deadline = time.time() + 30
        while doc["reason"] != "PartitionTimeLimit" and time.time() < deadline:
            time.sleep(0.5)
            doc = json_of(cluster.galyleo("status", job_id, "--json"))
        assert doc["reason"] == "PartitionTimeLimit"
        assert doc["never_starts"] is True and "--time-limit" in doc["advice"]
        human = cluster.galyleo("status", job_id)
        assert "can never start as submitted" in human.stdout and "lower --time-limit" in human.stdout
        listed = json_of(cluster.galyleo("list", "--json"))
        assert [s["job_id"] for s in listed["sessions"] if s["job_id"] == job_id] == [job_id]
        # The admin (or the user) fixes the time limit: the job starts.
        slurm("scontrol", "update", f"jobid={job_id}", "TimeLimit=00:10:00", check=True)
        running = wait_state(cluster, job_id, "RUNNING")
        assert running["time_left"] and running["node"]
        wait_for_page(launched["url"], "JupyterLab")
        assert cluster.galyleo("open", job_id).stdout.strip() == launched["url"]
        assert cluster.galyleo("open", alias).stdout.strip() == launched["url"]
        assert "proxied" in json_of(cluster.galyleo("status", alias, "--json"))["satellite"]
        logs = cluster.galyleo("logs", job_id)
        assert "Jupyter Server" in logs.stdout and launched["url"].split("=")[1] not in logs.stdout
        stopped = cluster.galyleo("stop", job_id)
        assert stopped.returncode == 0 and f"stopped job {job_id}" in stopped.stdout
    finally:
        cluster.cancel(job_id)
    cluster.wait_job_gone(job_id)
    deadline = time.time() + 30
    while time.time() < deadline and sat.alias_record(alias) is not None:
        time.sleep(0.3)
    assert sat.alias_record(alias) is None
    assert sat.destroy_count(alias) == 1


def test_stop_a_pending_job_destroys_the_alias_once(cluster: Cluster) -> None:
    launched = json_of(cluster.galyleo("launch", "--json", "-e", cluster.module, "-t", "03:00:00", "--no-preflight"))
    wait_state(cluster, launched["job_id"], "PENDING")
    assert cluster.galyleo("stop", launched["alias"]).returncode == 0
    cluster.wait_job_gone(launched["job_id"])
    assert sat.alias_record(launched["alias"]) is None
    assert sat.destroy_count(launched["alias"]) == 1


def test_wait_exits_zero_when_ready_and_nonzero_when_the_job_dies(cluster: Cluster) -> None:
    done = cluster.galyleo("launch", "--wait", "-Q", "-e", cluster.module)
    url = done.stdout.strip()
    job_id = [line for line in done.stderr.splitlines() if "ready: job" in line]
    try:
        assert done.returncode == 0, done.stderr
        assert job_id, done.stderr
        # Ready means ready: the very first request gets JupyterLab, never the waiting page.
        status, body, _ = Browser().get(url)
        assert status == 200 and "JupyterLab" in body, body[:300]
    finally:
        slurm("scancel", "-u", cluster.user, "-n", "galyleo")
    dead = cluster.galyleo("launch", "--wait", "--no-preflight", "-e", "py-jupyterlab/0.0.0-missing")
    assert dead.returncode == 1
    assert "before the session was ready" in dead.stderr


def test_wait_gives_up_on_a_job_that_can_never_start(cluster: Cluster) -> None:
    """Not run by the issue-16 helper (the cluster harness was being rebuilt): for the lead."""
    done = cluster.galyleo("launch", "--wait", "-e", cluster.module, "-t", "03:00:00", "--no-preflight")
    assert done.returncode == 1, done.stderr
    assert ("can never start as submitted: the time limit is above the partition's maximum (the debug partition "
            "allows at most 02:00:00); lower --time-limit; cancelling it and releasing its alias") in done.stderr
    assert "PartitionTimeLimit" not in done.stderr
    job_id = done.stdout.split()[3]
    alias = done.stdout.strip().splitlines()[-1].split("//")[1].split(".")[0]
    cluster.wait_job_gone(job_id)
    assert sat.alias_record(alias) is None and sat.destroy_count(alias) == 1
    leftover = [f for f in os.listdir(os.path.join(cluster.home, ".galyleo")) if f.endswith(".token")]
    assert leftover == []


def test_plain_sbatch_session_is_known_while_pending(cluster: Cluster) -> None:
    """Not run by the issue-16 helper (the cluster harness was being rebuilt): for the lead."""
    job_id = sbatch_generated(cluster, "job-pending.sh", "-e", cluster.module, "-t", "03:00:00")  # pends for ever
    try:
        listed = json_of(cluster.galyleo("list", "--json"))
        assert [s["state"] for s in listed["sessions"] if s["job_id"] == job_id] == ["PENDING"]
        assert "no URL yet" in cluster.galyleo("open", job_id).stderr
        stopped = cluster.galyleo("stop", job_id)
        assert stopped.returncode == 0 and f"stopped job {job_id}" in stopped.stdout, stopped.stderr
        cluster.wait_job_gone(job_id)
    finally:
        cluster.cancel(job_id)


def test_ctrl_c_while_pending_leaves_no_job_and_no_alias(cluster: Cluster) -> None:
    """Pending behind a job that holds every node (a never-start reason would end --wait itself)."""
    before = {a["alias"] for a in sat.state()}
    blocker = slurm("sbatch", "--parsable", "--exclusive", f"--nodes={len(cluster.nodes)}", "--time=00:05:00",
                    "--job-name=blocker", "--output=/dev/null", "--wrap", "sleep 300", check=True)
    try:
        ctrl_c_while_pending(cluster, before)
    finally:
        cluster.cancel(blocker.stdout.strip().split(";")[0])


def ctrl_c_while_pending(cluster: Cluster, before: set) -> None:
    env = {"HOME": cluster.home, "GALYLEO_CONFIG": cluster.site, "PATH": "/usr/bin:/bin"}
    argv = ["/usr/bin/python3", cluster.pyz, "launch", "--wait", "-e", cluster.module, "-t", "00:10:00"]
    if os.environ.get("GALYLEO_E2E_CHECKOUT"):
        site = os.path.join(REPO, ".venv", "lib", "python3.11", "site-packages")
        env["PYTHONPATH"] = f"{REPO}:{site}"
        argv = ["/usr/bin/python3", "-m", "galyleo"] + argv[2:]
    proc = subprocess.Popen(
        on(LOGIN, ["env", "-C", cluster.home] + [f"{k}={v}" for k, v in env.items()] + argv, cluster.user),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 30
    job_id = ""
    while time.time() < deadline and not job_id:
        out = slurm("squeue", "-h", "-u", cluster.user, "-t", "PENDING", "-o", "%i").stdout.split()
        job_id = out[0] if out else ""
        time.sleep(0.3)
    assert job_id, "the launch never submitted"
    time.sleep(1.5)  # let --wait start watching
    os.killpg(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "cancelling pending job" in stderr
    cluster.wait_job_gone(job_id)
    alias = stdout.strip().splitlines()[-1].split("//")[1].split(".")[0]
    assert alias not in before and sat.alias_record(alias) is None
    assert sat.destroy_count(alias) == 1


def test_list_shows_ended_after_slurm_forgets_the_job(cluster: Cluster) -> None:
    launched = json_of(cluster.galyleo("launch", "--json", "-e", cluster.module))
    wait_for_page(launched["url"], "JupyterLab")
    cluster.cancel(launched["job_id"])
    deadline = time.time() + 90
    while time.time() < deadline and slurm("squeue", "-h", "-t", "all", "-j", launched["job_id"]).stdout.strip():
        time.sleep(1)
    listed = json_of(cluster.galyleo("list", "--all", "--json"))
    mine = [s for s in listed["sessions"] if s["job_id"] == launched["job_id"]]
    assert mine and mine[0]["state"] == "ENDED" and "cancelled" in mine[0]["ended"]
    live = json_of(cluster.galyleo("list", "--json"))
    assert launched["job_id"] not in [s["job_id"] for s in live["sessions"]]
    cleaned = cluster.galyleo("clean", "--yes")
    assert cleaned.returncode == 0 and launched["record"] in cleaned.stdout
    assert not os.path.exists(launched["record"]) and not os.path.exists(launched["output"])


def test_dry_run_leaves_no_trace(cluster: Cluster) -> None:
    calls = len(sat.calls())
    home = cluster.fresh_home()
    jobs = cluster.squeue()
    done = cluster.galyleo("launch", "--dry-run", "-e", cluster.module, extra_env={"HOME": home})
    assert done.returncode == 0, done.stderr
    assert "sbatch --parsable" in done.stdout and "getlink.cgi" in done.stdout
    assert "#!/bin/bash" in done.stdout
    assert len(sat.calls()) == calls
    assert [f for f in os.listdir(home) if f != ".shiv"] == []  # the pyz's own unpack cache, nothing of galyleo's
    assert {line.split()[0] for line in cluster.squeue()} <= {line.split()[0] for line in jobs}


def test_time_limit_warning_keeps_the_session_running(cluster: Cluster) -> None:
    launched = json_of(cluster.galyleo("launch", "--json", "-e", cluster.module, "-t", "10"))
    try:
        script = open(launched["script"]).read()
        assert "#SBATCH --signal=B:USR1@300" in script
        wait_for_page(launched["url"], "JupyterLab")
        # What Slurm does `lead` seconds before the time limit.
        slurm("scancel", "--batch", "--signal=USR1", launched["job_id"], check=True)
        deadline = time.time() + 20
        while time.time() < deadline and "time limit ends this session" not in open(launched["output"]).read():
            time.sleep(0.3)
        # The real time left (10 minutes less the start-up), not the lead.
        assert re.search(r"time limit ends this session in about [89] minutes", open(launched["output"]).read())
        time.sleep(1)
        assert cluster.job_state(launched["job_id"]) == "RUNNING"
        wait_for_page(launched["url"], "JupyterLab", timeout=10)
    finally:
        cluster.cancel(launched["job_id"])
