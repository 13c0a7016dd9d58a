"""How a galyleo command ends when it fails: one line on stderr and an exit status.

With --json on the command line, a failure is also one JSON object on stdout
(docs/session.schema.json), so that a portal never parses prose. Imports only sys:
`help` passes through here.
"""

from __future__ import annotations

import sys

from galyleo import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import NoReturn

PROG = "galyleo"
# Set by cli.main when the command line holds --json: a failure is then also one JSON object on stdout.
ERRORS_AS_JSON = [False]


def fail(message: str, status: int = 2) -> NoReturn:
    """One line on stderr and exit `status`; with --json also `{"error", "exit"}` on stdout."""
    sys.stderr.write(f"{PROG}: error: {message}\n")
    if ERRORS_AS_JSON[0]:
        import json

        try:
            print(json.dumps({"error": message, "exit": status}), flush=True)
        except (BrokenPipeError, ValueError):
            pass
    sys.exit(status)


def quiet_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's own flush at exit cannot fail again."""
    import os

    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass
