"""Cancel a session's job, and say whether it had started (then its own trap cleans up).

If Slurm can still cancel the job while it is pending, the job never ran, so
nobody else will release what it holds (an alias): the caller's connection mode
does (galyleo/connect/). Likewise for a job still CONFIGURING (nodes allocated,
batch script not started: no trap to run; should it start in that instant, its
trap and we both try, and the proxy refuses the second). If the job has started,
its own EXIT trap cleans up when scancel's SIGTERM arrives: we must not. When
scancel fails, or squeue cannot say whether the job started, `end_job` raises and
the caller decides: `stop` changes nothing, a failed launch still releases.
"""

from __future__ import annotations

import sys

from galyleo import slurm
from galyleo.errors import GalyleoError

STARTED = ("RUNNING", "COMPLETING", "STOPPED", "SUSPENDED")


class NotCancelled(GalyleoError):
    """The job may still run: scancel failed, or squeue could not say whether it started.

    `sent` is True when scancel itself was accepted (the job may be cancelled after all).
    """

    def __init__(self, cause: str, sent: bool = False) -> None:
        super().__init__(cause)
        self.sent = sent


def end_job(job_id: str, cluster: str = "") -> bool:
    """Cancel JOB_ID; True if it had started (its own trap destroys the alias), False if it never ran.

    Raises NotCancelled when the job may still run, before anything else is done.
    """
    refused = scancel(job_id, pending_only=True, cluster=cluster)
    info = slurm.job(job_id, cluster=cluster)
    if info is None:
        raise NotCancelled("Slurm did not answer" + (f" ({refused})" if refused else " after scancel"), not refused)
    if info.state in STARTED or info.state == "CONFIGURING":
        refused = scancel(job_id, cluster=cluster)
    if refused and info.state in slurm.LIVE:
        raise NotCancelled(f"scancel failed ({refused})")
    return info.state in STARTED


def scancel(job_id: str, pending_only: bool = False, cluster: str = "") -> str:
    """"" when scancel succeeded, else why not (including scancel hanging or missing)."""
    try:
        return slurm.cancel(job_id, pending_only, cluster)
    except GalyleoError as exc:
        return str(exc)


def warn(message: str) -> None:
    """A warning on stderr; a terminal gone with a SIGHUP must not stop an undo half-way."""
    try:
        sys.stderr.write(f"galyleo: warning: {message}\n")
    except OSError:
        pass
