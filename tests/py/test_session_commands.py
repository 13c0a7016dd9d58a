"""Session commands against scripted Slurm replies (no cluster): fake squeue/scancel
on PATH answer from a transcript and log their argv, in batchspawner's style.
Covers the controller being unreachable (UNKNOWN, nothing deleted), the reason
table, ID resolution, and what clean removes.
"""

from __future__ import annotations

import json
from pathlib import Path

import sessionkit
from sessionkit import fake_slurm, record, run

env = sessionkit.env  # the shared fixtures
satellite = sessionkit.satellite


def test_controller_unreachable_is_unknown_and_nothing_is_deleted(env: Path, tmp_path: Path, capsys) -> None:
    log = fake_slurm(tmp_path / "bin", "", squeue_status=1)
    folder = env / ".galyleo"
    path = record(folder, "101", "aa-bb-cc")
    status, out, _ = run(capsys, "list", "--json")
    assert status == 0
    assert json.loads(out)["sessions"][0]["state"] == "UNKNOWN"
    status, _, err = run(capsys, "clean", "--yes")
    assert status == 1 and "does not answer" in err
    assert path.exists()
    assert log.read_text().count("squeue") == 8  # four tries (with back-off) per command
    assert "scancel" not in log.read_text()


def test_states_reasons_and_ended(env: Path, tmp_path: Path, capsys) -> None:
    fake_slurm(tmp_path / "bin",
               "101|PENDING|PartitionTimeLimit|||N/A|debug\n102|RUNNING|None|node7|9:58|2026|debug\n")
    folder = env / ".galyleo"
    record(folder, "101", "aa-bb-cc")
    record(folder, "102", "dd-ee-ff")
    record(folder, "103", "gg-hh-ii")
    (folder / "galyleo-20261129-050000-103.out").write_text("[galyleo] session ended (exit status 0)\n")
    status, out, _ = run(capsys, "list", "--all", "--json")
    states = {s["job_id"]: s for s in json.loads(out)["sessions"]}
    assert states["101"]["state"] == "PENDING" and states["101"]["never_starts"]
    assert "lower --time-limit" in states["101"]["advice"]
    assert states["102"]["state"] == "RUNNING" and states["102"]["time_left"] == "9:58"
    assert states["103"]["state"] == "ENDED" and states["103"]["ended"] == "completed"
    status, out, _ = run(capsys, "list")
    assert "103" not in out and "RUNNING (9:58 left)" in out and "https://dd-ee-ff" in out
    assert "https://aa-bb-cc" not in out  # URLs only for running sessions


def test_resolve_needs_an_id_when_several_are_live(env: Path, tmp_path: Path, capsys) -> None:
    fake_slurm(tmp_path / "bin", "101|RUNNING|None|n|1:00|x|debug\n102|RUNNING|None|n|1:00|x|debug\n")
    record(env / ".galyleo", "101", "aa-bb-cc")
    record(env / ".galyleo", "102", "dd-ee-ff")
    status, _, err = run(capsys, "open")
    assert status == 2 and "2 live sessions" in err
    status, out, _ = run(capsys, "open", "dd-ee-ff")
    assert status == 0 and out.startswith("https://dd-ee-ff.")
    status, _, err = run(capsys, "open", "999")
    assert status == 2 and "999" in err


def test_clean_removes_only_ended_sessions(env: Path, tmp_path: Path, capsys, satellite) -> None:
    fake_slurm(tmp_path / "bin", "101|RUNNING|None|n|1:00|x|debug\n")
    live = record(env / ".galyleo", "101", "aa-bb-cc")
    ended = record(env / ".galyleo", "102", "dd-ee-ff")
    outside = tmp_path / "precious.txt"
    outside.write_text("keep")
    data = json.loads(ended.read_text())
    data["output"] = str(outside)  # a record must never make clean delete files elsewhere
    ended.write_text(json.dumps(data))
    status, out, _ = run(capsys, "clean", "--yes")
    assert status == 0
    assert live.exists() and not ended.exists() and outside.exists()
    assert satellite == [("known", "dd-ee-ff"), ("destroy", "dd-ee-ff")]  # the ended one's alias, once
