"""`galyleo launch` as a real process against the local fake Satellite (HTTPS) and
recording Slurm stubs: the whole call sequence for success and for each failure
point, as one transcript. getlink -> sbatch -> linktoken when all is well; after
getlink, every failure, signal or closed stdout destroys the alias exactly once
(and cancels a submitted job); before it, nothing is made.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional

import pytest
from conftest import DATA, ROOT, hermetic
from fakesatellite import FakeSatellite
from sessionkit import fake_slurm

PENDING = "4242|PENDING|Priority|||N/A|site-part\n"
SBATCH = {
    "ok": 'echo 4242',
    "cluster": 'echo "4242;faraway"',
    "refuse": 'echo "sbatch: error: Batch job submission failed: Invalid account" >&2; exit 1',
    "slow": 'sleep 1; echo 4242',
}


def slurm(tmp_path: Path, sbatch: str = "ok", squeue: str = PENDING) -> Path:
    """Recording squeue/scancel (sessionkit.fake_slurm) and an sbatch that answers as SBATCH says."""
    log = fake_slurm(tmp_path / "bin", squeue)
    stub = tmp_path / "bin" / "sbatch"
    logline = f'printf "%s\\0" "$(basename "$0")" "$@" >> "{log}"; printf "\\n" >> "{log}"'
    stub.write_text(f"#!/bin/bash\n{logline}\n{SBATCH[sbatch]}\n")
    return log


def launch_env(tmp_path: Path, sat: FakeSatellite, ca: Path, **extra: str) -> Dict[str, str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = hermetic(dict(os.environ))
    env.update({"HOME": str(home), "GALYLEO_CONFIG": str(DATA / "site.toml"), "GALYLEO_SATELLITE_URL": sat.url,
                "GALYLEO_CA_BUNDLE": str(ca), "GALYLEO_HTTP_TIMEOUT": "30", "PYTHONPATH": str(ROOT),
                "PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin", "SLURM_CONF": str(tmp_path / "slurm.conf")})
    (tmp_path / "slurm.conf").write_text("ClusterName=home\n")
    env.update(extra)
    return env


def start(env: Dict[str, str], *args: str, stdout: Optional[int] = subprocess.PIPE) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "galyleo", "launch", "--no-preflight", *args], env=env,
                            stdout=stdout, stderr=subprocess.PIPE, text=True)


def transcript(log: Path) -> List[str]:
    """Every call in order: 'satellite getlink', 'sbatch', 'scancel', ..."""
    lines = log.read_text().splitlines() if log.exists() else []
    fields = [line.split("\0")[:-1] for line in lines]
    return [" ".join(f[:2]) if f[0] == "satellite" else f[0] for f in fields if f]


def galyleo_files(tmp_path: Path) -> List[str]:
    folder = tmp_path / "home" / ".galyleo"
    return sorted(os.listdir(folder)) if folder.is_dir() else []


def finish(proc: subprocess.Popen) -> subprocess.CompletedProcess:
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_success_is_getlink_sbatch_linktoken(tmp_path: Path, fake_satellite: FakeSatellite, tls_cert) -> None:
    log = slurm(tmp_path)
    done = finish(start(launch_env(tmp_path, fake_satellite, tls_cert[0]), "-Q"))
    assert done.returncode == 0, done.stderr
    assert transcript(log) == ["satellite getlink", "sbatch", "satellite linktoken"]
    (alias,) = fake_satellite.aliases()
    assert fake_satellite.log[-1] == ("linktoken", {"token": alias, "jobid": "4242"})
    assert done.stdout.strip().startswith(f"https://{alias}.proxy.example.org/?token=")
    assert fake_satellite.destroyed(alias) == 0
    record = json.loads(next((tmp_path / "home" / ".galyleo").glob("*.json")).read_text())
    assert (record["job_id"], record["alias"], record["cluster"]) == ("4242", alias, "home")


def test_sbatch_refused_destroys_the_alias_once(tmp_path: Path, fake_satellite: FakeSatellite, tls_cert) -> None:
    log = slurm(tmp_path, sbatch="refuse")
    done = finish(start(launch_env(tmp_path, fake_satellite, tls_cert[0])))
    assert done.returncode == 1 and "Invalid account" in done.stderr and "withdrawn" in done.stderr
    assert transcript(log) == ["satellite getlink", "sbatch", "satellite destroytoken"]
    alias = fake_satellite.log[-1][1]["token"]
    assert fake_satellite.destroyed(alias) == 1 and fake_satellite.aliases() == []
    assert galyleo_files(tmp_path) == []


@pytest.mark.parametrize("fault, words", [("oops", "Oops! Injected fault"), ("http500", "getlink: HTTP 500"),
                                          ("garbage", "getlink: unexpected reply"), ("refuse", "getlink: ")])
def test_getlink_refused_makes_nothing(tmp_path: Path, fake_satellite: FakeSatellite, tls_cert, fault: str,
                                       words: str) -> None:
    """Whatever getlink's failure, nothing was made: no sbatch, no destroy, no file; never repeated."""
    log = slurm(tmp_path)
    fake_satellite.fault("getlink", fault)
    done = finish(start(launch_env(tmp_path, fake_satellite, tls_cert[0])))
    assert done.returncode == 1 and words in done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert transcript(log) == ["satellite getlink"] and galyleo_files(tmp_path) == []


