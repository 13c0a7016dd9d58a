"""interrupts.Held: every signal that comes inside a held block is held, not only the first.

Launch, stop and clean hold signals between creating something and recording it; a
second Ctrl-C or a TERM after a HUP must not break through half-way. The handlers in
place before the block raise Leaked here, so a signal that escapes the hold shows as
that exception instead of ending pytest.
"""

from __future__ import annotations

import os
import signal
from typing import Any, Iterator, List, Tuple

import pytest

from galyleo.interrupts import ENDING, Held, Terminated

HELD = (signal.SIGINT, *ENDING)


class Leaked(Exception):
    """A signal reached the handler that was in place before the hold."""


@pytest.fixture(autouse=True)
def outer_handlers() -> Iterator[None]:
    def leak(signum: int, frame: Any) -> None:
        raise Leaked(signal.Signals(signum).name)

    previous = {signum: signal.signal(signum, leak) for signum in HELD}
    yield
    for signum, handler in previous.items():
        signal.signal(signum, handler)


def pairs() -> List[Tuple[int, int]]:
    """Each held signal twice, and each ENDING signal followed by every other held signal."""
    same = [(s, s) for s in HELD]
    different = [(first, second) for first in ENDING for second in HELD if second != first]
    return same + different


def expected(first: int) -> Any:
    return Terminated if first in ENDING else KeyboardInterrupt


def ids(pair: Tuple[int, int]) -> str:
    return "-then-".join(signal.Signals(s).name for s in pair)


def outcome(block: Any) -> BaseException:
    """What BLOCK raised, as a value: a KeyboardInterrupt that escaped the hold must fail
    this test, not end pytest (which takes it for the user's Ctrl-C)."""
    try:
        block()
    except BaseException as exc:  # noqa: B036 (KeyboardInterrupt and Terminated are the point)
        return exc
    pytest.fail("nothing was raised")


def signalled_first(exc: BaseException, first: int) -> bool:
    if first in ENDING:
        return isinstance(exc, Terminated) and exc.signum == first
    return type(exc) is KeyboardInterrupt


@pytest.mark.parametrize("first, second", pairs(), ids=[ids(p) for p in pairs()])
def test_held_block_runs_to_its_end_through_two_signals_and_the_first_is_delivered_after(
        first: int, second: int) -> None:
    steps = []
    held = Held()

    def block() -> None:
        with held:
            steps.append("started")
            os.kill(os.getpid(), first)
            steps.append("after the first signal")
            os.kill(os.getpid(), second)
            steps.append("after the second signal")
        held.deliver()

    raised = outcome(block)
    assert steps == ["started", "after the first signal", "after the second signal"], repr(raised)
    assert signalled_first(raised, first), repr(raised)
    with pytest.raises(Leaked):  # the hold is over: the handler from before is back
        os.kill(os.getpid(), second)


@pytest.mark.parametrize("first, second", pairs(), ids=[ids(p) for p in pairs()])
def test_held_block_that_fails_after_two_signals_ends_with_the_first_signal(first: int, second: int) -> None:
    def block() -> None:
        with Held():
            os.kill(os.getpid(), first)
            os.kill(os.getpid(), second)
            raise OSError("the call failed")

    raised = outcome(block)
    assert signalled_first(raised, first), repr(raised)
