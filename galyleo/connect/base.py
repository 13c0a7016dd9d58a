"""What every connection mode does for launch, the job script and the session commands.

Launch runs one pipeline (launch.py) and asks the mode at each step: what it reserves
before the job exists (Satellite: an alias), the values its snippet needs, the record
fields, what follows submission, how readiness shows, what is printed, how it is
released on undo and stop, and what open/status show. Like Open OnDemand's
batch-connect templates: one lifecycle, the variation in one small class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

from galyleo import TYPE_CHECKING
from galyleo.contract import Record, SessionFiles

if TYPE_CHECKING:
    from galyleo.slurm import JobInfo


@dataclass(frozen=True)
class Handoff:
    """What launch gives its job: where the token waits and the output goes, and what the
    mode reserved (an alias; in ssh mode the laptop's port). None of it for a plain sbatch."""

    alias: str
    token_file: str
    output_file: str
    local_port: int = 0


class Connection:
    """The interface; the defaults suit a mode that reserves nothing and holds nothing."""

    name = ""
    snippet = ""  # the job's connection hooks: galyleo_register, _origin_url, _route, _release
    waits = False  # launch always waits: the URL exists only once the job runs
    holds = ""  # what a withdraw releases besides the job, for --wait's words ("its alias")
    tag = ""  # after the interface in `list`
    dry_run_words = ""  # after `launch --dry-run` in its first line
    laptop_tunnel = False  # `galyleo --host` holds a local tunnel to the session (remote.py, localtunnel.py)

    def __init__(self, config: Any) -> None:
        self.config = config

    def check_settings(self) -> None:
        """Refuse site settings this mode cannot work with (UsageError), before anything is made."""

    # --- launch, in pipeline order ---------------------------------------------------
    def prepare(self) -> None:
        """Whatever can fail before any side effect (a host name ssh cannot take)."""

    def reserve(self) -> Handoff:
        """The mode's first side effect, if any (undone by withdraw); token and output unset."""
        return Handoff("", "", "")

    def placeholder(self) -> Handoff:
        """What --dry-run renders in place of reserve's answer (it reserves nothing)."""
        return Handoff("", "", "")

    def job_values(self, handoff: Optional[Handoff]) -> Dict[str, Any]:
        """The GALYLEO_* values its snippet uses (HANDOFF None: a plain sbatch)."""
        raise NotImplementedError

    def record_fields(self, handoff: Handoff, token: str) -> Dict[str, Any]:
        """The record's mode fields: url, alias, connect, ..."""
        raise NotImplementedError

    def standalone_record(self, interface: str, folder: str) -> Record:
        """The record a plain-`sbatch` job writes for itself (its run-time facts as slots)."""
        raise NotImplementedError

    def after_submit(self, session: Record) -> None:
        """What follows a successful sbatch (nothing a session needs may fail here)."""

    def ready(self, session: Record) -> Callable[[], bool]:
        """For --wait: whether the running session is ready for the browser."""
        raise NotImplementedError

    def report(self, session: Record, words: bool) -> bool:
        """Print how to reach the session, the URL last; False when it cannot (yet)."""
        raise NotImplementedError

    def json_fields(self, session: Record) -> Dict[str, Any]:
        """What launch --json adds for this mode."""
        return {}

    def plan(self, paths: SessionFiles) -> List[List[str]]:
        """--dry-run's steps: [before the files, after the record]."""
        raise NotImplementedError

    # --- undo and stop ---------------------------------------------------------------
    def withdraw(self, handoff: Handoff, job_id: Optional[str], cluster: str, keep_unsure: bool = False) -> bool:
        """Cancel JOB_ID (if any) and release what reserve made, exactly once (True if released
        here, not by the job's trap). With KEEP_UNSURE a job that may be running keeps its
        reservation (cancel.NotCancelled is raised)."""
        raise NotImplementedError

    def release_unstarted(self, session: Record) -> bool:
        """After `stop` cancelled a job that never ran (no trap of its own): release its reservation."""
        return True

    def release_ended(self, session: Record) -> bool:
        """An ended session's reservation still held (its job ran no clean-up); True if released."""
        return False

    # --- the session commands ----------------------------------------------------------
    def session_fields(self, session: Record, info: JobInfo) -> Dict[str, Any]:
        """The mode's fields of list/status --json (docs/session.schema.json)."""
        return {}

    note = ""  # `status`'s `connect` line, if the mode has one to say

    def status_fields(self, session: Record, info: JobInfo) -> Dict[str, str]:
        """`status --json`'s mode fields."""
        return {}

    def status_lines(self, doc: Dict[str, Any], info: JobInfo) -> List[Tuple[str, str]]:
        """`status`'s lines for the mode, (label, text), from its JSON document DOC."""
        return []

    def open(self, session: Record, info: JobInfo, state: str) -> int:
        """`galyleo open`: print the URL again (STATE: the session's state in words)."""
        raise NotImplementedError