def test_a_dropped_destroy_is_retried_and_counts_once(tmp_path: Path, fake_satellite: FakeSatellite,
                                                      tls_cert) -> None:
    """The undo's destroytoken loses its connection once: repeated (it is safe to), destroyed once."""
    log = slurm(tmp_path, sbatch="refuse")
    fake_satellite.fault("destroytoken", "refuse", times=1)
    done = finish(start(launch_env(tmp_path, fake_satellite, tls_cert[0])))
    assert done.returncode == 1 and "withdrawn" in done.stderr and "warning" not in done.stderr, done.stderr
    assert transcript(log) == ["satellite getlink", "sbatch", "satellite destroytoken", "satellite destroytoken"]
    alias = fake_satellite.log[-1][1]["token"]
    assert fake_satellite.destroyed(alias) == 1 and fake_satellite.aliases() == []


def test_linktoken_refused_is_a_warning(tmp_path: Path, fake_satellite: FakeSatellite, tls_cert) -> None:
    log = slurm(tmp_path)
    fake_satellite.fault("linktoken", "oops")
    done = finish(start(launch_env(tmp_path, fake_satellite, tls_cert[0]), "-Q"))
    assert done.returncode == 0 and "warning" in done.stderr and "works without it" in done.stderr
    assert transcript(log) == ["satellite getlink", "sbatch", "satellite linktoken"]
    assert len(fake_satellite.aliases()) == 1


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT, signal.SIGQUIT])
def test_signal_during_linktoken_cancels_and_destroys_once(tmp_path: Path, fake_satellite: FakeSatellite,
                                                            tls_cert, signum: int) -> None:
    """linktoken drips (never completes): the signal ends launch, which undoes everything."""
    log = slurm(tmp_path)
    fake_satellite.fault("linktoken", "drip:0.5")
    proc = start(launch_env(tmp_path, fake_satellite, tls_cert[0]))
    fake_satellite.wait_for("linktoken")
    proc.send_signal(signum)
    done = finish(proc)
    assert done.returncode == 128 + signum, done.stderr
    assert "launch interrupted: alias" in done.stderr and "job 4242 cancelled" in done.stderr
    assert transcript(log)[:3] == ["satellite getlink", "sbatch", "satellite linktoken"]
    assert "scancel" in transcript(log) and transcript(log).count("satellite destroytoken") == 1
    alias = fake_satellite.log[0][1] or fake_satellite.log[1][1]["token"]
    assert fake_satellite.aliases() == [] and fake_satellite.destroyed(alias) == 1
    assert galyleo_files(tmp_path) == []
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_during_a_slow_getlink_withdraws_the_alias_it_made(tmp_path: Path, fake_satellite: FakeSatellite,
                                                                   tls_cert, signum: int) -> None:
    """The signal is held until getlink answers; the alias it made is then destroyed, once."""
    log = slurm(tmp_path)
    fake_satellite.fault("getlink", "slow:1.5")
    proc = start(launch_env(tmp_path, fake_satellite, tls_cert[0]))
    fake_satellite.wait_for("getlink")
    proc.send_signal(signum)
    done = finish(proc)
    assert done.returncode == 128 + signum, done.stderr
    assert transcript(log) == ["satellite getlink", "satellite destroytoken"], done.stderr
    alias = fake_satellite.log[1][1]["token"]
    assert fake_satellite.aliases() == [] and fake_satellite.destroyed(alias) == 1
    assert galyleo_files(tmp_path) == [] and "Traceback" not in done.stderr
    if signum == signal.SIGINT:
        assert f"launch interrupted: alias {alias} withdrawn" in done.stderr


