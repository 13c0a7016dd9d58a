"""Cancel a session's job and release its alias, destroying the alias exactly once.

If Slurm can still cancel the job while it is pending, the job never ran, so
nobody else will destroy the alias: we do. If the job has started, its own EXIT
trap destroys the alias when scancel's SIGTERM arrives: we must not. A job that
ended without running its trap (a plain `scancel` while pending) leaves its
alias behind: `release` destroys it when galyleo next sees the session ended.
"""

from __future__ import annotations

import sys
from typing import Any, Optional

from galyleo import slurm
from galyleo.errors import GalyleoError, SatelliteError

STARTED = ("RUNNING", "COMPLETING", "CONFIGURING", "STOPPED", "SUSPENDED")


def withdraw(client: Any, alias: str, job_id: Optional[str]) -> bool:
    """Cancel JOB_ID (if any) and destroy ALIAS unless the job's trap will. True if we destroyed it."""
    destroy = True
    if job_id is not None:
        try:
            slurm.cancel(job_id, pending_only=True)
            if slurm.state(job_id) in STARTED:
                slurm.cancel(job_id)
                destroy = False
        except GalyleoError as exc:
            warn(f"could not cancel job {job_id}: {exc}")
    if destroy:
        try:
            client.destroy(alias)
        except SatelliteError as exc:
            warn(str(exc))
            return False
    return destroy


def warn(message: str) -> None:
    sys.stderr.write(f"galyleo: warning: {message}\n")


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
