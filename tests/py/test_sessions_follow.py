"""Following a job: `logs -f` until Slurm says the job ended, against scripted Slurm
replies. Time never passes: the sleeps are replaced by steps of the script (the file
grows, the reply flips), so nothing here asserts a timing.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import List

import pytest
import test_sessions
from test_sessions import calls, fake_slurm, record, run

from galyleo import commands

env = test_sessions.env  # the shared fixture



def test_logs_follow_prints_a_growing_file_until_the_job_ends(env: Path, tmp_path: Path, capsys,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    output = env / ".galyleo" / "galyleo-20261129-050000-101.out"
    squeue_out = tmp_path / "bin" / "squeue.out"
    # The job's last words arrive while squeue is being asked, after the job left the queue.
    log = fake_slurm(tmp_path / "bin", "101|RUNNING|None|node7|9:58|2026|debug\n",
                     squeue_empty_then=f'echo "last words" >> "{output}"')
    record(env / ".galyleo", "101", "aa-bb-cc")
    output.write_text("line 0\n")
    steps: List[int] = []

    def step(seconds: float) -> None:
        steps.append(1)
        assert len(steps) < 20, "still following after the job ended"
        if len(steps) <= 3:
            with output.open("a") as handle:
                handle.write(f"line {len(steps)}\n")
        if len(steps) == 3:
            squeue_out.write_text("")  # the job has ended and squeue forgot it

    monkeypatch.setattr(commands, "time", SimpleNamespace(sleep=step))
    monkeypatch.setattr(commands, "FOLLOW_IDLE", 0.0)
    status, out, _ = run(capsys, "logs", "-f", "101")
    assert status == 0
    assert out == "line 0\nline 1\nline 2\nline 3\nlast words\n"
    assert len(steps) == 3
    assert all("--jobs" in argv for argv in calls(log, "squeue")[1:])  # one job asked about, not all


def test_logs_without_follow_prints_once(env: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    fake_slurm(tmp_path / "bin", "101|RUNNING|None|node7|9:58|2026|debug\n")
    record(env / ".galyleo", "101", "aa-bb-cc")
    (env / ".galyleo" / "galyleo-20261129-050000-101.out").write_text("only\n")
    monkeypatch.setattr(commands, "time", SimpleNamespace(sleep=lambda seconds: pytest.fail("followed")))
    assert run(capsys, "logs", "101")[:2] == (0, "only\n")
