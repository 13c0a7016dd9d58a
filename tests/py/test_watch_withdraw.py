"""`launch --wait` giving up (issue 24): its withdraw holds a second Ctrl-C/TERM/HUP as launch's
undo does, and Ctrl-C once the job was seen running never withdraws it, even with the
controller silent now; a job Slurm cannot vouch for keeps its alias.
"""

from __future__ import annotations

import io
import os
import signal
from typing import Iterator, List, Optional

import pytest
from conftest import Clock
from sessionkit import proxy_ready, withdraw

from galyleo import cancel, watch
from galyleo.config import Config
from galyleo.interrupts import ending_raises
from galyleo.slurm import JobInfo

URL = "https://aa-bb-cc.x.test/?token=t"


def scripted(monkeypatch: pytest.MonkeyPatch, states: List[Optional[str]]) -> None:
    """slurm.job answers STATES in turn (None: the controller is silent), then Ctrl-C comes."""
    answers: Iterator[Optional[str]] = iter(states)

    def job(job_id: str, retry: bool = True, cluster: str = "") -> Optional[JobInfo]:
        try:
            state = next(answers)
        except StopIteration:
            raise KeyboardInterrupt from None
        if state is None:
            return None
        return JobInfo("PENDING", "PartitionConfig") if state == "NEVER" else JobInfo(state, "Priority")

    monkeypatch.setattr(watch.slurm, "job", job)
    monkeypatch.setattr(watch.Place, "update", lambda self, info: "")


def follow_held(withdraw) -> int:
    """follow as launch runs it (TERM, HUP raise); a signal that escapes it is -1."""
    try:
        with ending_raises():
            return watch.follow("101", lambda: False, withdraw, io.StringIO(), holds="its alias")
    except KeyboardInterrupt:
        return -1


def interrupted_withdraw(steps: List[str], first: int, second: int):
    """A withdraw that gets two signals between its two calls (scancel, then destroytoken)."""
    def withdraw() -> None:
        steps.append("scancel")
        os.kill(os.getpid(), first)
        os.kill(os.getpid(), second)
        steps.append("destroytoken")
    return withdraw


@pytest.mark.parametrize("first, second", [
    (signal.SIGINT, signal.SIGINT), (signal.SIGTERM, signal.SIGTERM), (signal.SIGINT, signal.SIGHUP),
    (signal.SIGHUP, signal.SIGINT)])
def test_two_signals_during_an_interrupted_waits_withdraw_are_held(monkeypatch: pytest.MonkeyPatch, clock: Clock,
                                                                    first: int, second: int) -> None:
    scripted(monkeypatch, ["PENDING"])
    steps: List[str] = []
    status = follow_held(interrupted_withdraw(steps, first, second))
    assert steps == ["scancel", "destroytoken"]  # the alias is released, whatever came meanwhile
    assert status == 130  # the Ctrl-C that started it


@pytest.mark.parametrize("first, second", [(signal.SIGTERM, signal.SIGTERM), (signal.SIGINT, signal.SIGTERM)])
def test_two_signals_during_a_never_start_withdraw_are_held(monkeypatch: pytest.MonkeyPatch, clock: Clock,
                                                             first: int, second: int) -> None:
    scripted(monkeypatch, ["NEVER"] * 100)
    monkeypatch.setattr(watch, "never_starts", lambda info: "can never start")
    steps: List[str] = []
    status = follow_held(interrupted_withdraw(steps, first, second))
    assert steps == ["scancel", "destroytoken"]
    assert status == 128 + signal.SIGTERM  # the user asked to stop meanwhile: TERM is the outcome


@pytest.mark.parametrize("states", [["PENDING", "RUNNING", None, None], ["RUNNING", "COMPLETING", None],
                                    ["CONFIGURING", None]])
def test_ctrl_c_after_the_job_was_seen_started_never_withdraws_it(monkeypatch: pytest.MonkeyPatch, clock: Clock,
                                                                   states: List[Optional[str]]) -> None:
    scripted(monkeypatch, states)
    stream = io.StringIO()
    status = watch.follow("101", proxy_ready(URL, Config()), lambda: pytest.fail("withdrew a started job"), stream,
                          holds="its alias")
    assert status == 130
    assert "the session keeps running. Stop it with: galyleo stop 101" in stream.getvalue()


def test_ctrl_c_with_the_controller_silent_from_the_start_withdraws(monkeypatch: pytest.MonkeyPatch,
                                                                     clock: Clock) -> None:
    scripted(monkeypatch, [None, None])
    withdrawn: List[str] = []
    status = watch.follow("101", proxy_ready(URL, Config()), lambda: withdrawn.append("101"), io.StringIO(),
                          holds="its alias")
    assert status == 130 and withdrawn == ["101"]


class Proxy:
    def __init__(self) -> None:
        self.destroyed: List[str] = []

    def destroy(self, alias: str) -> None:
        self.destroyed.append(alias)


def test_waits_give_up_keeps_the_alias_of_a_job_slurm_cannot_vouch_for(monkeypatch: pytest.MonkeyPatch,
                                                                        capsys) -> None:
    def silent(job_id: str, cluster: str = "") -> bool:
        raise cancel.NotCancelled("Slurm did not answer")

    monkeypatch.setattr(cancel, "end_job", silent)
    proxy = Proxy()
    with pytest.raises(cancel.NotCancelled):
        withdraw(proxy, "aa-bb-cc", "101", keep_unsure=True)
    assert proxy.destroyed == []
    assert "its alias is kept (stop it with: galyleo stop 101)" in capsys.readouterr().err
    assert withdraw(proxy, "aa-bb-cc", "101") is True  # launch's undo: destroyed all the same
    assert proxy.destroyed == ["aa-bb-cc"]





