"""What the job prints (and keeps in its private ending file) that galyleo reads back.

Owned here and rendered into the job (`values`): the job never restates a mark.
Only lines in galyleo_log's own form count (LOGGED), at a line's start, so no text
another program writes into the job output (Jupyter's request log) is ever read
as the job's word.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List

from galyleo.contract import BadFile, files_of_output, read_own

# Only lines in galyleo_log's own form count: `[galyleo HH:MM:SS] ` at a line's start, which
# Jupyter's log lines (`[I 2026-...`) never are, whatever a request puts into them.
LOGGED = r"^\[galyleo[^\]\n]*\] "
MARK_ENDED = "session ended (exit status %s)"  # cleanup.sh.j2's last line: a printf format
MARK_TERM = "received SIGTERM (scancel or time limit)"
MARK_INT = "received SIGINT"
MARK_HUP = "received SIGHUP"
MARK_IDLE_ENDED = "ended: idle for %s min (no kernel running and no request; Jupyter shut itself down)"
MARK_STAMP = "[galyleo stamp] %s %s"  # a step and its seconds since the job started (benchmarks read them)


def pattern(mark: str, slot: str = r"(\d+)") -> "re.Pattern[str]":
    """A MARK_* printf format as a regex, each %s a group matching SLOT."""
    return re.compile(re.escape(mark).replace("%s", slot))


def logged(mark: str) -> "re.Pattern[str]":
    """MARK as a whole line galyleo_log printed (not text inside another program's line)."""
    return re.compile(LOGGED + pattern(mark).pattern + "$", re.M)


def exit_statuses(text: str) -> List[str]:
    """The exit statuses the job output's MARK_ENDED lines give, in order."""
    return logged(MARK_ENDED).findall(text)


def says(text: str, mark: str) -> bool:
    """Whether the job itself logged MARK (a MARK_* without a slot) in TEXT."""
    return bool(logged(mark).search(text))


# The job's own ending, one line in the session's private `ending` file (never the job
# output, where anyone who reaches Jupyter can write through its request log).
ENDING_IDLE = "idle for %s min"  # the server shut itself down for no activity, as the job saw it
ENDING_MAX_BYTES = 256


def ending_of(output: str) -> str:
    """How the job whose output is OUTPUT says it ended, from its ending file ("" if it did not)."""
    if not output:  # a record without an output has no ending file either (never one in the cwd)
        return ""
    try:
        text = read_own(files_of_output(output).ending, ENDING_MAX_BYTES).decode("ascii").strip()
    except (OSError, BadFile, UnicodeDecodeError):
        return ""
    return text if pattern(ENDING_IDLE).fullmatch(text) else ""


def stamps(text: str) -> Dict[str, float]:
    """The job's timing stamps: step -> seconds since it started (the last of each)."""
    found = re.findall("^" + re.escape(MARK_STAMP).replace("%s", r"(\S+)", 1).replace("%s", r"([0-9.]+)") + "$",
                       text, re.M)
    return {step: float(value) for step, value in found}



def values() -> Dict[str, Any]:
    """The marks as the `GALYLEO_*` values the snippets use."""
    return {
        "GALYLEO_MARK_ENDED": MARK_ENDED,
        "GALYLEO_MARK_TERM": MARK_TERM,
        "GALYLEO_MARK_INT": MARK_INT,
        "GALYLEO_MARK_HUP": MARK_HUP,
        "GALYLEO_MARK_STAMP": MARK_STAMP,
    }
