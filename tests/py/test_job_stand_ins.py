"""Second checks, from pytest, of facts the bats tier also checks: the job script runs
against the recording stand-ins in tests/bats/stubs (test_fuzz_quoting's Sandbox), and
each fact is judged by a different witness than the bats test uses, so one broken
test cannot hide the bug: the port redeemed is the one Jupyter was told and the job
announced, the conda cache is keyed on the yml's content (seen as a hit or a miss, not
as a computed key), and launch mode's token file is gone once the job has read it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Dict, Iterator, List

import pytest
from conftest import ROOT
from test_fuzz_quoting import STUBS, Sandbox

CONDA_SH = str(STUBS / "conda" / "etc" / "profile.d" / "conda.sh")
TOKEN = "0123456789abcdef" * 4


@pytest.fixture
def box() -> Iterator[Sandbox]:
    found = Sandbox()
    yield found
    found.close()


def run_ok(box: Sandbox, *options: str) -> subprocess.CompletedProcess:
    done = box.generate(f"--notebook-dir={box.root / 'home'}", *options)
    assert done.returncode == 0, done.stderr
    job = box.run_job(done.stdout)
    assert job.returncode == 0, job.stderr[-2000:]
    return job


def redeemed(box: Sandbox) -> List[Dict[str, str]]:
    return [dict(c["params"]) for c in box.calls("curl", "satellite") if c.get("endpoint") == "redeemtoken"]


def test_the_port_redeemed_is_the_one_jupyter_was_told_and_the_job_announced(box: Sandbox) -> None:
    job = run_ok(box)
    (jupyter,) = box.calls("jupyter")
    told = [str(jupyter["config"]["port"])]  # through its config file: never argv
    assert not any(a.startswith("--port") for a in jupyter["argv"])
    announced = re.findall(r"starting lab on 127\.0\.0\.1:([0-9]+) \(attempt 1\)", job.stderr)
    assert len(told) == 1 and announced == told, (jupyter["argv"], job.stderr)
    assert redeemed(box) == [{"token": "wages-astonish-recapture", "port": told[0]}]


def cached_job(box: Sandbox, yml: Path) -> str:
    """Run a --cache job for YML with a clean log and scratch; what conda did, as 'create' or 'unpack'."""
    (box.root / "log" / "calls.jsonl").unlink(missing_ok=True)
    shutil.rmtree(box.root / "scratch")
    (box.root / "scratch").mkdir()
    run_ok(box, f"--conda-yml={yml}", "--cache", f"--conda-init={CONDA_SH}")
    created = [c for c in box.calls("conda") if c["argv"][:2] == ["env", "create"]]
    unpacked = box.calls("conda-unpack")
    assert len(created) + len(unpacked) == 1, (created, unpacked)
    return "create" if created else "unpack"


def test_the_conda_cache_follows_the_yml_content_not_its_path_or_time(box: Sandbox) -> None:
    first = box.root / "a" / "environment.yml"
    first.parent.mkdir()
    first.write_text("name: demo\ndependencies:\n  - python=3.11\n")
    assert cached_job(box, first) == "create"
    assert cached_job(box, first) == "unpack"
    elsewhere = box.root / "b" / "other-name.yml"
    elsewhere.parent.mkdir()
    shutil.copy(first, elsewhere)
    os.utime(elsewhere, (1, 1))
    assert cached_job(box, elsewhere) == "unpack", "the same content under another path and time must hit"
    stat = first.stat()
    first.write_text("name: demo\ndependencies:\n  - python=3.12\n")  # the same size, path and mtime
    os.utime(first, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert cached_job(box, first) == "create", "changed content must miss"
    packs = sorted(p.name for p in (box.root / "out" / "cache").glob("*.tar.gz"))
    assert len(packs) == 2


def launch_mode_script(box: Sandbox, token_file: Path, *options: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GALYLEO_", "SBATCH_", "SLURM_"))}
    env.update(GALYLEO_CONFIG=str(box.config), HOME=str(box.root / "home"), PYTHONPATH=str(ROOT))
    done = subprocess.run([os.sys.executable, str(ROOT / "tests" / "bats" / "render_launch.py"), "lucky-brave-otter",
                           str(token_file), str(box.root / "out" / "job.out"), f"--notebook-dir={box.root / 'home'}",
                           *options], capture_output=True, text=True, env=env, cwd=str(ROOT), timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("fails", [False, True], ids=["session", "module load fails"])
def test_launch_mode_token_file_is_gone_once_the_job_read_it(box: Sandbox, fails: bool) -> None:
    token_file = box.root / "out" / "session.token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    (box.root / "log" / "satellite.json").write_text(json.dumps(
        {"lucky-brave-otter": {"state": "pending", "jobid": None, "port": None}}))
    script = launch_mode_script(box, token_file, *(["--env-modules=broken"] if fails else []))
    job = box.run_job(script, **({"STUB_MODULE_FAIL": "broken"} if fails else {}))
    assert not token_file.exists()
    assert list((box.root / "out").iterdir()) == [], "nothing of the token is left in the output folder"
    if fails:
        assert job.returncode == 1 and box.calls("jupyter") == []
    else:
        assert job.returncode == 0, job.stderr[-2000:]
        assert box.calls("jupyter")[0]["token_sha256"] == hashlib.sha256(TOKEN.encode()).hexdigest()


def gone(pid: int) -> bool:
    """No such process, or only its zombie (whoever adopted it has not reaped it yet)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rpartition(")")[2].split()[0] == "Z"
    except OSError:
        return True


def test_what_the_app_leaves_behind_in_its_process_group_ends_with_the_job(box: Sandbox) -> None:
    """Jupyter's server may exit and leave a child (code-server after an idle shutdown); Slurm's
    process tracking may not find it once it is adopted by init. The job ends it."""
    done = box.generate(f"--notebook-dir={box.root / 'home'}")
    assert done.returncode == 0, done.stderr
    pidfile = box.root / "orphan.pid"
    job = box.run_job(done.stdout, STUB_JUPYTER_ORPHAN=str(pidfile))
    assert job.returncode == 0, job.stderr[-2000:]
    pid = int(pidfile.read_text())
    try:
        assert gone(pid), f"the app's leftover {pid} outlived the job"
    finally:
        if not gone(pid):
            os.kill(pid, 9)
