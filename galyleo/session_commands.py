"""The session commands that look: list, status, open, logs.

Each reads the records under ~/.galyleo, asks Slurm once, and prints. Words go
to stdout for people; with --json one document goes to stdout (schema in
docs/session.schema.json) and nothing else does.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import replace
from typing import Any, Dict, List, Optional, Tuple

from galyleo import connect, idle, reasons, records, sessions, slurm
from galyleo.config import Config
from galyleo.contract import Record
from galyleo.errors import GalyleoError
from galyleo.rules import seconds
from galyleo.slurm import JobInfo

FOLLOW_POLL = 0.5  # seconds between reads of a followed job output
FOLLOW_IDLE = 5.0  # ask Slurm whether the job still runs only after this long without new output


def describe(info: JobInfo, lead: int = 0) -> str:
    """The state column: PENDING with its reason, RUNNING with time left (within LEAD seconds
    of the end: "ends in N min"), ENDED with how."""
    if info.state == "PENDING":
        return f"PENDING ({reasons.explain(info.reason).words})"
    if info.state == "RUNNING" and info.time_left == "INVALID":  # past its time limit; Slurm is ending it
        return "ENDING (time limit)"
    if info.state == "RUNNING":
        left = seconds(info.time_left) if lead else None
        if left is not None and left <= lead:
            return f"RUNNING (ends in {max(1, -(-left // 60))} min)"
        return f"RUNNING ({info.time_left} left)"
    if info.state == "ENDED":
        return f"ENDED ({info.how})"
    if info.state == "UNKNOWN":
        return "UNKNOWN (Slurm controller not answering)"
    return info.state


def as_json(session: Record, info: JobInfo, config: Config) -> Dict[str, Any]:
    reason = reasons.explain(info.reason) if info.state == "PENDING" else None
    return {
        "job_id": session.job_id, "name": session.name, "alias": session.alias, "url": session.url,
        "state": info.state, "reason": info.reason if reason else "", "reason_text": reason.words if reason else "",
        "never_starts": bool(reason and reason.never), "advice": reasons.advice(info.reason) if reason else None,
        "node": info.node,
        "time_left": info.time_left if info.state == "RUNNING" and info.time_left != "INVALID" else "",
        "expected_start": info.start if info.state == "PENDING" and info.start not in ("N/A", "Unknown") else "",
        "ended": info.how if info.state == "ENDED" else "", "interface": session.interface,
        "created": session.created, "age": sessions.age(session.created),
        "script": session.script, "output": session.output, "record": session.record,
        "idle_ends": idle_ends(session, info),
        "connect": session.connect, "ssh_argv": [],
        **mode_of(session, config).session_fields(session, info),
    }


def mode_of(session: Record, config: Config) -> Any:
    """The session's connection mode (galyleo/connect/), with the site's settings."""
    return connect.of(session.connect, config)


def idle_ends(session: Record, info: JobInfo) -> str:
    """When a running session with idle culling ends if nobody uses it (UTC, ISO), from the
    activity the job last read from Jupyter; "" without culling or before the first reading."""
    activity = idle.read_activity(session.output) if info.state == "RUNNING" else None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(activity.ends_around())) if activity else ""


def emit(document: Any) -> None:
    json.dump(document, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


def sessions_of(config: Config) -> Tuple[List[Record], Dict[str, JobInfo]]:
    """The sessions (recorded, or submitted by a plain sbatch and not yet running) and Slurm's view of each."""
    return sessions.gather(records.expand(config.output_dir), config.job_name)


def chosen(config: Config, ident: Optional[str]) -> Tuple[Record, JobInfo]:
    """The session IDENT names (job id, alias or name; none: the only live one) and Slurm's view of it."""
    found, infos = sessions_of(config)
    session = sessions.resolve(found, ident, infos)
    return session, infos[session.job_id]


def list_sessions(config: Config, show_all: bool, as_doc: bool) -> int:
    found, infos = sessions_of(config)
    shown = [s for s in found if show_all or infos[s.job_id].live]
    if as_doc:
        emit({"sessions": [as_json(s, infos[s.job_id], config) for s in shown]})
        return 0
    if not shown:
        print("no live sessions" + ("" if show_all else " (galyleo list --all shows ended ones)"))
        return 0
    rows = [("JOBID", "STATE", "INTERFACE", "NODE", "AGE", "URL")]
    for s in shown:
        info = infos[s.job_id]
        kind = (s.interface or "-") + mode_of(s, config).tag
        rows.append((s.job_id, describe(info, config.signal_lead), kind, info.node or "-", sessions.age(s.created),
                     s.url if info.state == "RUNNING" else ""))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for row in rows:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:5])) + "  " + row[5])
    return 0


