"""Idle culling: the one owner of what it means, what Jupyter is told, and what the job reports.

Built on jupyter_server's own mechanisms (no poller of ours decides anything): kernels
idle for the timeout are shut down even with a browser tab connected, busy ones never
are; terminals likewise; and the server shuts itself down once it has had no kernel
and no request for the timeout. The job only watches, so that `galyleo status` can
say when the session would end and the job output can say why it did. Voila has no
server-level idle shutdown: the apps table (apps.py, `culls`) says where culling applies.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

from galyleo import contract, joblog

MAX_MINUTES = 525600  # a year: far beyond any time limit, far below what overflows anything
SERVER_CHECK = 60  # jupyter_server checks shutdown_no_activity every 60 s (hard-coded there)
WATCH_INTERVAL = 60  # how often the job looks at Jupyter when culling is off
WATCH_MISSES = 2  # refusals in a row (port closed, process alive) before the job stops Jupyter

# What the job reads in Jupyter's /api/status (its activity file) to decide that Jupyter,
# having exited 0, shut itself down idle: no activity for the timeout until it exited.
# A bash ERE (=~); never a grep of the job output, where others can write.
STATUS_SINCE = '"last_activity": *"([^"]+)"'
# The activity file the job keeps beside its output (contract.SessionFiles.activity):
# the timeout and Jupyter's /api/status.
ACTIVITY_MAX_BYTES = 1 << 16  # Jupyter's /api/status is about 150 bytes
ACTIVITY_FORMAT = '{"idle_timeout": %s, "status": %s}\\n'  # printf format, written by the job


def cull_interval(seconds: int) -> int:
    """How often kernels are checked: a quarter of the timeout, 10 s to 60 s."""
    return min(60, max(10, seconds // 4))


def watch_interval(minutes: int) -> int:
    return cull_interval(minutes * 60) if minutes else WATCH_INTERVAL


def jupyter_settings(minutes: int) -> Tuple[str, ...]:
    """Command-line settings for jupyter lab/notebook; none when culling is off."""
    if not minutes:
        return ()
    seconds = minutes * 60
    interval = cull_interval(seconds)
    return (
        f"--ServerApp.shutdown_no_activity_timeout={seconds}",
        f"--MappingKernelManager.cull_idle_timeout={seconds}",
        f"--MappingKernelManager.cull_interval={interval}",
        "--MappingKernelManager.cull_connected=True",
        "--MappingKernelManager.cull_busy=False",
        f"--TerminalManager.cull_inactive_timeout={seconds}",
        f"--TerminalManager.cull_interval={interval}",
    )


def ended_message(minutes: int) -> str:
    return joblog.MARK_IDLE_ENDED % minutes


def ending(minutes: int) -> str:
    """The line the job writes into its ending file when it ended idle (joblog.ending_of reads it)."""
    return joblog.ENDING_IDLE % minutes


def activity_path(output: str) -> str:
    """The activity file of a session whose job output is OUTPUT (`x.out` -> `x.activity`)."""
    return contract.files_of_output(output).activity


@dataclass(frozen=True)
class Activity:
    """What the job last read from Jupyter's /api/status, and when."""

    timeout: int  # seconds
    kernels: int
    last_activity: float  # epoch seconds
    checked: float

    def ends_around(self) -> float:
        """When the session ends if nothing happens: kernels are culled after the timeout
        (checked every cull interval), then the server checks once a minute."""
        extra = cull_interval(self.timeout) if self.kernels else 0
        return self.last_activity + self.timeout + extra + SERVER_CHECK


def read_activity(output: str) -> Optional[Activity]:
    """The activity file beside OUTPUT, or None when there is none (culling off, not running yet)."""
    import json  # only status reads it: generate's start-up stays lean

    path = activity_path(output)
    try:
        data: Dict[str, Any] = json.loads(contract.read_own(path, ACTIVITY_MAX_BYTES))  # never a FIFO or a link
        checked = os.stat(path).st_mtime
        status = data["status"]
        return Activity(int(data["idle_timeout"]), int(status.get("kernels", 0)),
                        parse_utc(str(status["last_activity"])), checked)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return None


def words(activity: Optional[Activity], now: float) -> str:
    """One line for `galyleo status`: when the session ends if nobody uses it ("" if unknown)."""
    if activity is None:
        return ""
    import time

    ago = max(0, int(now - activity.last_activity)) // 60
    end = time.strftime("%H:%M UTC", time.gmtime(activity.ends_around()))
    kernels = f" ({activity.kernels} kernel(s) are shut down first, unless running code)" if activity.kernels else ""
    return (f"ends if idle: after {activity.timeout // 60} min without activity; last activity {ago} min ago;"
            f" by about {end}{kernels}")


def parse_utc(text: str) -> float:
    """Jupyter's `2026-12-02T10:50:50.028352Z` (fraction optional) as epoch seconds."""
    import calendar
    import time

    whole = text.rstrip("Z").split(".")[0].replace("+00:00", "")
    return float(calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S")))


def activity_values() -> Dict[str, Any]:
    """Where the idle watch keeps the activity file (idle.py reads it) and the job its ending."""
    suffixes = contract.SUFFIXES
    return {"GALYLEO_SUFFIX_ACTIVITY": suffixes["activity"], "GALYLEO_SUFFIX_ENDING": suffixes["ending"]}
