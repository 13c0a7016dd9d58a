"""`stop` and `clean`: end sessions, then remove what ended ones leave behind.

stop cancels the job and destroys the alias exactly once (cancel.py); clean removes
the files of ended sessions and never touches a live or unknown one.
"""

from __future__ import annotations

import calendar
import os
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

from galyleo import cancel, connect, contract, endings, records, sessions
from galyleo.config import Config
from galyleo.contract import Record
from galyleo.errors import GalyleoError
from galyleo.interrupts import Held
from galyleo.session_commands import describe, sessions_of
from galyleo.slurm import JobInfo


def stop(config: Config, idents: Sequence[str], stop_all: bool, assume_yes: bool = False) -> int:
    """End each chosen session; one that Slurm cannot vouch for is left exactly as it was (exit 1).

    --all asks on a terminal first, and needs --yes without one (as `clean` does).
    """
    found, infos = sessions_of(config)
    if stop_all:
        chosen = [s for s in found if infos[s.job_id].live]
        if chosen and not assume_yes:
            for session in chosen:
                print(f"  job {session.job_id}  {describe(infos[session.job_id])}")
            if not confirm(f"stop these {len(chosen)} session(s)?", "not stopping anything"):
                print("nothing stopped")
                return 1
    else:
        wanted: List[Optional[str]] = list(idents) or [None]
        chosen = [sessions.resolve(found, ident, infos) for ident in wanted]
    status = 0
    mode = connect.modes(config)
    for session in chosen:
        with Held() as held:  # scancel, then destroytoken: a signal in between must not leak the alias
            if infos[session.job_id].live:
                status = max(status, stop_one(mode(session.connect), session, infos[session.job_id]))
            else:
                print(f"job {session.job_id}: already ended")
                release_aliases(mode, [session])
        held.deliver()  # the session is done: a signal that came meanwhile ends the command here
    if not chosen:
        print("no live sessions to stop")
    return status


def stop_one(mode: Any, session: Record, info: JobInfo) -> int:
    """Cancel the job, then release what its connection mode holds unless the job's own trap will.

    While Slurm cannot say whether the job runs, the alias and record stay: 1 line on stderr, status 1.
    """
    try:
        if info.state == "UNKNOWN":
            raise cancel.NotCancelled("the Slurm controller did not answer")
        handled = cancel.end_job(session.job_id, session.cluster) or mode.release_unstarted(session)
    except cancel.NotCancelled as exc:
        held = f"alias {session.alias} and " if session.alias else ""
        kept = f"it may be cancelled; {held}the record are kept" if exc.sent else "nothing was changed"
        sys.stderr.write(f"galyleo: error: job {session.job_id}: {exc}; {kept}\n")
        return 1
    records.remove(contract.files_of_record(session.record).token)  # a job that never started never read it
    endings.remember(session.record, endings.CANCELLED_PENDING if info.state == "PENDING" else endings.STOPPED)
    print(f"stopped job {session.job_id}" + (f" ({session.alias})" if session.alias else ""))
    return 0 if handled else 1


def clean(config: Config, assume_yes: bool, idents: Sequence[str] = (), older_than: Optional[int] = None) -> int:
    """Remove the records and files of ended sessions; never a live (or unknown) one.

    Named sessions (IDS) are removed without a question (one not ended is an error, nothing
    removed); otherwise every ended one, or those created over OLDER_THAN days ago, after asking."""
    found, infos = sessions_of(config)
    if any(info.state == "UNKNOWN" for info in infos.values()):
        raise GalyleoError("the Slurm controller does not answer: cannot tell which sessions ended; nothing removed")
    if idents:
        ended = [sessions.resolve(found, ident, infos) for ident in idents]
        live = [s for s in ended if infos[s.job_id].state != "ENDED"]
        if live:
            raise GalyleoError(f"job {live[0].job_id}: {describe(infos[live[0].job_id])}, not ended "
                               "(`galyleo stop` it first); nothing removed")
        assume_yes = True
    else:
        ended = [s for s in found if infos[s.job_id].state == "ENDED" and old_enough(s.created, older_than)]
        skipped(found, infos)
    if not ended:
        print("nothing to clean")
        return 0
    files = [p for s in ended for p in session_files(s) if os.path.exists(p)]
    print(f"{len(ended)} ended session(s), {len(files)} file(s):")
    for path in files:
        print(f"  {path}")
    if not assume_yes and not confirm("remove them?", "not removing anything"):
        print("nothing removed")
        return 1
    with Held() as held:  # an alias released goes with its record, or neither
        release_aliases(connect.modes(config), ended)
        records.remove(*files)
        print(f"removed {len(files)} file(s)")
    held.deliver()
    return 0


def skipped(found: Sequence[Record], infos: Dict[str, JobInfo]) -> None:
    """Say which recorded sessions `clean` leaves because they have not ended."""
    for session in found:
        if infos[session.job_id].state != "ENDED" and os.path.exists(session.record):
            print(f"skipped job {session.job_id}: {describe(infos[session.job_id])}, "
                  + ("still ending: clean again in a moment" if infos[session.job_id].state == "COMPLETING"
                     else "not ended"))


def old_enough(created: str, days: Optional[int], now: Optional[float] = None) -> bool:
    """Created more than DAYS days ago (None: any age); an unreadable date counts as old."""
    if days is None:
        return True
    try:
        then = calendar.timegm(time.strptime(created, contract.TIME_FORMAT))
    except ValueError:
        return True
    return (now if now is not None else time.time()) - then > days * 86400


def release_aliases(mode: Callable[[str], Any], ended: Sequence[Record]) -> None:
    """What ended sessions still hold (an alias of a pending job cancelled by a plain scancel);
    MODE gives each session's connection mode (connect.modes)."""
    for session in ended:
        if mode(session.connect).release_ended(session):
            print(f"released alias {session.alias} of ended job {session.job_id}")


def session_files(session: Record) -> List[str]:
    """The session's files, only those inside its own galyleo directory (a record names them)."""
    folder = os.path.dirname(session.record)
    named = contract.files_of_record(session.record)
    paths = [session.record, session.output, session.script, named.url, named.token, named.script,
             named.routed, named.ending, endings.path_of(session.record)]
    return [p for p in dict.fromkeys(paths) if p and os.path.dirname(os.path.abspath(p)) == folder]


def confirm(question: str, refusal: str) -> bool:
    if not sys.stdin.isatty():
        raise GalyleoError(f"{refusal} without a terminal to ask: use --yes")
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")