def status(config: Config, ident: Optional[str], as_doc: bool) -> int:
    session, info = chosen(config, ident)
    if info.state == "PENDING":
        info = replace(info, start=slurm.expected_start(session.job_id) or info.start)
    doc = as_json(session, info, config)
    mode = mode_of(session, config)
    doc.update(mode.status_fields(session, info))
    if as_doc:
        emit(doc)
        return 0
    print(f"session    {session.name} (job {session.job_id}, {session.interface or 'jupyter'})")
    print(f"state      {describe(info, config.signal_lead)}")
    if doc["advice"]:
        hit = reasons.limit(info.reason, slurm.partition(info.partition))
        print(f"advice     {doc['advice']}" + (f" ({hit})" if hit else ""))
    if doc["expected_start"]:
        print(f"starts     {doc['expected_start']} (scheduler's estimate)")
    activity = idle.read_activity(session.output) if info.state == "RUNNING" else None
    if activity:
        print(f"idle       {idle.words(activity, time.time())}")
    if mode.note:
        print(f"connect    {mode.note}")
    lines = [("node", doc["node"]), ("time left", doc["time_left"]), *mode.status_lines(doc, info),
             ("url", doc["url"]), ("script", doc["script"]), ("output", doc["output"])]
    for label, text in lines:
        if text:
            print(f"{label:<10} {text}")
    return 0


def open_url(config: Config, ident: Optional[str]) -> int:
    session, info = chosen(config, ident)
    if info.state == "ENDED" and session.url:
        raise GalyleoError(f"job {session.job_id} has ended ({info.how}{last_output(session.output)}): "
                           f"its URL no longer works; `galyleo relaunch {session.job_id}` starts a new one")
    return int(mode_of(session, config).open(session, info, describe(info)))


def last_output(path: str) -> str:
    """", last output at TIME UTC" from the job output's date (about when it ended); "" without one."""
    try:
        when = os.stat(path).st_mtime
    except OSError:
        return ""
    return time.strftime(", last output at %Y-%m-%d %H:%M UTC", time.gmtime(when))


def logs(config: Config, ident: Optional[str], follow: bool) -> int:
    session, info = chosen(config, ident)
    if info.state == "PENDING":
        waits = "waiting for it to start (Ctrl-C stops waiting)" if follow else "no output yet"
        sys.stderr.write(f"galyleo: job {session.job_id} is {describe(info)}: {waits}\n")
        if not follow:
            return 0
    elif not os.path.exists(session.output) and not follow:
        raise GalyleoError(f"no job output yet at {session.output} (job {describe(info)})")
    try:
        return tail_file(session.output, follow, lambda: info.live and still_live(session.job_id, session.cluster))
    except KeyboardInterrupt:  # the way out of `logs -f`, as for `tail -f`: no error
        return 130


def still_live(job_id: str, cluster: str = "") -> bool:
    """False once Slurm says the job ended; a controller that does not answer keeps it live."""
    info = slurm.job(job_id, cluster=cluster)
    return info is None or info.state in slurm.LIVE


def tail_file(path: str, follow: bool, live: Any) -> int:
    """Print the file; with follow, keep printing what is appended until the job ends, then the rest."""
    position = print_from(path, 0)
    idle = 0.0
    while follow:
        time.sleep(FOLLOW_POLL)
        new = print_from(path, position)
        idle = 0.0 if new != position else idle + FOLLOW_POLL
        position = new
        if idle >= FOLLOW_IDLE and not live():
            print_from(path, position)  # what the job wrote while Slurm was asked
            return 0
    return 0


def print_from(path: str, position: int) -> int:
    """Print what the file holds past POSITION; return the new position (a missing file is empty)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(position)
            chunk = handle.read()
    except FileNotFoundError:
        return position
    if chunk:
        sys.stdout.write(chunk.decode("utf-8", "replace"))
        sys.stdout.flush()
    return position + len(chunk)
