"""What stop, status and clean change, and what they must leave alone, against scripted
Slurm replies (sessionkit.fake_slurm on PATH) and a fake Satellite client that logs
its calls. The alias is destroyed exactly once, and never while Slurm cannot say
whether the job may still run.
"""

from __future__ import annotations

import io
import json
import os
import signal
import sys
from pathlib import Path

import pytest
import sessionkit
from sessionkit import FakeSatellite, calls, fake_slurm, record, run, withdraw

from galyleo.connect import satellite as satellite_mode

env = sessionkit.env  # the shared fixture
satellite = sessionkit.satellite  # the shared fixture


PENDING = "101|PENDING|Priority|||N/A|debug\n"
RUNNING = "101|RUNNING|None|node7|9:58|2026|debug\n"


def token_of(path: Path) -> Path:
    token = path.with_suffix(".token")
    token.write_text("t" * 64)
    return token


@pytest.mark.parametrize("argv", [["stop", "101"], ["stop"], ["stop", "--all", "--yes"], ["stop", "aa-bb-cc"]])
def test_stop_while_the_controller_is_down_changes_nothing(env: Path, tmp_path: Path, capsys, satellite,
                                                           argv) -> None:
    log = fake_slurm(tmp_path / "bin", "", squeue_status=1)
    path = record(env / ".galyleo", "101", "aa-bb-cc")
    token = token_of(path)
    status, out, err = run(capsys, *argv)
    assert status == 1
    assert err.splitlines() == ["galyleo: error: job 101: the Slurm controller did not answer; nothing was changed"]
    assert "stopped" not in out
    assert satellite == [] and calls(log, "scancel") == []
    assert path.exists() and token.exists()


def test_stop_when_scancel_fails_changes_nothing(env: Path, tmp_path: Path, capsys, satellite) -> None:
    log = fake_slurm(tmp_path / "bin", PENDING, scancel_status=1)
    path = record(env / ".galyleo", "101", "aa-bb-cc")
    token = token_of(path)
    status, out, err = run(capsys, "stop", "101")
    assert status == 1
    assert len(err.splitlines()) == 1 and err.startswith("galyleo: error: job 101: scancel failed (")
    assert "Unable to contact slurm controller" in err and err.endswith("; nothing was changed\n")
    assert "stopped" not in out
    assert satellite == []
    assert calls(log, "scancel") == [["--state=PENDING", "101"]]
    assert path.exists() and token.exists()


def test_controller_lost_right_after_scancel_keeps_the_alias(env: Path, tmp_path: Path, capsys, satellite) -> None:
    status_file = tmp_path / "bin" / "squeue.status"
    fake_slurm(tmp_path / "bin", PENDING, scancel_then=f'echo 1 > "{status_file}"')
    path = record(env / ".galyleo", "101", "aa-bb-cc")
    status, _, err = run(capsys, "stop", "101")
    assert status == 1 and len(err.splitlines()) == 1
    assert "job 101: Slurm did not answer after scancel" in err and "alias aa-bb-cc and the record are kept" in err
    assert satellite == [] and path.exists()


def test_stop_all_destroys_each_alias_once_through_one_client(env: Path, tmp_path: Path, capsys, satellite) -> None:
    log = fake_slurm(tmp_path / "bin", PENDING + PENDING.replace("101", "102") + PENDING.replace("101", "103"))
    for job_id, alias in (("101", "aa-bb-cc"), ("102", "dd-ee-ff"), ("103", "gg-hh-ii")):
        record(env / ".galyleo", job_id, alias)
    status, out, err = run(capsys, "stop", "--all", "--yes")
    assert (status, err) == (0, "")
    assert sorted(alias for call, alias in satellite if call == "destroy") == ["aa-bb-cc", "dd-ee-ff", "gg-hh-ii"]
    assert len(calls(log, "scancel")) == 3
    assert len(FakeSatellite.made) == 1  # one TLS set-up for the whole command, not one per session


def test_stop_a_pending_job_destroys_its_alias_once(env: Path, tmp_path: Path, capsys, satellite) -> None:
    log = fake_slurm(tmp_path / "bin", PENDING)
    path = record(env / ".galyleo", "101", "aa-bb-cc")
    token = token_of(path)
    status, out, err = run(capsys, "stop", "101")
    assert (status, err) == (0, "")
    assert out == "stopped job 101 (aa-bb-cc)\n"
    assert satellite == [("destroy", "aa-bb-cc")]
    assert calls(log, "scancel") == [["--state=PENDING", "101"]]
    assert path.exists() and not token.exists()  # the record stays for `list --all` and `clean`


def test_stop_a_running_job_leaves_the_alias_to_its_trap(env: Path, tmp_path: Path, capsys, satellite) -> None:
    log = fake_slurm(tmp_path / "bin", RUNNING)
    record(env / ".galyleo", "101", "aa-bb-cc")
    status, out, _ = run(capsys, "stop", "101")
    assert status == 0 and "stopped job 101" in out
    assert satellite == []
    assert calls(log, "scancel") == [["--state=PENDING", "101"], ["101"]]