def test_hangup_during_sbatch_waits_for_the_job_id_then_undoes(tmp_path: Path, fake_satellite: FakeSatellite,
                                                                tls_cert) -> None:
    """SIGHUP (the SSH connection dropped) while sbatch runs: held until its id is known, then undone."""
    log = slurm(tmp_path, sbatch="slow")
    proc = start(launch_env(tmp_path, fake_satellite, tls_cert[0]))
    fake_satellite.wait_for("getlink")
    while "sbatch" not in transcript(log):
        assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGHUP)
    done = finish(proc)
    assert done.returncode == 129, done.stderr
    calls = transcript(log)
    assert calls[:2] == ["satellite getlink", "sbatch"] and "satellite linktoken" not in calls
    assert calls.index("scancel") > calls.index("sbatch") and calls.count("satellite destroytoken") == 1
    assert fake_satellite.aliases() == [] and galyleo_files(tmp_path) == []


def test_signal_during_a_stalled_getlink_ends_launch_within_the_deadline(tmp_path: Path,
                                                                           fake_satellite: FakeSatellite,
                                                                           tls_cert) -> None:
    """getlink holds signals (an alias may be in the making); the total deadline ends it, then TERM wins."""
    log = slurm(tmp_path)
    fake_satellite.fault("getlink", "drip:0.5")
    proc = start(launch_env(tmp_path, fake_satellite, tls_cert[0], GALYLEO_HTTP_TIMEOUT="3"))
    fake_satellite.wait_for("getlink")
    proc.send_signal(signal.SIGTERM)
    done = finish(proc)
    assert done.returncode == 143 and "terminated (SIGTERM)" in done.stderr, done.stderr
    assert transcript(log) == ["satellite getlink"] and galyleo_files(tmp_path) == []


def test_dripping_getlink_fails_at_the_total_deadline(tmp_path: Path, fake_satellite: FakeSatellite,
                                                      tls_cert) -> None:
    """One byte every half second never trips a per-read timeout: only a total deadline ends it."""
    log = slurm(tmp_path)
    fake_satellite.fault("getlink", "drip:0.5")
    done = finish(start(launch_env(tmp_path, fake_satellite, tls_cert[0], GALYLEO_HTTP_TIMEOUT="2")))
    assert done.returncode == 1
    assert done.stderr.splitlines() == [f"galyleo: error: Satellite proxy {fake_satellite.url}: getlink: "
                                        "no answer (timed out) within 2 s in total (http_timeout)"]
    assert transcript(log) == ["satellite getlink"]


