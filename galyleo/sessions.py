"""Sessions as galyleo remembers them (records under ~/.galyleo) and as Slurm sees them now.

A record outlives Slurm's memory of its job: a job squeue no longer lists has
ENDED (how, if the job output says). A controller that does not answer is
UNKNOWN, never ENDED, after a few retries with back-off.
"""

from __future__ import annotations

import glob
import os
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from galyleo import contract, slurm
from galyleo.contract import Record as Session
from galyleo.errors import GalyleoError, UsageError

LIVE = ("PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "STOPPED", "REQUEUED", "RESIZING")
SQUEUE_FORMAT = "%i|%T|%r|%N|%L|%S|%P|%V|%j"  # the job name last: it may hold a '|'
SQUEUE_MIN_FIELDS = 7  # rows without submit time and name still parse
# How a job ended, in the words list/status/--wait all use: Slurm's final state, or the job's own last words.
ENDINGS = {"COMPLETED": "completed", "FAILED": "failed", "CANCELLED": "cancelled", "TIMEOUT": "time limit reached",
           "NODE_FAIL": "node failure", "OUT_OF_MEMORY": "out of memory", "PREEMPTED": "preempted",
           "BOOT_FAIL": "node failed to boot", "DEADLINE": "deadline reached", "REVOKED": "revoked"}
BACKOFF = (0.5, 1.0, 2.0)
SQUEUE_TIMEOUT = 20  # a controller that hangs this long is "not answering": no retry after it


@dataclass(frozen=True)
class JobInfo:
    """Slurm's view of one job: state, reason code, node, time left, expected start, partition, how it ended.

    UNKNOWN (the controller did not answer) counts as live: galyleo must not treat
    a job that may still run as ended.
    """

    state: str
    reason: str = ""
    node: str = ""
    time_left: str = ""
    start: str = ""
    partition: str = ""
    submitted: str = ""
    name: str = ""
    how: str = ""

    @property
    def live(self) -> bool:
        return self.state in LIVE or self.state == "UNKNOWN"


def load_all(folder: str) -> List[Session]:
    """Every readable record in FOLDER, oldest first."""
    found = (Session.read(p) for p in glob.glob(contract.record_glob(folder)))
    return sorted((s for s in found if s is not None), key=lambda s: (s.created, s.name))


def gather(folder: str, job_name: str) -> Tuple[List[Session], Dict[str, JobInfo]]:
    """The recorded sessions, plus live jobs named JOB_NAME without a record yet (a plain `sbatch`
    of a generated script writes its record only once it runs), and Slurm's view of each."""
    found = load_all(folder)
    rows = squeue_rows()
    known = {s.job_id for s in found}
    for job_id, row in sorted((rows or {}).items()):
        if row.name == job_name and row.state in LIVE and job_id not in known:
            found.append(unrecorded(folder, job_id, row))
    return found, classify(found, rows)


def unrecorded(folder: str, job_id: str, row: JobInfo) -> Session:
    """A submitted job that has not written its record: where it will (contract's names)."""
    paths = contract.files(folder, contract.job_session_name(job_id))
    return Session(name=paths.name, job_id=job_id, output=paths.output, created=utc(row.submitted),
                   record=paths.record)


def utc(local: str) -> str:
    """squeue's local `2026-11-29T05:00:00` as the records' UTC `...Z`; "" if it is not a time."""
    try:
        return time.strftime(contract.TIME_FORMAT, time.gmtime(time.mktime(time.strptime(local, "%Y-%m-%dT%H:%M:%S"))))
    except (ValueError, OverflowError):
        return ""


def classify(sessions: Sequence[Session], rows: Optional[Dict[str, JobInfo]]) -> Dict[str, JobInfo]:
    """Each session's JobInfo from one squeue call's ROWS on this cluster (None: the controller did
    not answer, UNKNOWN), and one more squeue call per other cluster a session was submitted to."""
    rows_of: Dict[Tuple[str, ...], Optional[Dict[str, JobInfo]]] = {(): rows}
    result: Dict[str, JobInfo] = {}
    for session in sessions:
        where = tuple(slurm.on_cluster(session.cluster))
        if where not in rows_of:
            rows_of[where] = squeue_rows(list(where))
        rows = rows_of[where]
        if rows is None:
            result[session.job_id] = JobInfo("UNKNOWN", how="the Slurm controller did not answer")
        elif session.job_id in rows and rows[session.job_id].state in LIVE:
            result[session.job_id] = rows[session.job_id]
        else:
            final = rows[session.job_id].state if session.job_id in rows else ""
            result[session.job_id] = JobInfo("ENDED", how=ended_how(session, final))
    return result


def squeue_rows(cluster_args: Sequence[str] = ()) -> Optional[Dict[str, JobInfo]]:
    """This user's jobs (all states Slurm still remembers), or None if squeue keeps failing."""
    text = ask(["squeue", *cluster_args, "--noheader", "--me", "--states=all", "--format", SQUEUE_FORMAT])
    return None if text is None else parse_rows(text)


def job(job_id: str, retry: bool = True, cluster: str = "") -> Optional[JobInfo]:
    """One job as squeue sees it now: ENDED once Slurm has forgotten it, None if squeue does not answer."""
    argv = ["squeue", *slurm.on_cluster(cluster), "--noheader", "--states=all", "--jobs", job_id,
            "--format", SQUEUE_FORMAT]
    text = ask(argv, retry)
    return None if text is None else parse_rows(text).get(job_id, JobInfo("ENDED"))


def ask(argv: List[str], retry: bool = True) -> Optional[str]:
    """squeue's output, retried with back-off; None if it keeps failing. An unknown job id is an answer."""
    for delay in (BACKOFF if retry else ()) + (0.0,):
        try:
            done = slurm.call(argv, timeout=SQUEUE_TIMEOUT)
        except GalyleoError:  # hung past the timeout, or no squeue at all: no answer either way
            return None
        if done.returncode == 0:
            return done.stdout
        if "Invalid job id" in done.stderr:
            return ""
        if delay:
            time.sleep(delay)
    return None


def parse_rows(text: str) -> Dict[str, JobInfo]:
    """SQUEUE_FORMAT lines by job id; lines of any other shape are skipped."""
    rows = {}
    for line in text.splitlines():
        parts = [p.strip() for p in line.split("|", SQUEUE_FORMAT.count("|"))]
        if len(parts) >= SQUEUE_MIN_FIELDS:
            rows[parts[0]] = JobInfo(*parts[1:])
    return rows


def ended_how(session: Session, final_state: str) -> str:
    """How a session ended, in ENDINGS' words: idle (the job says so; Slurm says only COMPLETED),
    Slurm's final state while it remembers (with the exit status the job output gives, for a
    failure), else the job output's last words."""
    text = tail(session.output, 4096)
    if contract.ended_idle(text):
        return contract.ended_idle(text)
    statuses = contract.exit_statuses(text)
    status = statuses[-1] if statuses else ""
    if final_state:
        how = ENDINGS.get(final_state, final_state.lower())
        return f"{how}, exit status {status}" if how == "failed" and status not in ("", "0") else how
    if contract.MARK_TERM in text:
        return "cancelled or time limit reached"
    if status:
        return "completed" if status == "0" else f"failed, exit status {status}"
    return "no longer known to Slurm" if text else "never started (no job output)"


def tail(path: str, size: int) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - size))
            return handle.read().decode("utf-8", "replace")
    except OSError:
        return ""


def resolve(sessions: Sequence[Session], ident: Optional[str], infos: Dict[str, JobInfo]) -> Session:
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