def test_launch_undo_still_destroys_the_alias_when_cancel_fails(env: Path, tmp_path: Path, capsys,
                                                                satellite) -> None:
    fake_slurm(tmp_path / "bin", "", squeue_status=1, scancel_status=1)
    client = FakeSatellite(None)
    assert withdraw(client, "aa-bb-cc", "101") is True
    err = capsys.readouterr().err
    assert err.startswith("galyleo: warning: could not cancel job 101: Slurm did not answer (")
    assert satellite == [("destroy", "aa-bb-cc")]
    assert withdraw(client, "dd-ee-ff", None) is True  # sbatch never gave a job
    assert satellite[-1] == ("destroy", "dd-ee-ff")


def test_status_while_the_controller_is_down(env: Path, tmp_path: Path, capsys, satellite) -> None:
    log = fake_slurm(tmp_path / "bin", "", squeue_status=1)
    path = record(env / ".galyleo", "101", "aa-bb-cc")
    status, out, _ = run(capsys, "status")
    assert status == 0  # status reports; UNKNOWN is a state, not a failure of `status`
    assert "state      UNKNOWN (Slurm controller not answering)" in out.splitlines()
    status, out, _ = run(capsys, "status", "101", "--json")
    doc = json.loads(out)
    assert status == 0 and doc["state"] == "UNKNOWN" and doc["ended"] == "" and doc["expected_start"] == ""
    assert doc["satellite"] == "alias pending"
    assert path.exists() and calls(log, "scancel") == []
    assert [call for call, _ in satellite] == ["jobstate", "jobstate"]
    assert not any("--start" in argv for argv in calls(log, "squeue"))


class Terminal(io.StringIO):
    """stdin as a terminal that answers with the given text."""

    def isatty(self) -> bool:
        return True


def two_sessions(env: Path, tmp_path: Path) -> tuple:
    """101 running, 102 ended (squeue forgot it) with its output file."""
    fake_slurm(tmp_path / "bin", RUNNING)
    live = record(env / ".galyleo", "101", "aa-bb-cc")
    ended = record(env / ".galyleo", "102", "dd-ee-ff")
    output = ended.with_suffix(".out")
    output.write_text("[galyleo] session ended (exit status 0)\n")
    return live, ended, output


@pytest.mark.parametrize("answer", ["n\n", "\n", "maybe\n"])
def test_clean_answered_no_removes_nothing(env: Path, tmp_path: Path, capsys, satellite, monkeypatch,
                                           answer) -> None:
    live, ended, output = two_sessions(env, tmp_path)
    monkeypatch.setattr(sys, "stdin", Terminal(answer))
    status, out, _ = run(capsys, "clean")
    assert status == 1 and "remove them? [y/N]" in out and out.endswith("nothing removed\n")
    assert str(ended) in out and str(live) not in out
    assert live.exists() and ended.exists() and output.exists()
    assert satellite == []


@pytest.mark.parametrize("argv, answer", [(["clean"], "y\n"), (["clean"], "yes\n"), (["clean", "--yes"], None)])
def test_clean_answered_yes_or_told_yes_removes_the_ended(env: Path, tmp_path: Path, capsys, satellite, monkeypatch,
                                                          argv, answer) -> None:
    live, ended, output = two_sessions(env, tmp_path)
    if answer is not None:
        monkeypatch.setattr(sys, "stdin", Terminal(answer))
    status, out, _ = run(capsys, *argv)
    assert status == 0 and "removed 2 file(s)" in out
    assert ("remove them?" in out) == (answer is not None)
    assert live.exists() and not ended.exists() and not output.exists()
    assert satellite == [("known", "dd-ee-ff"), ("destroy", "dd-ee-ff")]


def test_clean_without_a_terminal_asks_for_yes(env: Path, tmp_path: Path, capsys, satellite) -> None:
    live, ended, output = two_sessions(env, tmp_path)
    status, _, err = run(capsys, "clean")
    assert status == 1 and "use --yes" in err
    assert live.exists() and ended.exists() and output.exists() and satellite == []


