"""Cancel a session's job and release its alias, destroying the alias exactly once.

If Slurm can still cancel the job while it is pending, the job never ran, so
nobody else will destroy the alias: we do. Likewise for a job still CONFIGURING
(nodes allocated, batch script not started: no trap to run; should it start in
that instant, its trap and we both try, and the proxy refuses the second). If the
job has started, its own EXIT trap destroys the alias when scancel's SIGTERM
arrives: we must not. When scancel fails, or squeue cannot say whether the job
started, `end_job` raises and the caller decides: `stop` changes nothing, a failed launch still destroys
its alias. A job that ended without running its trap (a plain `scancel` while
pending) leaves its alias behind: `release` destroys it when galyleo next sees
the session ended.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Optional

from galyleo import slurm
from galyleo.errors import GalyleoError, SatelliteError

STARTED = ("RUNNING", "COMPLETING", "STOPPED", "SUSPENDED")
TRAP_GRACE = 15.0  # seconds a cancelled job's clean-up gets to end before we stop waiting for it


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


def withdraw(client: Any, alias: str, job_id: Optional[str], cluster: str = "", keep_unsure: bool = False) -> bool:
    """Cancel JOB_ID (if any) and destroy ALIAS unless the job's trap will. True if we destroyed it.

    For launch's undo: a job Slurm would not cancel is reported, and its alias is
    destroyed all the same, so that job can never be routed. With KEEP_UNSURE (`--wait`
    giving up after the URL was printed) such a job may be running: its alias is kept.
    """
    if job_id is not None:
        try:
            if end_job(job_id, cluster) and not orphaned(client, alias, job_id, cluster):
                return False
        except NotCancelled as exc:
            kept = f"; it may be running, so its alias is kept (stop it with: galyleo stop {job_id})"
            warn(f"could not cancel job {job_id}: {exc}" + (kept if keep_unsure else ""))
            if keep_unsure:
                raise
    return destroy(client, alias)


def orphaned(client: Any, alias: str, job_id: str, cluster: str = "") -> bool:
    """Whether a started job we cancelled left ALIAS behind: scancel's TERM can reach its shell
    in its first milliseconds, before the trap that destroys the alias is set. Once Slurm says
    the job ended, ask the proxy; a job still ending after TRAP_GRACE owns the alias."""
    deadline = time.monotonic() + TRAP_GRACE
    while True:
        info = slurm.job(job_id, retry=False, cluster=cluster)
        if info is not None and not info.live:
            break
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    try:
        return bool(client.known(alias))
    except SatelliteError:
        return False


def destroy(client: Any, alias: str) -> bool:
    """destroytoken; a failure is a warning naming the alias (it can be destroyed later). True if done."""
    try:
        client.destroy(alias)
    except SatelliteError as exc:
        warn(f"{exc} (alias {alias} is still held)")
        return False
    return True


def warn(message: str) -> None:
    """A warning on stderr; a terminal gone with a SIGHUP must not stop an undo half-way."""
    try:
        sys.stderr.write(f"galyleo: warning: {message}\n")
    except OSError:
        pass


def release(client: Any, alias: str) -> bool:
    """Destroy the alias of an ended session if the proxy still holds it. True if we destroyed it."""
    try:
        if not alias or not client.known(alias):
            return False
        client.destroy(alias)
    except SatelliteError as exc:
        warn(f"alias {alias} of an ended session could not be released: {exc}")
        return False
    return True
