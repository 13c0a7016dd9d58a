"""Shared recorder for the bats stand-ins: one JSON object per line in $STUB_LOG/calls.jsonl.

Every stand-in appends {"cmd", "event", "t", "argv", "cwd", "pid", "container", "conda", ...}
with a single O_APPEND write, so lines from concurrent processes never interleave and
values with spaces, quotes or newlines come back verbatim (JSON escapes them). The line
order is the order of events (`stublog index`); "t" is the wall-clock time of each.
Secrets are never recorded: the fake Jupyter logs only whether its token is set,
its length and its SHA-256.
"""

import json
import os
import sys
import time


def log_dir() -> str:
    path = os.environ.get("STUB_LOG")
    if not path:
        sys.stderr.write("stand-in: STUB_LOG is not set\n")
        sys.exit(97)
    return path


def record(cmd: str, event: str = "call", **fields: object) -> None:
    """Append one event for CMD; `fields` (JSON-able) are merged into it."""
    try:
        cwd = os.getcwd()
    except OSError:
        cwd = None
    entry = {
        "cmd": cmd,
        "event": event,
        "t": time.time(),
        "pid": os.getpid(),
        "cwd": cwd,
        "container": os.environ.get("STUB_CONTAINER"),
        "conda": os.environ.get("STUB_CONDA_ACTIVE"),
    }
    entry.update(fields)
    line = (json.dumps(entry) + "\n").encode("utf-8", "surrogateescape")
    fd = os.open(os.path.join(log_dir(), "calls.jsonl"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
