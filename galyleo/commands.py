"""The session commands: list, status, open, logs, stop, clean.

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
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from galyleo import idle, reasons, records, sessions, slurm
from galyleo.config import Config
from galyleo.errors import GalyleoError
from galyleo.sessions import Session
from galyleo.slurm import JobInfo

FOLLOW_POLL = 0.5  # seconds between reads of a followed job output
FOLLOW_IDLE = 5.0  # ask Slurm whether the job still runs only after this long without new output


def describe(info: JobInfo) -> str:
    """The state column: PENDING with its reason, RUNNING with time left, ENDED with how."""
    if info.state == "PENDING":
        return f"PENDING ({reasons.explain(info.reason).words})"
    if info.state == "RUNNING":
        return f"RUNNING ({info.time_left} left)"
    if info.state == "ENDED":
        return f"ENDED ({info.how})"
    if info.state == "UNKNOWN":
        return "UNKNOWN (Slurm controller not answering)"
    return info.state


def as_json(session: Session, info: JobInfo) -> Dict[str, Any]:
    reason = reasons.explain(info.reason) if info.state == "PENDING" else None
    return {
        "job_id": session.job_id, "name": session.name, "alias": session.alias, "url": session.url,
        "state": info.state, "reason": info.reason if reason else "", "reason_text": reason.words if reason else "",
        "never_starts": bool(reason and reason.never), "advice": reasons.advice(info.reason) if reason else None,
        "node": info.node, "time_left": info.time_left if info.state == "RUNNING" else "",
        "expected_start": info.start if info.state == "PENDING" and info.start not in ("N/A", "Unknown") else "",
        "ended": info.how if info.state == "ENDED" else "", "interface": session.interface,
        "created": session.created, "age": sessions.age(session.created),
        "script": session.script, "output": session.output, "record": session.record,
        "idle_ends": idle_ends(session, info),
        "connect": session.connect, "ssh_argv": ssh_argv(session, info),
    }


def ssh_argv(session: Session, info: JobInfo) -> List[str]:
    """An ssh-mode session's tunnel command as argv, once its job wrote it; [] otherwise."""
    if session.connect != "ssh" or not info.live:
        return []
    from galyleo import tunnel

    found = tunnel.read(tunnel.url_path(session.record))
    return found.ssh_argv() if found else []


def idle_ends(session: Session, info: JobInfo) -> str:
    """When a running session with idle culling ends if nobody uses it (UTC, ISO), from the
    activity the job last read from Jupyter; "" without culling or before the first reading."""
    activity = idle.read_activity(session.output) if info.state == "RUNNING" else None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(activity.ends_around())) if activity else ""


def emit(document: Any) -> None:
    json.dump(document, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


def gather(config: Config) -> Tuple[List[Session], Dict[str, JobInfo]]:
    """The sessions (recorded, or submitted by a plain sbatch and not yet running) and Slurm's view of each."""
    return sessions.gather(records.expand(config.output_dir), config.job_name)


def list_sessions(config: Config, show_all: bool, as_doc: bool) -> int:
    found, infos = gather(config)
    shown = [s for s in found if show_all or infos[s.job_id].live]
    if as_doc:
        emit({"sessions": [as_json(s, infos[s.job_id]) for s in shown]})
        return 0
    if not shown:
        print("no live sessions" + ("" if show_all else " (galyleo list --all shows ended ones)"))
        return 0
    rows = [("JOBID", "STATE", "INTERFACE", "NODE", "AGE", "URL")]
    for s in shown:
        info = infos[s.job_id]
        kind = (s.interface or "-") + (" (ssh)" if s.connect == "ssh" else "")
        rows.append((s.job_id, describe(info), kind, info.node or "-", sessions.age(s.created),
                     s.url if info.state == "RUNNING" else ""))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for row in rows:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:5])) + "  " + row[5])
    return 0


