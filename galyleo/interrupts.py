"""Every signal that can end a login session, and holding them while something is made or undone.

A Ctrl-C, a `kill`, or the SSH connection dropping (HUP) may come at any moment. Between
a call that creates something (an alias, a job) and the record of it, or between
cancelling a job and destroying its alias, galyleo must not die: it holds the signal,
finishes the step, then acts on it (exit 128 + signum). Used by launch, stop and clean.
"""

from __future__ import annotations

import contextlib
import signal
from typing import Any, Dict, Iterator, List

# Every way a login session ends, handled as SIGTERM: scancel/kill, the SSH connection
# dropping (HUP), Ctrl-\ (QUIT). SIGINT stays KeyboardInterrupt (exit 130).
ENDING = (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


class Terminated(KeyboardInterrupt):
    """A signal in ENDING, raised where Python raises KeyboardInterrupt for SIGINT (exit 128 + signum)."""

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def words(self) -> str:
        """What galyleo says when this signal ends it."""
        return f"terminated ({signal.Signals(self.signum).name})"


def _terminate(signum: int, frame: Any) -> None:
    raise Terminated(signum)


@contextlib.contextmanager
def ending_raises() -> Iterator[None]:
    """Within the block, the ENDING signals raise Terminated (as SIGINT raises KeyboardInterrupt),
    so that `finally` and undo code run instead of the process just dying."""
    previous = {signum: signal.signal(signum, _terminate) for signum in ENDING}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class Held:
    """Within the block, SIGINT and the ENDING signals are recorded instead of raised; `deliver()` raises them later."""

    def __init__(self) -> None:
        self.signals: List[int] = []
        self.previous: Dict[int, Any] = {}

    def __enter__(self) -> "Held":
        for signum in (signal.SIGINT, *ENDING):
            self.previous[signum] = signal.signal(signum, lambda number, frame: self.signals.append(number))
        return self

    def __exit__(self, kind: Any, *exc: Any) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        if kind is not None and issubclass(kind, Exception) and self.signals:
            self.deliver()  # the call failed, but the user asked to stop first: that is the outcome

    def first(self) -> int:
        """The signal that counts (the first ENDING one, else SIGINT), 0 if none came."""
        ending = [signum for signum in self.signals if signum in ENDING]
        return ending[0] if ending else (signal.SIGINT if self.signals else 0)

    def deliver(self) -> None:
        signum = self.first()
        if signum in ENDING:
            raise Terminated(signum)
        if signum:
            raise KeyboardInterrupt
