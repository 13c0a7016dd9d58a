"""How a session ended, kept beside its record as soon as galyleo knows it for sure.

Slurm forgets a job within minutes, and the job output alone cannot tell a `galyleo stop`
from a time limit: so the first sure answer (the user stopped it, it was cancelled while
pending, or Slurm's final state while it still remembers) is written once, 0600, to
`<record>.ended`, and list/status read it back a week later. Only galyleo writes this file
(the job's own ending is contract's `.ending`); a later answer never replaces the first.
"""

from __future__ import annotations

import os

from galyleo import contract, records
from galyleo.errors import GalyleoError

SUFFIX = ".ended"
MAX_BYTES = 200
STOPPED = "stopped by the user"
CANCELLED_PENDING = "cancelled while pending"


def path_of(record: str) -> str:
    """Where RECORD's ending is kept ("" for a session without a record path)."""
    return os.path.splitext(record)[0] + SUFFIX if record else ""


def remember(record: str, how: str) -> None:
    """Keep HOW as RECORD's ending, unless one is kept already; a folder that refuses is no error."""
    path = path_of(record)
    if not path or not how or os.path.lexists(path) or not os.path.isdir(os.path.dirname(path)):
        return
    try:
        records.write_private(path, " ".join(how.split())[:MAX_BYTES] + "\n")
    except GalyleoError:  # a race with another galyleo, or a full disk: the next look tries again
        pass


def remembered(record: str) -> str:
    """RECORD's kept ending, "" if none (or one that is not galyleo's own small text file)."""
    try:
        text = contract.read_own(path_of(record), MAX_BYTES + 2).decode("utf-8", "replace").strip()
    except (OSError, contract.BadFile):
        return ""
    return text if text.isprintable() and len(text) <= MAX_BYTES else ""