def status(config: Config, ident: Optional[str], as_doc: bool) -> int:
    found, infos = gather(config)
    session = sessions.resolve(found, ident, infos)
    info = infos[session.job_id]
    if info.state == "PENDING":
        info = replace(info, start=slurm.expected_start(session.job_id) or info.start)
    doc = as_json(session, info)
    doc["satellite"] = satellite_state(config, session.alias, info) if session.connect != "ssh" else ""
    if as_doc:
        emit(doc)
        return 0
    print(f"session    {session.name} (job {session.job_id}, {session.interface or 'jupyter'})")
    print(f"state      {describe(info)}")
    if doc["advice"]:
        hit = reasons.limit(info.reason, slurm.partition(info.partition))
        print(f"advice     {doc['advice']}" + (f" ({hit})" if hit else ""))
    if doc["expected_start"]:
        print(f"starts     {doc['expected_start']} (scheduler's estimate)")
    activity = idle.read_activity(session.output) if info.state == "RUNNING" else None
    if activity:
        print(f"idle       {idle.describe(activity, time.time())}")
    if session.connect == "ssh":
        doc["ssh"] = " ".join(doc["ssh_argv"]) or ("(written by the job once Jupyter answers)" if info.live else "")
        print("connect    ssh tunnel (no Satellite proxy)")
    for label, key in (("node", "node"), ("time left", "time_left"), ("proxy", "satellite"), ("ssh", "ssh"),
                       ("url", "url"), ("script", "script"), ("output", "output")):
        if doc.get(key):
            print(f"{label:<10} {doc[key]}")
    return 0


def satellite_state(config: Config, alias: str, info: JobInfo) -> str:
    """The proxy's view (tokenjobstate) in words; the reply may be `CODE` or `<age> CODE`.

    An ended session's alias was destroyed (tokenjobstate then has nothing to say), unless
    the job never ran its clean-up: then the proxy still knows it, and `stop`/`clean` release it.
    """
    from galyleo.satellite import Client

    if not alias:
        return "no alias yet (the job gets one when it starts)"
    if info.state == "ENDED":
        try:
            held = Client(config).known(alias)
        except GalyleoError as exc:
            return f"unavailable ({exc})"
        return "alias still held (`galyleo clean` releases it)" if held else f"alias {alias} released"
    words = {"PE": "alias pending", "M": "mapped, route coming", "PR": "proxied (URL live)", "U": "unknown",
             "Q": "job queued", "R": "job running, not yet redeemed", "D": "job gone"}
    try:
        reply = Client(config).jobstate(alias).split()
    except GalyleoError as exc:
        return f"unavailable ({exc})"
    code = reply[-1] if reply else "U"
    return words.get(code, code)


def open_url(config: Config, ident: Optional[str]) -> int:
    found, infos = gather(config)
    session = sessions.resolve(found, ident, infos)
    if session.connect == "ssh":
        from galyleo import tunnel_launch

        return tunnel_launch.open_session(session, infos[session.job_id])
    if not session.url:
        raise GalyleoError(f"job {session.job_id} has no URL yet: {describe(infos[session.job_id])}; "
                           "it gets one when it starts")
    print(session.url)
    return 0


def logs(config: Config, ident: Optional[str], follow: bool) -> int:
    found, infos = gather(config)
    session = sessions.resolve(found, ident, infos)
    info = infos[session.job_id]
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


def stop(config: Config, idents: Sequence[str], stop_all: bool, assume_yes: bool = False) -> int:
    """End each chosen session; one that Slurm cannot vouch for is left exactly as it was (exit 1).

    --all asks on a terminal first, and needs --yes without one (as `clean` does).
    """
    from galyleo.satellite import Client

    found, infos = gather(config)
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
    client = Client(config)
    status = 0
    for session in chosen:
        if not infos[session.job_id].live:
            print(f"job {session.job_id}: already ended")
            release_aliases(config, [session])
            continue
        status = max(status, stop_one(client, session, infos[session.job_id]))
    if not chosen:
        print("no live sessions to stop")
    return status


