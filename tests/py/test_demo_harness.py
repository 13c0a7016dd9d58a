"""The demo's plumbing, without the cluster: `make demo-shell` hands its stdin to the
shell although its set-up steps run first; the Satellite stand-in restarts only when what
it serves changed (content, not file dates) and keeps its aliases and routes when it must.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from conftest import ROOT

HARNESS = ROOT / "tests" / "harness"


def stub(path: Path, body: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/usr/bin/env bash\n" + body + "\n")
    path.chmod(0o755)


def test_make_demo_shell_passes_its_stdin_to_the_shell(tmp_path: Path) -> None:
    # The real Makefile and demo-shell over stand-in steps: the set-up (`up`) and the install
    # read stdin as ssh does; `on` (the login shell) echoes what it is given.
    for name in ("Makefile", "requirements-dev.txt"):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / ".done").touch()
    harness = tmp_path / "tests" / "harness"
    harness.mkdir(parents=True)
    shutil.copy(HARNESS / "demo-shell", harness / "demo-shell")
    stub(harness / "up", "cat >/dev/null")
    stub(harness / "install-galyleo", "cat >/dev/null")
    stub(harness / "on", "cat")
    (tmp_path / "env.sh").write_text(f"GALYLEO_TEST_USER=../{tmp_path}\nLOGIN_HOST=login\n"
                                     "CLUSTER_NODES=node1\nJUPYTER_MODULE=jupyter\n")
    env = dict(os.environ, GALYLEO_HARNESS_ROOT=str(tmp_path))
    done = subprocess.run(["make", "-s", "demo-shell", "VPY=true"], cwd=tmp_path, input="galyleo list\n",
                          capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "galyleo list\n"
