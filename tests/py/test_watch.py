"""Following a job: `logs -f` until Slurm says the job ended, and `launch --wait`'s queue
position, against scripted Slurm replies. Time never passes: the sleeps are replaced by
steps of the script (the file grows, the reply flips), so nothing here asserts a timing.
The readiness check is real: it asks a local HTTPS proxy (fakeproxy) that answers late,
with its waiting page, an error page, or never.
"""

from __future__ import annotations

import io
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Callable, Iterator, List, Sequence

import pytest
import sessionkit
from fakeproxy import CA_BUNDLE, FakeProxy
from sessionkit import calls, fake_slurm, proxy_answers, proxy_ready, record, run

from galyleo import session_commands, slurm, watch
from galyleo.config import Config

env = sessionkit.env  # the shared fixture



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

    monkeypatch.setattr(session_commands, "time", SimpleNamespace(sleep=step))
    monkeypatch.setattr(session_commands, "FOLLOW_IDLE", 0.0)
    status, out, _ = run(capsys, "logs", "-f", "101")
    assert status == 0
    assert out == "line 0\nline 1\nline 2\nline 3\nlast words\n"
    assert len(steps) == 3
    assert all("--jobs" in argv for argv in calls(log, "squeue")[1:])  # one job asked about, not all


def test_logs_without_follow_prints_once(env: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    fake_slurm(tmp_path / "bin", "101|RUNNING|None|node7|9:58|2026|debug\n")
    record(env / ".galyleo", "101", "aa-bb-cc")
    (env / ".galyleo" / "galyleo-20261129-050000-101.out").write_text("only\n")
    monkeypatch.setattr(session_commands, "time", SimpleNamespace(sleep=lambda seconds: pytest.fail("followed")))
    assert run(capsys, "logs", "101")[:2] == (0, "only\n")


class Queue:
    """slurm.call scripted for watch: the job's own squeue row per poll, and the partition's pending ids."""

    def __init__(self, rows: Sequence[str], pending: Sequence[str]) -> None:
        self.rows = list(rows)
        self.pending = list(pending)
        self.asked: List[List[str]] = []

    def call(self, argv: Sequence[str], timeout: int = 60, **_: object) -> subprocess.CompletedProcess:
        self.asked.append(list(argv))
        replies = self.pending if "--sort=-p,i" in argv else self.rows
        assert replies, f"unscripted call {argv}"
        return subprocess.CompletedProcess(list(argv), 0, replies.pop(0), "")


def follow(monkeypatch: pytest.MonkeyPatch, queue: Queue, every: int) -> tuple:
    monkeypatch.setattr(slurm, "call", queue.call)
    monkeypatch.setattr(watch, "POLL", 0)
    monkeypatch.setattr(watch, "POSITION_EVERY", every)
    stream = io.StringIO()
    status = watch.follow("101", lambda: True, lambda: pytest.fail("cancelled"), stream)
    lines = [line.split("] ", 1)[1] for line in stream.getvalue().splitlines()]
    return status, lines


PENDING = "101|PENDING|Priority|||2026-11-29T06:00:00|debug\n"
RUNNING = "101|RUNNING|None|node7|9:58|2026|debug\n"


def test_wait_shows_the_queue_position_and_its_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    pending = ["7\n101\n9\n", "101\n9\n", "101\n9\n", "3\n4\n5\n101\n"]
    queue = Queue([PENDING, PENDING, PENDING, PENDING, RUNNING], pending)
    status, lines = follow(monkeypatch, queue, every=1)
    queued = "job 101 queued: waiting for jobs with higher priority; expected start 2026-11-29T06:00:00; "
    assert status == 0
    assert lines == [
        queued + "position 2 of 3 pending in debug",
        queued + "position 1 of 2 pending in debug (up from 2)",
        queued + "position 4 of 4 pending in debug (down from 1)",
        "ready: job 101 on node7",
    ]
    position_calls = [argv for argv in queue.asked if "--sort=-p,i" in argv]
    assert len(position_calls) == 4  # one per pending poll, none once running
    assert position_calls[0][:6] == ["squeue", "--noheader", "--states=PENDING", "--partition", "debug", "--format"]


def test_wait_looks_at_the_queue_only_every_few_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    queue = Queue([PENDING, PENDING, PENDING, RUNNING], ["101\n9\n", "9\n101\n"])
    status, lines = follow(monkeypatch, queue, every=2)
    assert status == 0 and not queue.pending  # polls 1 and 3 asked, poll 2 did not
    assert lines[-2].endswith("position 2 of 2 pending in debug (down from 1)")


def test_wait_without_a_known_position_shows_none(monkeypatch: pytest.MonkeyPatch) -> None:
    queue = Queue([PENDING, "101|CANCELLED|None|||N/A|debug\n"], ["9\n"])  # 101 not (or no longer) listed
    status, lines = follow(monkeypatch, queue, every=1)
    assert status == 1
    assert "position" not in lines[0] and lines[1].startswith("job 101 ended (cancelled)")


# `--wait`'s readiness check itself, against a local HTTPS proxy (fakeproxy): ready means the
# proxy routes `/` to Jupyter (a redirect), never its waiting page, an error page or silence.

@pytest.fixture
def proxy() -> Iterator[Callable[[Sequence[str]], FakeProxy]]:
    started: List[FakeProxy] = []

    def start(answers: Sequence[str]) -> FakeProxy:
        started.append(FakeProxy(answers))
        return started[-1]

    yield start
    for server in started:
        server.close()


PROXY_CONFIG = Config(ca_bundle=CA_BUNDLE, proxy_address="127.0.0.1")


@pytest.mark.parametrize("answer, ready", [("302", True), ("301", True), ("303", True), ("307", True),
                                           ("late", True), ("waiting", False), ("502", False), ("500", False),
                                           ("404", False), ("silent", False), ("close", False)])
def test_ready_only_when_the_proxy_redirects_to_jupyter(proxy, answer: str, ready: bool) -> None:
    server = proxy([answer])
    assert proxy_answers(server.url(), PROXY_CONFIG) is ready
    if answer != "close":
        assert server.requests == [("aa-bb-cc.x.test", "/")]  # the alias's own Host, at the proxy's address


def test_a_proxy_that_is_not_listening_is_not_ready(proxy) -> None:
    server = proxy(["302"])
    server.close()
    assert proxy_answers(server.url(), PROXY_CONFIG) is False


def test_a_certificate_for_another_name_or_from_another_ca_is_not_ready(proxy) -> None:
    server = proxy(["302"])
    assert proxy_answers(server.url(domain="y.test"), PROXY_CONFIG) is False  # hostname mismatch
    assert proxy_answers(server.url(), Config(proxy_address="127.0.0.1")) is False  # not in the system CAs
    assert proxy_answers(server.url(), PROXY_CONFIG) is True  # the same server, checked properly


def test_wait_says_ready_only_after_the_proxy_routes(monkeypatch: pytest.MonkeyPatch, proxy) -> None:
    server = proxy(["close", "waiting", "502", "late", "waiting"])
    queue = Queue([RUNNING] * 6, [])
    monkeypatch.setattr(slurm, "call", queue.call)
    monkeypatch.setattr(watch, "POLL", 0)
    stream = io.StringIO()
    status = watch.follow("101", proxy_ready(server.url(), PROXY_CONFIG), lambda: pytest.fail("cancelled"), stream)
    lines = [line.split("] ", 1)[1] for line in stream.getvalue().splitlines()]
    assert status == 0
    assert lines == ["job 101 starting on node7", "ready: job 101 on node7"]
    assert len(server.requests) == 3  # close, waiting and 502 were not ready; the late redirect was
    assert len(queue.rows) == 2


def test_wait_never_says_ready_when_the_proxy_never_answers(monkeypatch: pytest.MonkeyPatch, proxy) -> None:
    server = proxy(["silent"])
    queue = Queue([RUNNING, "101|COMPLETED|None|node7|0:00|2026|debug\n"], [])
    monkeypatch.setattr(slurm, "call", queue.call)
    monkeypatch.setattr(watch, "POLL", 0)
    stream = io.StringIO()
    status = watch.follow("101", proxy_ready(server.url(), PROXY_CONFIG), lambda: pytest.fail("cancelled"), stream)
    assert status == 1 and "ready" not in stream.getvalue().replace("before the session was ready", "")
    assert len(server.requests) == 1 and not queue.rows



