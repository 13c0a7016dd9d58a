"""Helpers for the fault, secrets and load tests on the real local cluster.

galyleo runs on login as the unprivileged test user in a fresh home of its own,
through tests/harness/on, which execs all the way down (no runuser or su in
between), so a signal to the child reaches galyleo itself. Leaks are
judged on this launch's own things only: aliases it named, jobs whose script
lies under its home, files in its ~/.galyleo. Faults injected into the shared
Satellite stand-in are always restored (other sessions use it concurrently).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import time
from typing import Dict, Iterator, List, Optional

from cluster import HARNESS_ROOT, LOGIN, REPO, Cluster, on, sat, slurm

ALIAS = re.compile(r"\b([a-z0-9]+-[a-z0-9]+-[a-z0-9]+)\b")


def argv(cluster: Cluster, args: List[str]) -> List[str]:
    if os.environ.get("GALYLEO_E2E_CHECKOUT"):
        return ["/usr/bin/python3", "-m", "galyleo", *args]
    return ["/usr/bin/python3", cluster.pyz, *args]


def env(cluster: Cluster, home: str, config: Optional[str], extra: Optional[Dict[str, str]]) -> Dict[str, str]:
    result = {"HOME": home, "USER": cluster.user, "LOGNAME": cluster.user, "LANG": "C.UTF-8",
              "GALYLEO_CONFIG": config or cluster.site, "PATH": "/usr/local/bin:/usr/bin:/bin",
              "SHIV_ROOT": os.path.join(cluster.home, ".shiv")}
    if os.environ.get("GALYLEO_E2E_CHECKOUT"):
        site = os.path.join(REPO, ".venv", "lib", "python3.11", "site-packages")
        result["PYTHONPATH"] = f"{REPO}:{site}"
    result.update(extra or {})
    return result


def spawn(cluster: Cluster, home: str, *args: str, config: Optional[str] = None,
          extra: Optional[Dict[str, str]] = None) -> subprocess.Popen:
    """`galyleo ARGS` on login as the test user, in HOME, not yet waited for; its pid is
    galyleo's (tests/harness/on execs all the way down)."""
    settings = [f"{k}={v}" for k, v in env(cluster, home, config, extra).items()]
    return subprocess.Popen(on(LOGIN, ["env", *settings, *argv(cluster, list(args))], cluster.user), cwd=home,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run(cluster: Cluster, home: str, *args: str, config: Optional[str] = None,
        extra: Optional[Dict[str, str]] = None, timeout: float = 120) -> subprocess.CompletedProcess:
    proc = spawn(cluster, home, *args, config=config, extra=extra)
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def site_config(cluster: Cluster, home: str, **overrides: object) -> str:
    """The test site config with OVERRIDES (TOML values), written into HOME."""
    lines = [line for line in open(cluster.site).read().splitlines() if line.split("=")[0].strip() not in overrides]
    lines += [f"{key} = {json.dumps(value)}" for key, value in overrides.items()]
    path = os.path.join(home, "site.toml")
    with open(path, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    os.chmod(path, 0o644)
    return path


def user_file(cluster: Cluster, path: str, text: str, mode: int = 0o755) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write(text)
    os.chmod(path, mode)
    for folder in (os.path.dirname(path), path):
        shutil.chown(folder, cluster.user, cluster.user)
    return path


def galyleo_files(home: str) -> List[str]:
    folder = os.path.join(home, ".galyleo")
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def my_jobs(home: str) -> List[str]:
    """Jobs (pending or running) whose script lives under HOME: this test's, no one else's."""
    out = slurm("squeue", "-h", "-o", "%i|%o").stdout
    return [line.split("|")[0] for line in out.splitlines() if line.split("|", 1)[-1].startswith(home + "/")]


def wait_no_jobs(home: str, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and my_jobs(home):
        time.sleep(0.3)
    assert my_jobs(home) == [], f"jobs of {home} still queued: {my_jobs(home)}"


def wait_alias_gone(alias: str, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and sat.alias_record(alias) is not None:
        time.sleep(0.3)
    assert sat.alias_record(alias) is None, f"alias {alias} leaked: {sat.alias_record(alias)}"


def wait_alias_state(alias: str, states: tuple, timeout: float = 60) -> dict:
    deadline = time.time() + timeout
    record = None
    while time.time() < deadline:
        record = sat.alias_record(alias)
        if record and record["state"] in states:
            return record
        time.sleep(0.3)
    raise AssertionError(f"alias {alias} never reached {states}: {record}")


def assert_clean(home: str, alias: Optional[str], files: Optional[List[str]] = None) -> None:
    """The whole leak check: no job of HOME, ALIAS gone and destroyed once, ~/.galyleo as expected."""
    wait_no_jobs(home)
    if alias:
        wait_alias_gone(alias)
        assert sat.destroy_count(alias) == 1, sat.destroys().get(alias)
    assert galyleo_files(home) == (files or []), galyleo_files(home)


def withdrawn_alias(stderr: str) -> str:
    match = re.search(r"alias ([a-z0-9]+-[a-z0-9]+-[a-z0-9]+) withdrawn", stderr)
    assert match, stderr
    return match.group(1)


@contextlib.contextmanager
def fault(**faults: str) -> Iterator[None]:
    """Inject FAULTS (endpoint=fault) into the shared stand-in; always restore them."""
    sat.configure(faults=dict(faults))
    try:
        yield
    finally:
        sat.configure(faults={endpoint: None for endpoint in faults})


def unreachable_slurm_conf() -> str:
    """A slurm.conf naming a controller port nothing listens on: sbatch/squeue fail in 1-2 s."""
    path = os.path.join(HARNESS_ROOT, "slurm-unreachable.conf")
    lines = [line for line in open("/etc/slurm/slurm.conf").read().splitlines()
             if not line.startswith(("SlurmctldPort", "MessageTimeout"))]
    with open(path + ".tmp", "w") as handle:
        handle.write("\n".join(lines + ["SlurmctldPort=9", "MessageTimeout=2"]) + "\n")
    os.chmod(path + ".tmp", 0o644)
    os.replace(path + ".tmp", path)
    return path


def launched(done: subprocess.CompletedProcess) -> Dict[str, str]:
    """job_id, alias, url, output of a successful plain `launch`."""
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    fields = dict(line.split(": ", 1) for line in lines if line.startswith("Job "))
    url = lines[-1]
    return {"job_id": lines[0].split()[3], "url": url, "alias": url.split("//")[1].split(".")[0],
            "output": fields["Job output"], "script": fields["Job script"]}
