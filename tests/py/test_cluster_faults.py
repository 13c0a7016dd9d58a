"""The fault matrix on the real local cluster (docs/using.md, "When things fail").

Every case: a clear message, the right exit status, no alias of this launch left
in the Satellite stand-in (destroyed exactly once), no job of it left in the
queue, no stray file in its ~/.galyleo. Each test uses a fresh home, so only its
own jobs, aliases and files are looked at; injected faults are restored.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from typing import List, Tuple

import pytest
from cluster import Cluster, harness_env, manage_call, on, sat, servers_on, slurm
from faultkit import (
    assert_clean,
    fault,
    galyleo_files,
    launched,
    my_jobs,
    run,
    site_config,
    spawn,
    unreachable_slurm_conf,
    user_file,
    wait_alias_gone,
    wait_alias_state,
    wait_no_jobs,
    withdrawn_alias,
)

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def cluster() -> Cluster:
    c = Cluster(harness_env())
    c.install_pyz()
    return c


def launch(cluster: Cluster, home: str, *args: str, **kw) -> subprocess.CompletedProcess:
    return run(cluster, home, "launch", "-e", cluster.module, "-t", "00:10:00", *args, **kw)


# --- Satellite faults ------------------------------------------------------------------

@pytest.mark.parametrize("kind, words", [
    ("refuse", "HTTP 502"), ("oops", "Oops! Injected fault"), ("http500", "HTTP 500"),
    ("garbage", "unexpected reply"),
])
def test_getlink_fault_fails_before_anything_exists(cluster: Cluster, home: str, kind: str, words: str) -> None:
    with fault(getlink=kind):
        done = launch(cluster, home)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("galyleo: error: Satellite proxy https://manage.")
    assert "getlink" in done.stderr and words in done.stderr, done.stderr
    assert done.stdout == ""
    assert_clean(home, None)


def test_getlink_slower_than_the_timeout(cluster: Cluster, home: str) -> None:
    config = site_config(cluster, home, http_timeout=2)
    started = time.time()
    with fault(getlink="slow:4"):
        done = launch(cluster, home, config=config)
        time.sleep(3)  # let the stand-in finish the request galyleo gave up on
    assert done.returncode == 1 and "getlink: no answer (timed out)" in done.stderr, done.stderr
    assert_clean(home, None)
    slow = [c for c in sat.calls()
            if c["endpoint"].startswith("getlink") and c["fault"] == "slow:4" and c["time"] >= started]
    assert len(slow) == 1, slow  # one attempt: a getlink that may have arrived is never repeated
    # The one thing galyleo cannot undo: an alias made after it stopped listening. It is
    # never linked to a job and expires with Satellite's TTL; tidy it here.
    late = [c["reply"].split()[-1] for c in slow if c["reply"]]
    for alias in late:
        record = sat.alias_record(alias)
        if record is not None and record["jobid"] is None:
            manage_call(cluster.env, "destroytoken", token=alias)


@pytest.mark.parametrize("kind", ["oops", "http500"])
def test_linktoken_fault_warns_and_the_session_still_works(cluster: Cluster, home: str, kind: str) -> None:
    with fault(linktoken=kind):
        done = launch(cluster, home)
    session = launched(done)
    try:
        assert "warning: Satellite proxy" in done.stderr and "linktoken" in done.stderr
        assert "the session works without it" in done.stderr
        wait_alias_state(session["alias"], ("mapped", "proxied"))
        if kind == "oops":
            with fault(tokenjobstate="oops"):
                status = run(cluster, home, "status", session["job_id"])
            assert status.returncode == 0 and "proxy      unavailable (Satellite proxy" in status.stdout
        stopped = run(cluster, home, "stop", session["job_id"])
        assert stopped.returncode == 0, stopped.stderr
    finally:
        cluster.cancel(session["job_id"])
    name = os.path.basename(session["script"])[:-3]
    assert_clean(home, session["alias"], [name + ".ended", name + ".json", name + ".out", name + ".sh"])


def test_redeem_refused_the_job_ends_and_destroys_its_alias(cluster: Cluster, home: str) -> None:
    with fault(redeemtoken="oops"):
        session = launched(launch(cluster, home))
        wait_no_jobs(home)
    wait_alias_gone(session["alias"])
    assert sat.destroy_count(session["alias"]) == 1
    output = open(session["output"]).read()
    assert "the Satellite proxy would not route" in output and "session ended (exit status 1)" in output
    listed = run(cluster, home, "list", "--all")
    assert re.search(r"ENDED \(failed", listed.stdout), listed.stdout


def test_destroy_refused_while_withdrawing_is_reported(cluster: Cluster, home: str) -> None:
    with fault(destroytoken="oops"):
        done = launch(cluster, home, "-p", "nosuchpartition")
    alias = withdrawn_alias(done.stderr)
    try:
        assert done.returncode == 1
        assert "warning: Satellite proxy" in done.stderr and "destroytoken: Oops!" in done.stderr
        assert sat.alias_record(alias) is not None  # told, not hidden: the proxy kept it
        assert galyleo_files(home) == [] and my_jobs(home) == []
    finally:
        manage_call(cluster.env, "destroytoken", token=alias)
    wait_alias_gone(alias)


# --- Slurm faults -----------------------------------------------------------------------

def test_unknown_partition(cluster: Cluster, home: str) -> None:
    done = launch(cluster, home, "-p", "nosuchpartition")
    assert done.returncode == 1 and "sbatch refused the job" in done.stderr
    assert "invalid partition" in done.stderr.lower()
    assert_clean(home, withdrawn_alias(done.stderr))


def test_any_account_is_accepted_without_accounting(cluster: Cluster, home: str) -> None:
    # This Slurm has no accounting database, so sbatch cannot check accounts: an
    # unknown one is accepted (a site with AccountingStorageEnforce refuses it, and
    # that refusal takes the unknown-partition path above).
    session = launched(launch(cluster, home, "-A", "no-such-account", "-t", "03:00:00", "--no-preflight"))
    stopped = run(cluster, home, "stop", session["job_id"])
    assert stopped.returncode == 0, stopped.stderr
    wait_no_jobs(home)
    wait_alias_gone(session["alias"])
    assert sat.destroy_count(session["alias"]) == 1


def test_controller_down_at_submit(cluster: Cluster, home: str) -> None:
    done = launch(cluster, home, extra={"SLURM_CONF": unreachable_slurm_conf()})
    assert done.returncode == 1, done.stderr
    assert "sbatch refused the job" in done.stderr and "Unable to contact slurm controller" in done.stderr
    assert_clean(home, withdrawn_alias(done.stderr))


def test_controller_down_list_and_clean_say_unknown_and_delete_nothing(cluster: Cluster, home: str) -> None:
    folder = os.path.join(home, ".galyleo")
    record = user_file(cluster, os.path.join(folder, "galyleo-20200101-000000-abcdef.json"),
                       '{"name": "galyleo-20200101-000000-abcdef", "job_id": "999999", "alias": "", '
                       '"url": "", "created": "2020-01-01T00:00:00Z"}\n', 0o600)
    down = {"SLURM_CONF": unreachable_slurm_conf()}
    listed = run(cluster, home, "list", "--all", extra=down)
    assert listed.returncode == 0 and "UNKNOWN (Slurm controller not answering)" in listed.stdout, listed
    cleaned = run(cluster, home, "clean", "--yes", extra=down)
    assert cleaned.returncode == 1 and "nothing removed" in cleaned.stderr
    assert os.path.exists(record)
    # With the controller back, the same record is simply an ended session.
    assert "ENDED" in run(cluster, home, "list", "--all").stdout


# --- Jupyter faults ---------------------------------------------------------------------

def fake_jupyter_module(cluster: Cluster, home: str, body: str) -> str:
    """A modulefile putting a stand-in `jupyter` (BODY, bash) first on PATH, with the `jupyter-lab`
    pre-flight and the job look for beside it; returns its modulepath."""
    user_file(cluster, os.path.join(home, "fakebin", "jupyter"), "#!/bin/bash\n" + body + "\n")
    user_file(cluster, os.path.join(home, "fakebin", "jupyter-lab"), '#!/bin/bash\nexec jupyter lab "$@"\n')
    user_file(cluster, os.path.join(home, "mods", "fakejupyter", "1.0.lua"),
              f'prepend_path("PATH", "{home}/fakebin")\n', 0o644)
    return os.path.join(home, "mods")


def test_jupyter_fails_to_start(cluster: Cluster, home: str) -> None:
    mods = fake_jupyter_module(cluster, home, 'echo "fake jupyter: cannot start" >&2; exit 3')
    session = launched(run(cluster, home, "launch", "--append-modulepath", mods, "-e", "fakejupyter/1.0", "-t", "5"))
    wait_no_jobs(home)
    wait_alias_gone(session["alias"])
    assert sat.destroy_count(session["alias"]) == 1
    output = open(session["output"]).read()
    assert output.count("fake jupyter: cannot start") == 3 and "lab could not be started" in output, output


def test_jupyter_starts_but_never_answers(cluster: Cluster, home: str) -> None:
    mods = fake_jupyter_module(cluster, home, "exec sleep 600")
    config = site_config(cluster, home, ready_timeout=4)
    session = launched(run(cluster, home, "launch", "--append-modulepath", mods, "-e", "fakejupyter/1.0",
                           "-t", "5", config=config))
    wait_no_jobs(home)
    wait_alias_gone(session["alias"])
    assert sat.destroy_count(session["alias"]) == 1
    assert "did not answer on port" in open(session["output"]).read()
    ps = subprocess.run(["ps", "-ww", "-u", cluster.user, "-o", "args"], capture_output=True, text=True).stdout
    assert f"{home}/fakebin" not in ps and "sleep 600" not in ps


def jupyter_pid(cluster: Cluster, port: int) -> int:
    pids = servers_on(cluster.user, port)
    assert pids, f"no Jupyter of {cluster.user} on port {port}"
    return min(pids)


def test_jupyter_exits_mid_session(cluster: Cluster, home: str) -> None:
    session = launched(launch(cluster, home))
    try:
        port = wait_alias_state(session["alias"], ("mapped", "proxied"))["port"]
        os.kill(jupyter_pid(cluster, port), signal.SIGKILL)
        wait_no_jobs(home)
    finally:
        cluster.cancel(session["job_id"])
    wait_alias_gone(session["alias"])
    assert sat.destroy_count(session["alias"]) == 1
    assert "exited with status" in open(session["output"]).read()


SQUAT = """
import socket, sys
addr = socket.gethostbyname(socket.gethostname())
squat = socket.socket()
squat.bind((addr, int(sys.argv[1])))
port = squat.getsockname()[1]
spare = socket.socket()
spare.bind((addr, port + 1))  # the port after it must be free: raises if not
spare.close()
print(addr, port, flush=True)
sys.stdin.read()
"""


def squat_on_every_node(cluster: Cluster) -> Tuple[int, List[subprocess.Popen]]:
    """One port bound but not listening on every compute node's address (so the job meets
    it wherever it lands), with the port after it free; released when their stdin closes."""
    port, squatters = 0, []
    for node in cluster.nodes:
        proc = subprocess.Popen(on(node, ["/usr/bin/python3", "-c", SQUAT, str(port)]), stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        squatters.append(proc)
        line = proc.stdout.readline().split()
        if len(line) != 2:
            for p in squatters:
                p.kill()
            pytest.skip(f"port {port} or the next one is busy on {node}: {proc.stderr.read()[-200:]}")
        port = int(line[1])
    return port, squatters


def test_port_taken_between_pick_and_bind(cluster: Cluster, home: str) -> None:
    # A socket bound but not listening passes the job's "is anything answering" probe
    # yet makes Jupyter's bind fail: the job must retry on the other port, never route
    # the proxy to the taken one.
    port, squatters = squat_on_every_node(cluster)
    config = site_config(cluster, home, port_min=port, port_max=port + 1)
    try:
        session = launched(launch(cluster, home, config=config))
        try:
            assert wait_alias_state(session["alias"], ("mapped", "proxied"))["port"] == port + 1
            text = open(session["output"]).read()
            if re.search(rf"[0-9.]+:{port} \(attempt 1\)", text):
                assert "exited before answering" in text and f":{port + 1} (attempt 2)" in text
        finally:
            cluster.cancel(session["job_id"])
    finally:
        for proc in squatters:
            proc.communicate(input="")
    wait_no_jobs(home)
    wait_alias_gone(session["alias"])


# --- scancel, time limit --------------------------------------------------------------

def test_plain_scancel_while_pending_then_clean_releases_the_alias(cluster: Cluster, home: str) -> None:
    # over MaxTime (past the login-node check, which would refuse it): pends forever
    session = launched(launch(cluster, home, "-t", "03:00:00", "--no-preflight"))
    slurm("scancel", session["job_id"], check=True)
    wait_no_jobs(home)
    assert sat.alias_record(session["alias"]) is not None  # no job ran, so no trap destroyed it
    listed = run(cluster, home, "list", "--all")
    assert "ENDED" in listed.stdout
    cleaned = run(cluster, home, "clean", "--yes")
    assert cleaned.returncode == 0 and f"released alias {session['alias']}" in cleaned.stdout, cleaned
    assert_clean(home, session["alias"])


def test_scancel_while_running(cluster: Cluster, home: str) -> None:
    session = launched(launch(cluster, home))
    wait_alias_state(session["alias"], ("mapped", "proxied"))
    slurm("scancel", session["job_id"], check=True)
    wait_no_jobs(home)
    wait_alias_gone(session["alias"])
    assert sat.destroy_count(session["alias"]) == 1
    assert "received SIGTERM" in open(session["output"]).read()
    cleaned = run(cluster, home, "clean", "--yes")
    assert cleaned.returncode == 0 and "released alias" not in cleaned.stdout
    assert_clean(home, session["alias"])


def test_time_limit_reached(cluster: Cluster, home: str) -> None:
    # The one slow test: Slurm ends a 1-minute job 61-89 s after it starts.
    session = launched(run(cluster, home, "launch", "-e", cluster.module, "-t", "1"))
    try:
        wait_alias_state(session["alias"], ("mapped", "proxied"))
        wait_no_jobs(home, timeout=150)
    finally:
        cluster.cancel(session["job_id"])
    wait_alias_gone(session["alias"])
    assert sat.destroy_count(session["alias"]) == 1
    assert "received SIGTERM (scancel or time limit)" in open(session["output"]).read()
    ps = subprocess.run(["ps", "-ww", "-u", cluster.user, "-o", "args"], capture_output=True, text=True).stdout
    assert session["output"] not in ps


# --- signals to launch at each step -----------------------------------------------------

def slow_sbatch(cluster: Cluster, home: str) -> str:
    """An sbatch that says it started (slowbin/started), then takes 3 s before the real one."""
    user_file(cluster, os.path.join(home, "slowbin", "sbatch"),
              f"#!/bin/bash\n: >{home}/slowbin/started\nsleep 3\nexec /usr/bin/sbatch \"$@\"\n")
    return f"{home}/slowbin:/usr/local/bin:/usr/bin:/bin"


def wait_file(path: str, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while not os.path.exists(path):
        assert time.time() < deadline, f"{path} never appeared"
        time.sleep(0.05)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["INT", "TERM"])
@pytest.mark.parametrize("step", ["before-getlink", "during-getlink", "during-sbatch", "during-linktoken"])
def test_signal_to_launch(cluster: Cluster, home: str, step: str, signum: int) -> None:
    extra = {"PATH": slow_sbatch(cluster, home)} if step == "during-sbatch" else {}
    faults = {"during-getlink": {"getlink": "slow:4"}, "during-linktoken": {"linktoken": "slow:4"}}.get(step, {})
    delay = {"before-getlink": 0.1, "during-getlink": 2.0, "during-sbatch": 2.0, "during-linktoken": 2.5}[step]
    with fault(**faults):
        proc = spawn(cluster, home, "launch", "-e", cluster.module, "-t", "00:10:00", extra=extra)
        if step == "during-sbatch":  # not a guess of how long start-up takes on a loaded machine
            wait_file(os.path.join(home, "slowbin", "started"))
            delay = 0.5
        time.sleep(delay)
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
    interrupted = 130 if signum == signal.SIGINT else 143
    assert out == ""
    if step == "before-getlink":  # still starting: Python's own handling, nothing done yet
        assert proc.returncode in (interrupted, -signum, 1), (proc.returncode, err)
        assert_clean(home, None)
        return
    assert proc.returncode == interrupted, err
    assert "launch interrupted: alias" in err, err
    if step != "during-getlink":
        assert "cancelled" in err, err
    assert_clean(home, withdrawn_alias(err))


# --- local files -------------------------------------------------------------------------

def test_galyleo_dir_not_writable(cluster: Cluster, home: str) -> None:
    os.mkdir(os.path.join(home, ".galyleo"), 0o755)  # owned by root: the user cannot fix its mode
    done = launch(cluster, home)
    assert done.returncode == 1
    assert f"galyleo: error: cannot write in {home}/.galyleo" in done.stderr, done.stderr
    assert "alias" not in done.stderr  # refused before asking Satellite for anything
    assert my_jobs(home) == [] and galyleo_files(home) == []


def test_disk_full(cluster: Cluster, home: str) -> None:
    mount = os.path.join(home, "full")
    os.mkdir(mount)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0755", "tmpfs", mount], check=True)
    try:
        folder = os.path.join(mount, ".galyleo")
        os.mkdir(folder, 0o700)
        os.chown(folder, *(lambda p: (p.pw_uid, p.pw_gid))(__import__("pwd").getpwnam(cluster.user)))
        subprocess.run(["dd", "if=/dev/zero", f"of={mount}/filler", "bs=4k"], capture_output=True)
        done = launch(cluster, home, extra={"GALYLEO_OUTPUT_DIR": folder})
        assert done.returncode == 1
        assert "No space left on device" in done.stderr and "cannot write" in done.stderr, done.stderr
        alias = withdrawn_alias(done.stderr)
        assert os.listdir(folder) == []
        wait_no_jobs(home)
        wait_alias_gone(alias)
        assert sat.destroy_count(alias) == 1
    finally:
        subprocess.run(["umount", mount], check=False)


def test_two_launches_in_the_same_second(cluster: Cluster, home: str) -> None:
    procs = [spawn(cluster, home, "launch", "--json", "-e", cluster.module, "-t", "03:00:00", "--no-preflight")
             for _ in range(2)]
    results = [p.communicate(timeout=60) for p in procs]
    import json

    docs = [json.loads(out) for out, err in results]
    assert all(p.returncode == 0 for p in procs), results
    assert len({d["name"] for d in docs}) == 2 and len({d["alias"] for d in docs}) == 2
    assert len({d["job_id"] for d in docs}) == 2
    for doc in docs:
        assert json.load(open(doc["record"]))["alias"] == doc["alias"]
        assert open(doc["script"]).read().count(doc["alias"]) >= 1
    stopped = run(cluster, home, "stop", "--all", "--yes")
    assert stopped.returncode == 0 and stopped.stdout.count("stopped job") == 2, stopped
    wait_no_jobs(home)
    for doc in docs:
        wait_alias_gone(doc["alias"])
        assert sat.destroy_count(doc["alias"]) == 1