def stop_one(client: Any, session: Session, info: JobInfo) -> int:
    """Cancel the job, then destroy the alias unless the job's own trap will (cancel.py).

    While Slurm cannot say whether the job runs, the alias and record stay: 1 line on stderr, status 1.
    """
    from galyleo import cancel

    try:
        if info.state == "UNKNOWN":
            raise cancel.NotCancelled("the Slurm controller did not answer")
        # A plain-sbatch job cancelled before it ran never made an alias: nothing to destroy.
        handled = (cancel.end_job(session.job_id, session.cluster) or not session.alias
                   or cancel.destroy(client, session.alias))
    except cancel.NotCancelled as exc:
        kept = f"it may be cancelled; alias {session.alias} and the record are kept" if exc.sent else \
            "nothing was changed"
        sys.stderr.write(f"galyleo: error: job {session.job_id}: {exc}; {kept}\n")
        return 1
    records.remove(session.record[: -len(".json")] + ".token")  # a job that never started never read it
    print(f"stopped job {session.job_id}" + (f" ({session.alias})" if session.alias else ""))
    return 0 if handled else 1


def clean(config: Config, assume_yes: bool) -> int:
    """Remove the records and files of ended sessions; never a live (or unknown) one."""
    found, infos = gather(config)
    if any(info.state == "UNKNOWN" for info in infos.values()):
        raise GalyleoError("the Slurm controller does not answer: cannot tell which sessions ended; nothing removed")
    ended = [s for s in found if infos[s.job_id].state == "ENDED"]
    for session in found:
        if infos[session.job_id].state != "ENDED" and os.path.exists(session.record):
            print(f"skipped job {session.job_id}: {describe(infos[session.job_id])}, "
                  + ("still ending: clean again in a moment" if infos[session.job_id].state == "COMPLETING"
                     else "not ended"))
    if not ended:
        print("nothing to clean")
        return 0
    files = [p for s in ended for p in files_of(s) if os.path.exists(p)]
    print(f"{len(ended)} ended session(s), {len(files)} file(s):")
    for path in files:
        print(f"  {path}")
    if not assume_yes and not confirm("remove them?", "not removing anything"):
        print("nothing removed")
        return 1
    release_aliases(config, ended)
    records.remove(*files)
    print(f"removed {len(files)} file(s)")
    return 0


def release_aliases(config: Config, ended: Sequence[Session]) -> None:
    """Aliases of ended sessions the proxy still holds (a pending job cancelled by a plain scancel)."""
    from galyleo.cancel import release
    from galyleo.satellite import Client

    client = Client(config)
    for session in ended:
        if release(client, session.alias):
            print(f"released alias {session.alias} of ended job {session.job_id}")


def files_of(session: Session) -> List[str]:
    """The session's files, only those inside its own galyleo directory (a record names them)."""
    folder = os.path.dirname(session.record)
    base = session.record[: -len(".json")]
    paths = [session.record, session.output, session.script, base + ".url", base + ".token", base + ".sh"]
    return [p for p in dict.fromkeys(paths) if p and os.path.dirname(os.path.abspath(p)) == folder]


def confirm(question: str, refusal: str) -> bool:
    if not sys.stdin.isatty():
        raise GalyleoError(f"{refusal} without a terminal to ask: use --yes")
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def config_show(loaded: Any, as_doc: bool) -> int:
    """Each effective setting and where it came from."""
    from dataclasses import asdict

    values = asdict(loaded.config)
    origins = dict(loaded.origins)
    if not values["satellite_url"]:  # unset means derived: show the URL galyleo really calls
        values["satellite_url"] = loaded.config.management_url
        origins["satellite_url"] = "derived from satellite_domain"
    if as_doc:
        emit({key: {"value": value, "from": origins.get(key, "built-in")} for key, value in values.items()})
        return 0
    width = max(len(k) for k in values)
    for key, value in values.items():
        print(f"{key:<{width}}  {json.dumps(value):<40}  {origins.get(key, 'built-in')}")
    return 0


