"""`galyleo completion`: the bash and zsh completion scripts, run by the shell itself on a line
being typed (values, config keys, live sessions, partitions, modules), and what they list.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import sessionkit
from sessionkit import completions, fake_slurm, record, run

from galyleo import apps

env = sessionkit.env  # the shared fixture


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_completion_completes_values_keys_sessions_partitions_modules(
        env: Path, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch, shell: str) -> None:
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed")
    fake_slurm(tmp_path / "bin", "")  # squeue --name galyleo: a pending plain-sbatch job with no record yet
    (tmp_path / "bin" / "squeue.out").write_text("205\n")
    (tmp_path / "bin" / "sinfo.out").write_text("debug\ngpu\n")
    record(env / ".galyleo", "101", "aa-bb-cc")
    lmod = tmp_path / "lmod"
    lmod.write_text("#!/bin/sh\nprintf '/opt/modulefiles:\\ngcc/10(default)\\npy-jupyterlab/4\\n' >&2\n")
    lmod.chmod(0o755)
    monkeypatch.setenv("LMOD_CMD", str(lmod))
    status, out, _ = run(capsys, "completion", shell)
    assert status == 0
    script = tmp_path / f"completion.{shell}"
    script.write_text(out)
    assert completions(shell, script, ["galyleo", "launch", "-i", ""]) == list(apps.NAMES)
    assert completions(shell, script, ["galyleo", "config", "set", "time"]) == ["time_limit", "time_limit_max"]
    assert completions(shell, script, ["galyleo", "stop", ""]) == ["205"]  # 101 has ended: only live ones
    assert completions(shell, script, ["galyleo", "status", ""]) == ["101", "205"]
    assert completions(shell, script, ["galyleo", "logs", "1"]) == ["101"]
    assert completions(shell, script, ["galyleo", "launch", "--partition", "d"]) == ["debug"]
    if shell == "bash":  # zsh adds the typed prefix itself
        assert completions(shell, script, ["galyleo", "launch", "-e", "gcc/10,py"]) == ["gcc/10,py-jupyterlab/4"]
        assert completions(shell, script, ["galyleo", "launch", "-e", ""]) == ["gcc/10", "py-jupyterlab/4"]
    assert completions(shell, script, ["galyleo", "stop", "--a"]) == ["--all"]


def test_completion_lists_commands_and_options(capsys) -> None:
    status, out, _ = run(capsys, "completion", "bash")
    assert status == 0
    assert "complete -F _galyleo galyleo" in out
    for word in ("launch", "status", "--conda-yml", "--dry-run", "--follow"):
        assert word in out