def test_a_controller_that_hangs_is_unknown_not_an_error(env: Path, tmp_path: Path, capsys, satellite,  # noqa: F811
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from galyleo import slurm

    fake_slurm(tmp_path / "bin", RUNNING, squeue_empty_then="")
    (tmp_path / "bin" / "squeue").write_text("#!/bin/sh\nexec sleep 30\n")
    monkeypatch.setattr(slurm, "SQUEUE_TIMEOUT", 1)
    path = record(env / ".galyleo", "101", "aa-bb-cc")
    status, out, err = run(capsys, "list", "--json")
    assert status == 0 and json.loads(out)["sessions"][0]["state"] == "UNKNOWN", (out, err)
    status, _, err = run(capsys, "stop", "101")
    assert status == 1 and "did not answer" in err and path.exists(), err
    assert satellite == []


def test_stop_ends_a_running_job_as_slurm_sees_it(env: Path, tmp_path: Path, capsys, satellite) -> None:
    # Judged by the job's state afterwards, not by scancel's argv: this scancel acts as Slurm's
    # does (`--state=PENDING` spares a running job, a plain scancel ends it).
    spare_running = ('case " $* " in *" --state=PENDING "*) ;; '
                     f'*) : > "{tmp_path / "bin" / "squeue.out"}" ;; esac')
    fake_slurm(tmp_path / "bin", RUNNING, scancel_then=spare_running)
    record(env / ".galyleo", "101", "aa-bb-cc")
    assert json.loads(run(capsys, "status", "101", "--json")[1])["state"] == "RUNNING"
    status, out, _ = run(capsys, "stop", "101")
    assert status == 0 and "stopped job 101" in out
    after = json.loads(run(capsys, "status", "101", "--json")[1])
    assert after["state"] not in ("RUNNING", "PENDING", "UNKNOWN"), after


@pytest.mark.parametrize("trap_ran", [True, False], ids=["trap-destroyed-it", "cancelled-before-its-trap"])
def test_launch_undo_of_a_job_that_just_started(monkeypatch: pytest.MonkeyPatch, trap_ran: bool) -> None:
    """A job RUNNING when launch undoes is cancelled; its trap owns the alias, unless scancel's TERM
    reached its shell before the trap was set: then, once the job ended, the alias is still held and
    galyleo destroys it. Exactly once either way."""
    from galyleo import slurm

    states = iter(["RUNNING", "RUNNING", "COMPLETING", "CANCELLED"])
    monkeypatch.setattr(slurm, "cancel", lambda job_id, pending_only=False, cluster="": "" if not pending_only
                        else "scancel: error: Job is not pending")
    monkeypatch.setattr(slurm, "job", lambda job_id, retry=True, cluster="": slurm.JobInfo(next(states)))
    monkeypatch.setattr(satellite_mode.time, "sleep", lambda seconds: None)
    calls: list = []

    class Client:
        def known(self, alias: str) -> bool:
            calls.append(("known", alias))
            return not trap_ran

        def destroy(self, alias: str) -> None:
            calls.append(("destroy", alias))

    destroyed = withdraw(Client(), "aa-bb-cc", "101")
    assert destroyed is (not trap_ran)
    assert calls == [("known", "aa-bb-cc")] + ([] if trap_ran else [("destroy", "aa-bb-cc")])


class Interrupted(KeyboardInterrupt):
    """What this test's own handler raises for a signal galyleo did not hold (never the process dying)."""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_between_scancel_and_destroy_still_destroys_the_alias(env: Path, tmp_path: Path, capsys,
                                                                       satellite, signum: int) -> None:
    """The login session ends (TERM, the SSH connection's HUP, Ctrl-C) while scancel runs: the job is
    cancelled, its alias destroyed once, its token removed; then stop ends, leaving the next session."""
    log = fake_slurm(tmp_path / "bin", PENDING + PENDING.replace("101", "102"),
                     scancel_then=f"kill -{signal.Signals(signum).name[3:]} $PPID")
    first, second = record(env / ".galyleo", "101", "aa-bb-cc"), record(env / ".galyleo", "102", "dd-ee-ff")
    token = token_of(first)

    def interrupted(number: int, frame: object) -> None:
        raise Interrupted(number)

    previous = {s: signal.signal(s, interrupted) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        status, out, err = run(capsys, "stop", "--all", "--yes")
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    assert satellite == [("destroy", "aa-bb-cc")]
    assert out == "stopped job 101 (aa-bb-cc)\n" and not token.exists()
    expected = ("interrupted", 130) if signum == signal.SIGINT else (
        f"terminated ({signal.Signals(signum).name})", 128 + signum)
    assert (err, status) == (f"galyleo: error: {expected[0]}\n", expected[1])
    assert calls(log, "scancel") == [["--state=PENDING", "101"]]  # 102 was left as it was
    assert first.exists() and second.exists()


def test_clean_a_signal_while_releasing_still_removes_what_it_released(env: Path, tmp_path: Path, capsys,
                                                                        satellite, monkeypatch) -> None:
    """TERM while destroytoken runs: the alias is released and the ended session's files go with it
    (never a record left naming an alias already gone), then clean ends with 143."""
    live, ended, output = two_sessions(env, tmp_path)

    def destroy_then_terminated(self: FakeSatellite, alias: str) -> None:
        self.log.append(("destroy", alias))
        os.kill(os.getpid(), signal.SIGTERM)

    def interrupted(number: int, frame: object) -> None:
        raise Interrupted(number)

    monkeypatch.setattr(FakeSatellite, "destroy", destroy_then_terminated)
    previous = signal.signal(signal.SIGTERM, interrupted)
    try:
        status, out, err = run(capsys, "clean", "--yes")
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert (status, err) == (143, "galyleo: error: terminated (SIGTERM)\n")
    assert satellite == [("known", "dd-ee-ff"), ("destroy", "dd-ee-ff")]
    assert "removed 2 file(s)" in out and live.exists() and not ended.exists() and not output.exists()

