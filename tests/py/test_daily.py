"""Daily use (issue 23): the time-limit check on every launch, memory as Slurm writes it,
node choice and other sbatch options, `config unset`, `clean` by id or age, and the small
things a user meets every morning. Scripted Slurm and a fake Satellite; no cluster.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import test_sessions
from test_sessions import calls, fake_slurm, run

env = test_sessions.env  # the shared fixtures
satellite = test_sessions.satellite


# --- the time limit is checked against the partition's maximum on every launch ----------------


@pytest.mark.parametrize("extra", [[], ["--dry-run"], ["--json", "--wait"]])
def test_launch_refuses_a_time_limit_above_the_partition_maximum(env: Path, tmp_path: Path, capsys, satellite,
                                                                 extra) -> None:
    log = fake_slurm(tmp_path / "bin", "")
    (tmp_path / "bin" / "sinfo.out").write_text("site-part|2:00:00|4|8000\n")
    status, out, err = run(capsys, "launch", "-t", "3:00:00", *extra)
    assert (status, out) == (2, "")
    assert err.count("\n") == 1 and "at most 02:00:00" in err and err.startswith("galyleo: error: --time-limit")
    assert satellite == [] and calls(log, "sbatch") == []
    assert not list((env / ".galyleo").glob("*")) if (env / ".galyleo").exists() else True


def test_launch_within_the_partition_maximum_is_not_refused_for_it(env: Path, tmp_path: Path, capsys,
                                                                  satellite) -> None:
    fake_slurm(tmp_path / "bin", "")
    (tmp_path / "bin" / "sinfo.out").write_text("site-part|2:00:00|4|8000\n")
    _, _, err = run(capsys, "launch", "-t", "1:00:00", "--dry-run")
    assert "at most" not in err
