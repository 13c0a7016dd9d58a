"""The never-start reasons name the option to change; waiting ones do not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import test_sessions
from test_sessions import fake_slurm, record, run

from galyleo import reasons

env = test_sessions.env  # the shared fixture

NEVER = [
    ("AssocMaxCpuPerJobLimit", "--cpus"),
    ("AssocMaxGRESPerJob", "--gpus"),
    ("AssocMaxNodePerJobLimit", "--account"),
    ("AssocMaxMemPerJob", "--memory"),
    ("AssocMaxWallDurationPerJobLimit", "--time-limit"),
    ("QOSMaxNodePerJobLimit", "--qos"),
    ("QOSMaxCpuMinutesPerJobLimit", "--time-limit"),
    ("QOSMinMemory", "--memory"),
]


@pytest.mark.parametrize("code, option", NEVER)
def test_never_start_reasons_name_the_option(code: str, option: str) -> None:
    reason = reasons.explain(code)
    assert reason.never and reason.words != code
    assert option in (reasons.advice(code) or "")


def test_waiting_reasons_are_not_never(env: Path, tmp_path: Path, capsys) -> None:
    assert reasons.advice("ReqNodeNotAvail, UnavailableNodes:node[1-2]") is None
    assert reasons.explain("ReqNodeNotAvail, UnavailableNodes:node[1-2]").words.startswith("a required node")
    fake_slurm(tmp_path / "bin", "101|PENDING|AssocMaxMemPerJob|||N/A|debug\n102|PENDING|Resources|||N/A|debug\n")
    record(env / ".galyleo", "101", "aa-bb-cc")
    record(env / ".galyleo", "102", "dd-ee-ff")
    status, out, _ = run(capsys, "list", "--json")
    found = {s["job_id"]: s for s in json.loads(out)["sessions"]}
    assert found["101"]["never_starts"] and "lower --memory" in found["101"]["advice"]
    assert not found["102"]["never_starts"] and found["102"]["advice"] is None
