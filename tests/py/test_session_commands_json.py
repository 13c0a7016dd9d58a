"""`--json` of list and status, tier 1: every state a scripted Slurm can report
(pending forever, running, ended and forgotten, controller down) validates against
docs/session.schema.json, the schema portals are told to rely on."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from sessionkit import env, fake_slurm, record, run, satellite  # noqa: F401 (fixtures)

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "docs" / "session.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
ROWS = "101|PENDING|PartitionTimeLimit|||N/A|debug\n102|RUNNING|None|node7|9:58|2026-11-29T06:00:00|debug\n"


@pytest.mark.parametrize("squeue, status", [(ROWS, 0), ("", 0), ("", 1)],
                         ids=["pending+running+ended", "all ended", "controller down"])
def test_list_and_status_json_follow_the_schema(env: Path, tmp_path: Path, capsys, satellite,  # noqa: F811
                                                squeue: str, status: int) -> None:
    fake_slurm(tmp_path / "bin", squeue, squeue_status=status)
    for job, alias in (("101", "aa-bb-cc"), ("102", "dd-ee-ff"), ("103", "gg-hh-ii")):
        record(env / ".galyleo", job, alias)
    code, out, _ = run(capsys, "list", "--all", "--json")
    listed = json.loads(out)
    VALIDATOR.validate(listed)
    assert code == 0 and [s["job_id"] for s in listed["sessions"]] == ["101", "102", "103"]
    for job in ("101", "102", "103"):
        code, out, _ = run(capsys, "status", job, "--json")
        document = json.loads(out)
        VALIDATOR.validate(document)
        assert document["job_id"] == job


def test_the_schema_file_itself_can_refuse(env: Path, tmp_path: Path, capsys, satellite) -> None:  # noqa: F811
    """Checks docs/session.schema.json, not galyleo: a document without `state` is refused,
    so the validations above are not vacuous (a schema that accepts anything would pass them)."""
    fake_slurm(tmp_path / "bin", ROWS)
    record(env / ".galyleo", "101", "aa-bb-cc")
    document = json.loads(run(capsys, "status", "101", "--json")[1])
    del document["state"]
    with pytest.raises(jsonschema.ValidationError):
        VALIDATOR.validate(document)


@pytest.mark.parametrize("argv, status", [
    (["list", "--json", "--bogus"], 2),
    (["status", "999", "--json"], 2),
    (["launch", "--json", "-A", "abc", "-c", "0"], 2),
    (["config", "show", "--json", "extra"], 2),
], ids=["usage", "no such session", "bad value", "config show"])
def test_failures_under_json_are_one_json_object(env: Path, tmp_path: Path, capsys, satellite,  # noqa: F811
                                                 argv: list, status: int) -> None:
    """A portal reads stdout only: a failure is `{"error", "exit"}` there, the line on stderr too."""
    fake_slurm(tmp_path / "bin", "")
    code, out, err = run(capsys, *argv)
    document = json.loads(out)
    VALIDATOR.validate(document)
    assert code == status and document == {"error": err.strip().split("error: ", 1)[1], "exit": status}
    assert err.count("\n") == 1 and err.startswith("galyleo: error: ")


def test_failures_without_json_print_nothing_on_stdout(env: Path, capsys) -> None:  # noqa: F811
    code, out, err = run(capsys, "list", "--bogus")
    assert (code, out) == (2, "") and err.startswith("galyleo: error: ")
