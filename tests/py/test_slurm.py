"""slurm.py's typed results from scripted replies (batchspawner's transcript style): the argv
each query runs, how its answer parses, and what a controller that fails or hangs gives."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import List, Sequence, Tuple

import pytest

from galyleo import slurm
from galyleo.errors import SubmitError


class Script:
    """slurm.call answered from a list of (status, stdout, stderr); every argv is kept."""

    def __init__(self, *replies: Tuple[int, str, str]) -> None:
        self.replies = list(replies)
        self.asked: List[List[str]] = []

    def call(self, argv: Sequence[str], timeout: int = 60, **_: object) -> subprocess.CompletedProcess:
        self.asked.append(list(argv))
        assert self.replies, f"unscripted call {argv}"
        status, out, err = self.replies.pop(0)
        return subprocess.CompletedProcess(list(argv), status, out, err)


@pytest.fixture
def script(monkeypatch: pytest.MonkeyPatch):
    """Install a Script (no back-off waits); returns a function taking its replies."""
    monkeypatch.setattr(slurm, "BACKOFF", (0.0, 0.0, 0.0))

    def install(*replies: Tuple[int, str, str]) -> Script:
        scripted = Script(*replies)
        monkeypatch.setattr(slurm, "call", scripted.call)
        return scripted

    return install


def test_rows_keep_a_bar_in_the_job_name_and_skip_other_shapes() -> None:
    text = ("101|RUNNING|None|node7|9:58|2026-11-29T06:00:00|debug|2026-11-29T05:00:00|my|odd|name\n"
            "102|PENDING|Priority|||N/A|gpu\n"
            "not a row\n"
            "103|PENDING|Priority\n")
    rows = slurm.parse_rows(text)
    assert sorted(rows) == ["101", "102"]
    assert rows["101"] == slurm.JobInfo("RUNNING", "None", "node7", "9:58", "2026-11-29T06:00:00", "debug",
                                        "2026-11-29T05:00:00", "my|odd|name")
    assert rows["102"] == slurm.JobInfo("PENDING", "Priority", "", "", "N/A", "gpu")
    assert rows["101"].live and rows["102"].live


@pytest.mark.parametrize("state, live", [("RUNNING", True), ("UNKNOWN", True), ("COMPLETED", False),
                                         ("ENDED", False), ("CANCELLED", False)])
def test_unknown_counts_as_live(state: str, live: bool) -> None:
    assert slurm.JobInfo(state).live is live


def test_my_jobs_asks_for_every_state_of_this_user(script) -> None:
    scripted = script((0, "101|RUNNING|None|node7|9:58|2026|debug|2026|galyleo\n", ""))
    rows = slurm.my_jobs()
    assert rows is not None and rows["101"].name == "galyleo"
    assert scripted.asked == [["squeue", "--noheader", "--me", "--states=all", "--format", slurm.SQUEUE_FORMAT]]


def test_my_jobs_is_none_after_the_retries(script) -> None:
    failed = (1, "", "slurm_load_jobs error: Unable to contact slurm controller")
    scripted = script(*[failed] * (len(slurm.BACKOFF) + 1))
    assert slurm.my_jobs() is None and not scripted.replies


def test_a_job_slurm_forgot_has_ended_and_no_answer_is_none(script) -> None:
    scripted = script((0, "", ""), (1, "", "slurm_load_jobs error: Invalid job id specified"), (1, "", "down"))
    assert slurm.job("101") == slurm.JobInfo("ENDED")
    assert slurm.job("101") == slurm.JobInfo("ENDED")  # an unknown job id is an answer, not a failure
    assert slurm.job("101", retry=False) is None
    assert scripted.asked[0] == ["squeue", "--noheader", "--states=all", "--jobs", "101",
                                 "--format", slurm.SQUEUE_FORMAT]


def test_a_squeue_that_hangs_or_is_missing_is_no_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    def hangs(argv: Sequence[str], timeout: int = 60, **_: object) -> subprocess.CompletedProcess:
        raise SubmitError("squeue: no answer")

    monkeypatch.setattr(slurm, "call", hangs)
    assert slurm.job("101", retry=False) is None and slurm.my_jobs() is None


def test_another_clusters_job_is_asked_there(script, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    conf = tmp_path / "slurm.conf"
    conf.write_text("ClusterName=here\n")
    monkeypatch.setenv("SLURM_CONF", str(conf))
    scripted = script((0, "", ""), (0, "", ""), (0, "", ""))
    slurm.job("101", cluster="faraway")
    slurm.job("101", cluster="here")
    slurm.my_jobs("faraway")
    assert [argv[1:3] for argv in scripted.asked] == [["-M", "faraway"], ["--noheader", "--states=all"],
                                                      ["-M", "faraway"]]
    assert slurm.other_cluster("faraway") == "faraway" and slurm.other_cluster("here") == ""


@pytest.mark.parametrize("pending, expected", [
    ("7\n101\n9\n", (2, 3)),
    ("101\n", (1, 1)),
    ("7\n7\n101\n", (2, 2)),  # a job listed twice (an array's rows) counts once
    ("7\n9\n", None),  # no longer pending
    ("", None),
])
def test_position_among_the_partitions_pending_jobs(script, pending: str, expected) -> None:
    scripted = script((0, pending, ""))
    assert slurm.position("101", "debug") == expected
    assert scripted.asked == [["squeue", "--noheader", "--states=PENDING", "--partition", "debug", "--format", "%i",
                               "--sort=-p,i"]]


def test_position_without_a_partition_or_an_answer(script) -> None:
    scripted = script((1, "", "down"))
    assert slurm.position("101", "") is None and scripted.asked == []
    assert slurm.position("101", "debug") is None and len(scripted.asked) == 1  # asked once, never retried


@pytest.mark.parametrize("reply, expected", [
    ((0, "2026-11-29T06:00:00\n", ""), "2026-11-29T06:00:00"),
    ((0, "N/A\n", ""), ""),
    ((0, "Unknown\n", ""), ""),
    ((1, "2026-11-29T06:00:00\n", "error"), ""),
])
def test_start_estimate(script, reply: Tuple[int, str, str], expected: str) -> None:
    scripted = script(reply)
    assert slurm.expected_start("101") == expected
    assert scripted.asked == [["squeue", "--noheader", "--start", "--jobs", "101", "--format", "%S"]]


def test_completion_asks_slurm_with_a_quoted_job_name() -> None:
    assert slurm.shell_job_ids("galyleo") == "squeue --me --noheader --name galyleo --format %i"
    assert slurm.shell_job_ids("a b") == "squeue --me --noheader --name 'a b' --format %i"


@pytest.mark.parametrize("text, expected", [
    ("# c\nClusterName=expanse\nSlurmctldHost=a\n", "expanse"),
    ("clustername = my-cluster # comment\n", "my-cluster"),
    ("SlurmctldHost=a\n", ""),
    ("ClusterName=we$ird`x`\n", "weirdx"),
])
def test_cluster_name_from_slurm_conf(tmp_path: Path, text: str, expected: str) -> None:
    from galyleo import slurm

    conf = tmp_path / "slurm.conf"
    conf.write_text(text)
    assert slurm.cluster_name({"SLURM_CONF": str(conf)}) == expected
