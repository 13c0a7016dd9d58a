"""The numbers the job script runs by: its intervals, retries and timeouts.

`server.sh.j2` and `cleanup.sh.j2` use only the GALYLEO_* names bound here (through
`values.sh.j2`), never a literal. One is the site's (`stop_grace`); the others are
galyleo's own choices, each with its reason.
"""

from __future__ import annotations

from typing import Dict, Union

from galyleo.config import Config

POLL_MS = 100  # between looks while waiting for Jupyter to answer or to exit: a quick one is not kept waiting
READY_PROBE_SECONDS = 2  # one readiness request; a Jupyter that accepts but does not answer yet is asked again
LOOK_SECONDS = 5  # one look at a running Jupyter: a busy server has time to answer (slow counts as alive anyway)
PORT_PROBE_SECONDS = 2  # a port that holds a connection without answering (a full backlog) must not hang the job
PORT_TRIES = 100  # random ports probed before giving up: in a range thousands wide, 100 taken means trouble
START_ATTEMPTS = 3  # Jupyter starts: another process may bind the probed port before Jupyter does
EPHEMERAL_DEFAULT = (32768, 60999)  # Linux's default ephemeral port range, when /proc does not say
PORT_TOP = 65535  # the highest TCP port
PORTS_ABOVE = 1000  # the ports above the ephemeral range are used only when there are more than this many
PORT_FLOOR = 10000  # otherwise the ports from here to the ephemeral range: clear of the well-known services


def values(config: Config) -> Dict[str, Union[str, int]]:
    """The GALYLEO_* numbers of the Jupyter and clean-up parts (whole numbers, or a `sleep` argument)."""
    return {
        "GALYLEO_POLL_SLEEP": f"{POLL_MS / 1000:g}",
        "GALYLEO_READY_PROBE_TIMEOUT": READY_PROBE_SECONDS,
        "GALYLEO_LOOK_TIMEOUT": LOOK_SECONDS,
        "GALYLEO_PORT_PROBE_TIMEOUT": PORT_PROBE_SECONDS,
        "GALYLEO_PORT_TRIES": PORT_TRIES,
        "GALYLEO_START_ATTEMPTS": START_ATTEMPTS,
        "GALYLEO_EPHEMERAL_LOW": EPHEMERAL_DEFAULT[0],
        "GALYLEO_EPHEMERAL_HIGH": EPHEMERAL_DEFAULT[1],
        "GALYLEO_PORT_TOP": PORT_TOP,
        "GALYLEO_PORTS_ABOVE_END": PORT_TOP - PORTS_ABOVE,
        "GALYLEO_PORT_FLOOR": PORT_FLOOR,
        "GALYLEO_STOP_GRACE": config.stop_grace,
        "GALYLEO_STOP_POLLS": config.stop_grace * 1000 // POLL_MS,
    }
