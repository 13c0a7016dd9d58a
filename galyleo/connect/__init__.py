"""Connection modes: how the browser reaches a session. One module per mode, one interface.

Each mode is a `base.Connection` subclass in a module named after it, with its job-side
hooks in one snippet. `of(name, config)` loads it by name, so nothing outside this
package compares a mode's name and a new mode is its module, its snippet and its name
added to MODES.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Dict, Optional

MODES = ("satellite", "ssh")  # in the order help lists them; the first is the default


def choose(given: Optional[str], config: Any) -> str:
    """The connection mode: --connect if given, else the site's `connect`; both within
    `connect_allowed`, and the mode's own settings sound (refused before anything is made)."""
    from galyleo.errors import UsageError, bad

    allowed = tuple(config.connect_allowed)
    if any(m not in MODES for m in allowed) or not allowed:
        raise bad("setting connect_allowed", ",".join(allowed), f"a list of {' and/or '.join(MODES)}, not empty")
    if given is not None and given not in MODES:
        raise bad("--connect", given, "one of " + ", ".join(MODES))
    chosen = str(config.connect if given is None else given)
    if chosen not in allowed:
        where = "--connect" if given is not None else "setting connect"
        raise UsageError(f"{where} {chosen!r}: not allowed at this site (connect_allowed: {', '.join(allowed)})")
    of(chosen, config).check_settings()
    return chosen


def of(name: str, config: Any) -> Any:
    """The connection mode NAME (one of MODES), bound to the site's settings."""
    if name not in MODES:
        raise ValueError(f"unknown connection mode {name!r}")
    module = importlib.import_module(f"{__name__}.{name}")
    return module.MODE(config)


def modes(config: Any) -> Callable[[str], Any]:
    """`of` for one command over many sessions: each mode is made once, so one Satellite client
    (one TLS set-up, one connection pool) serves every session it stops or releases."""
    made: Dict[str, Any] = {}

    def mode(name: str) -> Any:
        if name not in made:
            made[name] = of(name, config)
        return made[name]

    return mode
