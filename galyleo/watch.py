"""`launch --wait`: follow a submitted session on stderr until it is ready.

Queued (reason, expected start, place among the partition's pending jobs),
starting, ready. A progress line that rewrites itself only on a terminal; plain
timestamped lines, on change only, otherwise. What "ready" means is the connection
mode's (connect/*.py `ready`): this module only asks it while the job runs.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Callable, Optional, TextIO, Tuple

from galyleo import reasons, sessions, slurm
from galyleo.slurm import LIVE, JobInfo

POLL = 0.5
NEVER_SETTLE = 2.0  # seconds a never-start reason must last: Slurm says PartitionConfig ~1 s before PartitionTimeLimit
POSITION_EVERY = 10  # polls between looks at the partition's queue (a bigger squeue than the job's own)
SPINNER = "|/-\\"


class Reporter:
    """Progress on stderr: one rewriting line on a TTY, timestamped lines on change otherwise."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.last = ""
        self.ticks = 0

    def show(self, text: str) -> None:
        if self.tty:
            self.ticks += 1
            self.stream.write(f"\r\033[K{SPINNER[self.ticks % 4]} {text}")
            self.stream.flush()
        elif text != self.last:
            self.stream.write(f"[{time.strftime('%H:%M:%S')}] {text}\n")
            self.stream.flush()
        self.last = text

    def done(self, text: str) -> None:
        try:
            if self.tty:
                self.stream.write("\r\033[K")
            self.stream.write(f"[{time.strftime('%H:%M:%S')}] {text}\n")
            self.stream.flush()
        except OSError:  # the terminal went with a SIGHUP: what follows (an undo) must still run
            pass


class Place:
    """The job's place among its partition's pending jobs while it waits, and where it was before."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self.polls = 0
        self.now: Optional[Tuple[int, int]] = None
        self.before: Optional[Tuple[int, int]] = None

    def update(self, info: JobInfo) -> str:
        """Look again every POSITION_EVERY polls while pending; the words for the progress line."""
        if info.state != "PENDING":
            return ""
        if self.polls % POSITION_EVERY == 0:
            found = slurm.position(self.job_id, info.partition)
            if found and self.now and found[0] != self.now[0]:
                self.before = self.now
            self.now = found or self.now
        self.polls += 1
        if not self.now:
            return ""
        moved = f" ({'up' if self.now[0] < self.before[0] else 'down'} from {self.before[0]})" if self.before else ""
        return f"; position {self.now[0]} of {self.now[1]} pending in {info.partition}{moved}"


def progress(info: JobInfo, place: str = "") -> str:
    """The progress line's words for the job's state now."""
    if info.state == "PENDING":
        why = reasons.explain(info.reason).words
        eta = f"; expected start {info.start}" if info.start not in ("", "N/A", "Unknown") else ""
        return f"queued: {why}{eta}{place}"
    if info.state == "RUNNING":
        return f"starting on {info.node}"
    return info.state.lower()


def follow(job_id: str, ready: Callable[[], bool], withdraw: Callable[[], Any],
           stream: Optional[TextIO] = None, cluster: str = "", holds: str = "") -> int:
    """Watch until ready (0), the job ends first (1), or can never start (1: cancelled, with why, once
    its never-start reasons have lasted NEVER_SETTLE: Slurm's first reason is not always its last);
    Ctrl-C (or TERM, HUP, QUIT) cancels a job never seen started (128 + signal); once it was seen
    running, the session is left running, even if the controller is silent now. WITHDRAW cancels
    the job and releases its alias, with every signal held until it is done (as launch's undo).
    READY says when a running session is ready (the connection mode's word); HOLDS names what
    the withdraw releases besides the job ("its alias"), for the messages."""
    its_alias, releasing = (f" and {holds}", f" and releasing {holds}") if holds else ("", "")
    report = Reporter(stream or sys.stderr)
    place = Place(job_id)
    info = JobInfo("PENDING")
    started = False  # once Slurm has said the job left PENDING, Ctrl-C never withdraws it
    undo = Once(withdraw)
    never_since: Optional[float] = None  # when the job's never-start reasons began; None while it may start
    try:
        while True:
            info = slurm.job(job_id, retry=False, cluster=cluster) or JobInfo("UNKNOWN")
            started = started or info.state not in ("PENDING", "UNKNOWN")
            if info.state not in LIVE and info.state != "UNKNOWN":
                how = sessions.ENDINGS.get(info.state, info.state.lower())
                report.done(f"job {job_id} ended ({how}) before the session was ready; "
                            f"see `galyleo logs {job_id}`")
                return 1
            if info.state == "PENDING" and reasons.explain(info.reason).never:
                never_since = time.monotonic() if never_since is None else never_since
                if time.monotonic() - never_since >= NEVER_SETTLE:  # settled: name the reason squeue shows now
                    report.done(f"job {job_id} {never_starts(info)}; cancelling it{releasing}")
                    signum = undo()
                    return 128 + signum if signum else 1
            else:
                never_since = None
            if info.state == "RUNNING" and ready():
                report.done(f"ready: job {job_id} on {info.node}")
                return 0
            report.show(f"job {job_id} {progress(info, place.update(info))}" if info.state != "UNKNOWN" else
                        f"job {job_id}: the Slurm controller does not answer; retrying")
            time.sleep(POLL)
    except KeyboardInterrupt as exc:  # SIGINT, or launch's Terminated (TERM, HUP, QUIT: exit 128 + signum)
        if not started:
            report.done(f"interrupted: cancelling pending job {job_id}{its_alias}")
            undo()
        else:
            report.done(f"stopped watching; the session keeps running. Stop it with: galyleo stop {job_id}")
        return 128 + getattr(exc, "signum", 2)


class Once:
    """WITHDRAW called at most once, every signal held while it runs; the signal held, if any."""

    def __init__(self, withdraw: Callable[[], Any]) -> None:
        self.withdraw = withdraw
        self.done = False

    def __call__(self) -> int:
        from galyleo.interrupts import Held

        with Held() as held:
            if not self.done:
                self.done = True
                self.withdraw()
        return held.first()


def never_starts(info: JobInfo) -> str:
    """Why a pending job can never start, with the partition's limit it hit when sinfo says."""
    reason = reasons.explain(info.reason)
    hit = reasons.limit(info.reason, slurm.partition(info.partition))
    return f"can never start as submitted: {reason.words}" + (f" ({hit})" if hit else "") + f"; {reason.advice}"
