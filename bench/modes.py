"""Launch -> a usable JupyterLab, per connection mode, on the multi-host test cluster.

    bench/modes.py [--reps 3]

Three ways to get a session, interleaved round by round so background load hits each
alike, each measured from the start of `galyleo launch` (run as the test user on
`login`) until this machine (the laptop) gets JupyterLab's page:
  satellite       launch, then the URL through the proxy's public address
  satellite+idle  the same with --idle-timeout 30 (culling settings and the job's watcher)
  ssh             launch --connect ssh (it returns once the job wrote its URL file), then
                  the printed ssh command run here, then the local URL through the tunnel
Reported as medians and as ratios against satellite mode measured in the same run (the
same `tests/harness/on` hop is in every figure). Nothing is asserted. Needs `make harness`
and `make pyz`; writes bench/results/modes-<UTC stamp>.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import socket
import statistics
import subprocess
import sys
import time
from typing import Dict, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "py"))
sys.path.insert(0, os.path.join(REPO, "tests", "harness"))

from cluster import HARNESS_ROOT, Browser, Cluster, harness_env  # noqa: E402

MODES = ("satellite", "satellite+idle", "ssh")
SSH_OPTIONS = ["-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
               "-o", "UserKnownHostsFile=/dev/null", "-o", "ExitOnForwardFailure=yes", "-o", "LogLevel=ERROR"]


def until_page(url: str, marker: str = "JupyterLab", timeout: float = 180) -> Optional[float]:
    """Poll URL as a browser would; the time it first served MARKER, None if it never did."""
    browser = Browser()
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            status, body, _ = browser.get(url, timeout=5)
            if status == 200 and marker in body:
                return time.time()
        except OSError:
            pass
        time.sleep(0.1)
    return None


def config_env(mode: str) -> Dict[str, str]:
    return {"GALYLEO_CONFIG": os.path.join(HARNESS_ROOT, "site-ssh.toml")} if mode == "ssh" else {}


def launch(cluster: Cluster, mode: str) -> List[str]:
    """galyleo launch in MODE as the test user on login: its stdout lines (-Q: the URL last)."""
    args = ["launch", "-Q", "-e", cluster.module, "-t", "00:10:00"]
    if mode == "satellite+idle":
        args += ["--idle-timeout", "30"]
    if mode == "ssh":
        args += ["--connect", "ssh"]
    done = cluster.galyleo(*args, extra_env=config_env(mode))
    if done.returncode != 0:
        raise RuntimeError(f"launch ({mode}) failed: {done.stderr[-800:]}")
    return done.stdout.strip().splitlines()


def job_of(cluster: Cluster, mode: str, url: str) -> str:
    listed = cluster.galyleo("list", "--json", extra_env=config_env(mode)).stdout
    return next((s["job_id"] for s in json.loads(listed)["sessions"] if s["url"] == url), "")


def one(cluster: Cluster, env: Dict[str, str], mode: str) -> Optional[float]:
    start = time.time()
    lines = launch(cluster, mode)
    tunnel = None
    try:
        if mode != "ssh":
            ready = until_page(lines[-1])
        else:
            argv = shlex.split(lines[0])
            port = int(argv[3].split(":")[1])
            tunnel = subprocess.Popen(argv[:1] + ["-i", env["LAPTOP_SSH_KEY"], *SSH_OPTIONS] + argv[1:],
                                      stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            while tunnel.poll() is None:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.05)
            ready = until_page(lines[-1])
        return None if ready is None else ready - start
    finally:
        if tunnel is not None:
            tunnel.terminate()
            tunnel.wait(timeout=10)
        job = job_of(cluster, mode, lines[-1])
        if job:
            cluster.cancel(job)
            cluster.wait_job_gone(job)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    reps = parser.parse_args().reps
    env = harness_env()
    cluster = Cluster(env)
    cluster.install_pyz()
    samples: Dict[str, List[float]] = {m: [] for m in MODES}
    failed: Dict[str, int] = {m: 0 for m in MODES}
    for round_ in range(reps):
        for mode in MODES:
            took = one(cluster, env, mode)
            if took is None:
                failed[mode] += 1
            else:
                samples[mode].append(took)
            print(f"round {round_ + 1} {mode}: {'-' if took is None else f'{took:.2f} s'}", flush=True)
    base = statistics.median(samples["satellite"]) if samples["satellite"] else None
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    lines = [f"# Launch -> usable JupyterLab per connection mode ({stamp})", "",
             f"`bench/modes.py --reps {reps}` on the multi-host test cluster, 1-minute load "
             f"{os.getloadavg()[0]:.2f} at the end; each figure from the start of `galyleo launch` on `login` "
             "(through `tests/harness/on`) until the laptop got JupyterLab's page.", "",
             "| mode | median | min | max | vs satellite | failed |", "|---|---|---|---|---|---|"]
    for mode in MODES:
        values = samples[mode]
        if not values:
            lines.append(f"| {mode} | - | - | - | - | {failed[mode]} |")
            continue
        med = statistics.median(values)
        ratio = f"{med / base:.2f}x" if base else "-"
        lines.append(f"| {mode} | {med:.2f} s | {min(values):.2f} s | {max(values):.2f} s | {ratio} | {failed[mode]} |")
    text = "\n".join(lines) + "\n"
    path = os.path.join(HERE, "results", f"modes-{stamp}.md")
    with open(path, "w") as handle:
        handle.write(text)
    print(text)
    print(f"written {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
