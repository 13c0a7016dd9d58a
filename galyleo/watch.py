"""`launch --wait`: follow a submitted session on stderr until its URL really answers.

Queued (reason, expected start, place among the partition's pending jobs),
starting, ready. A progress line that rewrites itself only on a terminal; plain
timestamped lines, on change only, otherwise.
Ready means the job says its own redeem succeeded (contract.routed: a route someone
else made, with a stolen alias, answers too) and then the proxy routes to Jupyter:
`/` answers with Jupyter's redirect, not the proxy's waiting page (200) or an error.
The probe never carries the token: only the job, which proved its server its own,
ever sends it.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import sys
import time
import urllib.parse
from typing import Any, Callable, Optional, TextIO, Tuple

from galyleo import reasons, sessions, slurm
from galyleo.config import Config
from galyleo.slurm import LIVE, JobInfo

POLL = 0.5
NEVER_SETTLE = 2.0  # seconds a never-start reason must last: Slurm says PartitionConfig ~1 s before PartitionTimeLimit
PROBE_SECONDS = 10  # the readiness probe's total deadline
REDIRECTS = (301, 302, 303, 307)
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


def answers(url: str, config: Config) -> bool:
    """True once the proxy hands `/` to Jupyter (a redirect), never for the waiting page."""
    from galyleo.satellite import Deadline, deadline, trusted

    parts = urllib.parse.urlsplit(url)
    context = ssl.create_default_context(cafile=trusted(config.ca_bundle))  # what the Satellite calls trust
    try:
        with deadline(PROBE_SECONDS):  # a proxy that drips its answer must not hold --wait
            return probe(parts.hostname or "", parts.port or 443, context, config.proxy_address) in REDIRECTS
    except (OSError, http.client.HTTPException, Deadline):
        return False


def probe(host: str, port: int, context: ssl.SSLContext, proxy_address: str) -> int:
    """The HTTP status of `GET /` on HOST (dialled at PROXY_ADDRESS if set)."""
    raw = socket.create_connection((proxy_address or host, port), timeout=5)
    with context.wrap_socket(raw, server_hostname=host) as sock:
        conn = http.client.HTTPSConnection(host, port, timeout=5)
        conn.sock = sock
        conn.request("GET", "/", headers={"Host": host})
        return conn.getresponse().status


def describe(info: JobInfo, place: str = "") -> str:
    if info.state == "PENDING":
        why = reasons.explain(info.reason).words
        eta = f"; expected start {info.start}" if info.start not in ("", "N/A", "Unknown") else ""
        return f"queued: {why}{eta}{place}"
    if info.state == "RUNNING":
        return f"starting on {info.node}"
    return info.state.lower()


def follow(job_id: str, url: str, config: Config, withdraw: Callable[[], Any],
           stream: TextIO = sys.stderr, cluster: str = "", ready: Optional[Callable[[], bool]] = None,
           alias: bool = True) -> int:
    """Watch until ready (0), the job ends first (1), or can never start (1: cancelled, with why, once
    its never-start reasons have lasted NEVER_SETTLE: Slurm's first reason is not always its last);
    Ctrl-C (or TERM, HUP, QUIT) cancels a job never seen started (128 + signal); once it was seen
    running, the session is left running, even if the controller is silent now. WITHDRAW cancels
    the job and releases its alias, with every signal held until it is done (as launch's undo).
    READY says when a running session is ready (launch: the job's own word, then the proxy's
    answer; default: the proxy routes URL to Jupyter); without an ALIAS (ssh mode) the messages
    name only the job."""
    its_alias, releasing = (" and its alias", " and releasing its alias") if alias else ("", "")
    report = Reporter(stream)
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
            if info.state == "RUNNING" and (ready() if ready else answers(url, config)):
                report.done(f"ready: job {job_id} on {info.node}")
                return 0
            report.show(f"job {job_id} {describe(info, place.update(info))}" if info.state != "UNKNOWN" else
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