def config_set(key: str, value: str, current: Optional[Config] = None) -> int:
    """Set KEY in the user file, keeping its other lines (and comments) as they are.

    A setting the command line also takes is checked by the command line's own rule
    (spec.py), so a value every later launch would refuse is refused now, file untouched;
    so is a default time limit above its partition's maximum (every launch would pend for ever).
    """
    from galyleo import config as site

    kinds = {f: site.kind_of(t) for f, t in site.Config.__annotations__.items()}
    if key not in kinds:
        raise site.ConfigError(f"config set {key!r}: unknown key (known: {', '.join(sorted(kinds))})")
    where = f"config set {key}"
    rule = launch_rules().get(key)
    typed = rule(where, value) if rule else site.from_text("config set", value, kinds[key], key)
    typed = site.check_value("config set", key, typed, kinds[key])
    if key in ("time_limit", "partition"):
        settings = replace(current or site.Config(), **{key: typed})
        within_partition(f"{where} {typed!r}", settings.time_limit, settings.partition)
    path = site.user_path(dict(os.environ))
    line = f"{key} = {json.dumps(typed)}"
    with user_file_lock(path):
        lines = open(path, encoding="utf-8").read().splitlines() if os.path.exists(path) else []
        kept = [entry for entry in lines if entry.split("=", 1)[0].strip() != key]
        text = "\n".join(kept + [line]) + "\n"
        site.toml_loads(text)
        replace_private(path, text)
    print(f"{path}: {line}")
    return 0


def within_partition(where: str, time_limit: str, partition: str) -> None:
    """UsageError if TIME_LIMIT is above PARTITION's MaxTime (sinfo's; no answer, no check)."""
    from galyleo import spec
    from galyleo.errors import UsageError

    found = slurm.partition(partition)
    most = spec.seconds(found.max_time) if found else None
    if found and most and (spec.seconds(time_limit) or 0) > most:
        raise UsageError(f"{where}: time_limit {time_limit} is above the maximum: "
                         f"{reasons.limit('PartitionTimeLimit', found)} (a launch would never start)")


def user_file_lock(path: str) -> Any:
    """The user config's folder (made 0700 if new) and an exclusive lock beside the file:
    concurrent `config set`s each read the others' keys."""
    import contextlib
    import fcntl

    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        made = folder
        while not os.path.isdir(os.path.dirname(made)):
            made = os.path.dirname(made)
        os.makedirs(folder, mode=0o700, exist_ok=True)
        os.chmod(made, 0o700)  # makedirs gives the intermediate folders the umask's mode
    fd = os.open(path + ".lock", os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)

    @contextlib.contextmanager
    def held() -> Any:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    return held()


def replace_private(path: str, text: str) -> None:
    """Write PATH (0600, whoever's umask) through a unique temporary file, then rename it into place."""
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=".config.", dir=os.path.dirname(path))  # mkstemp: 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        records.remove(tmp)
        raise


def launch_rules() -> Dict[str, Callable[[str, str], Any]]:
    """For each setting with a launch option: text -> the value to store, or UsageError (spec.py's checks).

    0 stays allowed for memory and gpus: it is their default, "not asked for". interface
    and the settings launch has no option for are checked by config.check_value alone.
    """
    from galyleo import spec
    from galyleo.errors import ACCEPT

    def name(accepted: str, pattern: Any) -> Callable[[str, str], str]:
        return lambda where, text: spec._name(where, text, accepted, pattern)

    def optional(check: Callable[[str, str], int]) -> Callable[[str, str], int]:
        return lambda where, text: 0 if text == "0" else check(where, text)

    return {
        "account": name(ACCEPT["account"], spec.NAME),
        "partition": name(ACCEPT["partition"], spec.PARTITION),
        "qos": name(ACCEPT["name"], spec.NAME),
        "reservation": name(ACCEPT["name"], spec.NAME),
        "job_name": name(ACCEPT["name"], spec.NAME),
        "constraint": name(ACCEPT["constraint"], spec.CONSTRAINT),
        "cpus": spec._count,
        "gpus": optional(spec._count),
        "memory": optional(spec.memory),
        "time_limit": spec.time_limit,
        "default_modules": lambda where, text: list(spec.modules(tuple(text.split(",")) if text else (), None)),
        "output_dir": plain_dir,
    }


def plain_dir(where: str, text: str) -> str:
    """Stored as typed (`~` kept), but refused if sbatch could not read it as `--output`."""
    from galyleo import spec

    spec.output_dir(text, os.path.expanduser("~"))
    return text