def test_stalled_linktoken_is_a_warning_after_the_deadline(tmp_path: Path, fake_satellite: FakeSatellite,
                                                           tls_cert) -> None:
    log = slurm(tmp_path)
    fake_satellite.fault("linktoken", "stall")
    done = finish(start(launch_env(tmp_path, fake_satellite, tls_cert[0], GALYLEO_HTTP_TIMEOUT="2"), "-Q"))
    assert done.returncode == 0 and "linktoken: no answer (timed out) within 2 s in total" in done.stderr
    assert transcript(log) == ["satellite getlink", "sbatch", "satellite linktoken"]


def test_closed_stdout_undoes_the_launch(tmp_path: Path, fake_satellite: FakeSatellite, tls_cert) -> None:
    """Nobody can learn the URL (a portal went away): cancel the job, destroy the alias once."""
    log = slurm(tmp_path)
    read, write = os.pipe()
    os.close(read)
    try:
        proc = start(launch_env(tmp_path, fake_satellite, tls_cert[0]), stdout=write)
    finally:
        os.close(write)
    done = finish(proc)
    assert done.returncode == 1 and "stdout was closed" in done.stderr, done.stderr
    calls = transcript(log)
    assert calls[:3] == ["satellite getlink", "sbatch", "satellite linktoken"]
    assert "scancel" in calls and calls.count("satellite destroytoken") == 1
    assert fake_satellite.aliases() == [] and galyleo_files(tmp_path) == []


def test_job_on_another_cluster_is_followed_there(tmp_path: Path, fake_satellite: FakeSatellite, tls_cert) -> None:
    """sbatch --parsable answers `jobid;cluster`: the record keeps the cluster, and squeue/scancel use -M."""
    log = slurm(tmp_path, sbatch="cluster")
    env = launch_env(tmp_path, fake_satellite, tls_cert[0], SLURM_CLUSTERS="faraway")
    done = finish(start(env, "-Q"))
    assert done.returncode == 0, done.stderr
    record = json.loads(next((tmp_path / "home" / ".galyleo").glob("*.json")).read_text())
    assert (record["job_id"], record["cluster"]) == ("4242", "faraway")
    listed = subprocess.run([sys.executable, "-m", "galyleo", "list"], env=env, capture_output=True, text=True,
                            timeout=60)
    assert listed.returncode == 0 and "PENDING" in listed.stdout, listed
    stopped = subprocess.run([sys.executable, "-m", "galyleo", "stop", "4242"], env=env, capture_output=True,
                             text=True, timeout=60)
    assert stopped.returncode == 0, stopped.stderr
    lines = [line.split("\0")[:-1] for line in log.read_text().splitlines()]
    slurm_calls = [f for f in lines if f and f[0] in ("squeue", "scancel")]
    about_job = [f for f in slurm_calls if "4242" in f or f[0] == "scancel"]
    assert about_job and all(f[1:3] == ["-M", "faraway"] for f in about_job), slurm_calls
    # Without -M only this cluster's own list (plain-sbatch sessions still pending are found there).
    local = [f for f in slurm_calls if f[1:3] != ["-M", "faraway"]]
    assert all(f[0] == "squeue" and "--me" in f and "4242" not in f for f in local), slurm_calls


def test_hangup_during_wait_while_pending_cancels_and_destroys_once(tmp_path: Path, fake_satellite: FakeSatellite,
                                                                    tls_cert) -> None:
    """`launch --wait`, the job still queued, the SSH connection drops: nobody will use it, undo."""
    log = slurm(tmp_path)
    proc = start(launch_env(tmp_path, fake_satellite, tls_cert[0]), "--wait")
    while "squeue" not in transcript(log):
        assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGHUP)
    done = finish(proc)
    assert done.returncode == 129, done.stderr
    calls = transcript(log)
    assert calls[:3] == ["satellite getlink", "sbatch", "satellite linktoken"]
    assert "scancel" in calls and calls.count("satellite destroytoken") == 1
    assert fake_satellite.aliases() == []
