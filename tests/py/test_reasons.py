"""reasons.py: Slurm's pending reasons in words; those that never clear by waiting name the
option to change, and `list` says which is which.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sessionkit
from sessionkit import fake_slurm, record, run

from galyleo import reasons

env = sessionkit.env  # the shared fixture


def test_every_never_reason_names_an_option() -> None:
    for code, reason in reasons.REASONS.items():
        if reason.never:
            assert "--" in reason.advice, code
    assert reasons.advice("Priority") is None
    assert reasons.explain("WeirdNewReason").words == "Slurm's reason: WeirdNewReason"


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
