"""Sessions as galyleo remembers them (records under ~/.galyleo) and as Slurm sees them now.

A record outlives Slurm's memory of its job: a job squeue no longer lists has
ENDED (how, if the job output says). A controller that does not answer is
UNKNOWN, never ENDED, after a few retries with back-off.
"""

from __future__ import annotations

import glob
import sys
import time
from typing import Dict, List, Optional, Sequence, Set, Tuple

from galyleo import contract, endings, joblog, slurm
from galyleo.contract import Record
from galyleo.errors import GalyleoError, UsageError
from galyleo.slurm import LIVE, JobInfo

# How a job ended, in the words list/status/--wait all use: Slurm's final state, or the job's own last words.
ENDINGS = {"COMPLETED": "completed", "FAILED": "failed", "CANCELLED": "cancelled", "TIMEOUT": "time limit reached",
           "NODE_FAIL": "node failure", "OUT_OF_MEMORY": "out of memory", "PREEMPTED": "preempted",
           "BOOT_FAIL": "node failed to boot", "DEADLINE": "deadline reached", "REVOKED": "revoked"}


SKIPPED: Set[str] = set()  # the records this process said it skipped


def load_all(folder: str) -> List[Record]:
    """Every readable record in FOLDER, oldest first; one that is not a record of the user's
    is skipped with one line naming it, so the others still work."""
    found = []
    for path in sorted(glob.glob(contract.record_glob(folder))):
        try:
            found.append(Record.load(path))
        except FileNotFoundError:  # removed meanwhile (a concurrent clean)
            continue
        except (OSError, contract.BadFile) as exc:
            if path not in SKIPPED:  # said once, however often a command reads the folder
                SKIPPED.add(path)
                why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                sys.stderr.write(f"galyleo: warning: skipped {path}: {why}\n")
    return sorted(found, key=lambda s: (s.created, s.name))


def gather(folder: str, job_name: str) -> Tuple[List[Record], Dict[str, JobInfo]]:
    """The recorded sessions, plus live jobs named JOB_NAME without a record yet (a plain `sbatch`
    of a generated script writes its record only once it runs), and Slurm's view of each."""
    found = load_all(folder)
    rows = slurm.my_jobs()
    known = {s.job_id for s in found}
    for job_id, row in sorted((rows or {}).items()):
        if row.name == job_name and row.state in LIVE and job_id not in known:
            found.append(unrecorded(folder, job_id, row))
    return found, classify(found, rows)


def unrecorded(folder: str, job_id: str, row: JobInfo) -> Record:
    """A submitted job that has not written its record: where it will (contract's names)."""
    paths = contract.files(folder, contract.job_session_name(job_id))
    return Record(name=paths.name, job_id=job_id, output=paths.output, created=utc(row.submitted),
                   record=paths.record)


def utc(local: str) -> str:
    """squeue's local `2026-11-29T05:00:00` as the records' UTC `...Z`; "" if it is not a time."""
    try:
        return time.strftime(contract.TIME_FORMAT, time.gmtime(time.mktime(time.strptime(local, "%Y-%m-%dT%H:%M:%S"))))
    except (ValueError, OverflowError):
        return ""


def classify(sessions: Sequence[Record], rows: Optional[Dict[str, JobInfo]]) -> Dict[str, JobInfo]:
    """Each session's JobInfo from one squeue call's ROWS on this cluster (None: the controller did
    not answer, UNKNOWN), and one more squeue call per other cluster a session was submitted to."""
    rows_of: Dict[str, Optional[Dict[str, JobInfo]]] = {"": rows}
    result: Dict[str, JobInfo] = {}
    for session in sessions:
        where = slurm.other_cluster(session.cluster)
        if where not in rows_of:
            rows_of[where] = slurm.my_jobs(where)
        rows = rows_of[where]
        if rows is None:
            result[session.job_id] = JobInfo("UNKNOWN", how="the Slurm controller did not answer")
        elif session.job_id in rows and rows[session.job_id].state in LIVE:
            result[session.job_id] = rows[session.job_id]
        else:
            final = rows[session.job_id].state if session.job_id in rows else ""
            how = endings.remembered(session.record) or ended_how(session, final)
            if final:  # Slurm's own word: sure, so kept for when it has forgotten the job
                endings.remember(session.record, how)
            result[session.job_id] = JobInfo("ENDED", how=how)
    return result


def ended_how(session: Record, final_state: str) -> str:
    """How a session ended, in ENDINGS' words: idle (the job's ending file says so; Slurm says only COMPLETED),
    Slurm's final state while it remembers (with the exit status the job output gives, for a
    failure), else the job output's last words."""
    own = joblog.ending_of(session.output)
    if own:
        return own
    text = tail(session.output, 4096)
    statuses = joblog.exit_statuses(text)
    status = statuses[-1] if statuses else ""
    if final_state:
        how = ENDINGS.get(final_state, final_state.lower())
        return f"{how}, exit status {status}" if how == "failed" and status not in ("", "0") else how
    if any(line.startswith("slurmstepd") and "DUE TO TIME LIMIT" in line for line in text.splitlines()):
        return ENDINGS["TIMEOUT"]  # slurmstepd's own line (`*** JOB N ... CANCELLED AT ... DUE TO TIME LIMIT ***`)
    if joblog.says(text, joblog.MARK_TERM):
        return "cancelled or time limit reached"
    if status:
        return "completed" if status == "0" else f"failed, exit status {status}"
    return "no longer known to Slurm" if text else "never started (no job output)"


def tail(path: str, size: int) -> str:
    """The last SIZE bytes of the user's own regular file PATH ("" for anything else)."""
    try:
        return contract.read_own(path, size, tail=True).decode("utf-8", "replace")
    except (OSError, contract.BadFile):
        return ""


def resolve(sessions: Sequence[Record], ident: Optional[str], infos: Dict[str, JobInfo]) -> Record:
    """The session named by job id, alias or record name; with none given, the only live one."""
    if ident:
        for session in sessions:
            if ident in (session.job_id, session.alias, session.name):
                return session
        raise UsageError(f"session {ident!r}: not a job id, alias or session name galyleo knows "
                         "(`galyleo list --all` shows the job ids)")
    live = [s for s in sessions if infos.get(s.job_id, JobInfo("UNKNOWN")).live]
    if len(live) == 1:
        return live[0]
    if not live:
        raise GalyleoError("no live session: give a job id (`galyleo list --all` shows them)")
    raise UsageError(f"{len(live)} live sessions ({', '.join(s.job_id for s in live)}): say which one")


def age(created: str, now: Optional[float] = None) -> str:
    """'3m', '2h05m', '4d' since an ISO UTC time."""
    try:
        then = time.mktime(time.strptime(created, contract.TIME_FORMAT)) - time.timezone
    except ValueError:
        return "?"
    seconds = max(0, int((now or time.time()) - then))
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d"
