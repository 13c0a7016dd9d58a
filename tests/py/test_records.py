"""Records are read defensively (issue 24): one bad record (a huge number, deep nesting, a link
to /dev/zero, a FIFO named like a record, a huge file, an unknown version or connect mode) is
skipped with one line naming it; it never hangs or fails a session command, and the
other sessions still work.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable, Dict

import pytest
import sessionkit
from sessionkit import fake_slurm, record, run

from galyleo import contract, sessions
from galyleo.contract import Record

env = sessionkit.env  # the shared fixtures
satellite = sessionkit.satellite


def good(folder: Path, **changes: object) -> str:
    data = {"name": "galyleo-x", "job_id": "201", "alias": "xx-yy-zz", "url": "u", "created": "2026-11-29T05:00:00Z"}
    data.update(changes)
    return json.dumps(data)


BAD: Dict[str, Callable[[Path], None]] = {
    "huge-number": lambda p: p.write_text(good(p, local_port="@").replace('"@"', "1e400")),
    "infinity": lambda p: p.write_text(good(p, local_port="@").replace('"@"', "Infinity")),
    "port-out-of-range": lambda p: p.write_text(good(p, local_port=70000)),
    "deep-nesting": lambda p: p.write_text("[" * 200000 + "]" * 200000),
    "deep-options": lambda p: p.write_text(good(p, options="@").replace('"@"', '{"a":' * 100000 + "1" + "}" * 100000)),
    "dev-zero": lambda p: p.symlink_to("/dev/zero"),
    "fifo": lambda p: os.mkfifo(p),
    "huge-file": lambda p: p.write_text(good(p, url="u" * (contract.RECORD_MAX_BYTES + 1))),
    "newer-version": lambda p: p.write_text(good(p, version=contract.RECORD_VERSION + 1)),
    "unknown-connect": lambda p: p.write_text(good(p, connect="carrier-pigeon")),
    "not-an-object": lambda p: p.write_text("[1, 2]"),
    "bad-job-id": lambda p: p.write_text(good(p, job_id="1; rm")),
    "directory": lambda p: p.mkdir(),
}


@pytest.mark.parametrize("kind", sorted(BAD))
def test_a_bad_record_is_skipped_with_one_line_and_the_others_still_work(env: Path, tmp_path: Path, capsys,
                                                                           kind: str,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    log = fake_slurm(tmp_path / "bin", "101|RUNNING|None|node7|9:58|2026|debug\n")
    folder = env / ".galyleo"
    record(folder, "101", "aa-bb-cc")
    bad = folder / f"galyleo-bad-{kind}.json"
    BAD[kind](bad)
    for argv in (["list", "--json"], ["status", "101"]):
        monkeypatch.setattr(sessions, "SKIPPED", set())  # a new process
        status, out, err = run(capsys, *argv)
        assert status == 0, err
        assert len(err.splitlines()) == 1 and err.startswith(f"galyleo: warning: skipped {bad}: "), err
        assert "internal error" not in err
    assert [s["job_id"] for s in json.loads(run(capsys, "list", "--json")[1])["sessions"]] == ["101"]
    monkeypatch.setattr(sessions, "SKIPPED", set())
    status, out, err = run(capsys, "stop", "101")
    assert status == 0 and "stopped job 101" in out and err.count("warning: skipped") == 1, err
    assert ["--state=PENDING", "101"] in [argv[-2:] for argv in sessionkit.calls(log, "scancel")]


def test_a_record_of_another_user_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "galyleo-1.json"
    path.write_text(good(tmp_path))
    assert Record.load(str(path)).job_id == "201"
    monkeypatch.setattr(os, "getuid", lambda: os.stat(path).st_uid + 1)
    with pytest.raises(contract.BadFile, match="owned by another user"):
        Record.load(str(path))


def test_every_version_this_galyleo_wrote_still_reads(tmp_path: Path) -> None:
    path = tmp_path / "galyleo-1.json"
    for version in range(contract.RECORD_VERSION + 1):
        path.write_text(good(tmp_path, version=version, connect="ssh", local_port=20001))
        found = Record.load(str(path))
        assert (found.version, found.connect, found.local_port) == (version, "ssh", 20001)
