"""`launch --wait`: follow a submitted session on stderr until its URL really answers.

Queued (reason, expected start), starting, ready. A progress line that rewrites
itself only on a terminal; plain timestamped lines, on change only, otherwise.
Ready means the proxy routes to Jupyter: `/` answers with Jupyter's redirect,
not the proxy's waiting page (200) or an error.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import sys
import time
import urllib.parse
from typing import Any, Callable, TextIO

from galyleo import reasons, sessions
from galyleo.config import Config
from galyleo.sessions import LIVE, JobInfo

POLL = 0.5
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
        if self.tty:
            self.stream.write("\r\033[K")
        self.stream.write(f"[{time.strftime('%H:%M:%S')}] {text}\n")
        self.stream.flush()


def answers(url: str, config: Config) -> bool:
    """True once the proxy hands `/` to Jupyter (a redirect), never for the waiting page."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    context = ssl.create_default_context(cafile=config.ca_bundle or None)
    try:
        target = config.proxy_address or host
        raw = socket.create_connection((target, parts.port or 443), timeout=5)
        with context.wrap_socket(raw, server_hostname=host) as sock:
            conn = http.client.HTTPSConnection(host, parts.port or 443, timeout=5)
            conn.sock = sock
            conn.request("GET", "/", headers={"Host": host})
            status = conn.getresponse().status
    except (OSError, http.client.HTTPException):
        return False
    return status in (301, 302, 303, 307)


def describe(info: JobInfo) -> str:
    if info.state == "PENDING":
        why = reasons.explain(info.reason).words
        eta = f"; expected start {info.start}" if info.start not in ("", "N/A", "Unknown") else ""
        return f"queued: {why}{eta}"
    if info.state == "RUNNING":
        return f"starting on {info.node}"
    return info.state.lower()


def follow(job_id: str, url: str, config: Config, on_pending_interrupt: Callable[[], Any],
           stream: TextIO = sys.stderr) -> int:
    """Watch until ready (0), the job ends first (1); Ctrl-C cancels a pending job (130)."""
    report = Reporter(stream)
    advised = False
    info = JobInfo("PENDING")
    try:
        while True:
            info = sessions.job(job_id, retry=False) or JobInfo("UNKNOWN")
            if info.state not in LIVE and info.state != "UNKNOWN":
                report.done(f"job {job_id} ended ({info.state.lower()}) before the session was ready; "
                            f"see `galyleo logs {job_id}`")
                return 1
            if info.state == "PENDING" and not advised and reasons.advice(info.reason):
                report.done(f"job {job_id}: {reasons.advice(info.reason)}")
                advised = True
            if info.state == "RUNNING" and answers(url, config):
                report.done(f"ready: job {job_id} on {info.node}")
                return 0
            report.show(f"job {job_id} {describe(info)}" if info.state != "UNKNOWN" else
                        f"job {job_id}: the Slurm controller does not answer; retrying")
            time.sleep(POLL)
    except KeyboardInterrupt:
        if info.state in ("PENDING", "UNKNOWN"):
            report.done(f"interrupted: cancelling pending job {job_id} and its alias")
            on_pending_interrupt()
        else:
            report.done(f"stopped watching; the session keeps running. Stop it with: galyleo stop {job_id}")
        return 130
