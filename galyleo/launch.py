"""`galyleo launch`: one pipeline for every connection mode.

prepare -> reserve the connection -> write the files -> submit -> record -> after
submit -> report -> (wait). The connection mode (galyleo/connect/) fills in each
step; `--dry-run` lists the same steps and makes none. Everything is validated
before this runs. After the first side effect any failure, Ctrl-C, SIGTERM, SIGHUP
(the SSH connection dropped), SIGQUIT, or a closed stdout before the URL is out
undoes what was done: the mode withdraws what it reserved exactly once (an alias:
by us if the job never started, by the job's own trap if it did), a submitted job
is cancelled, and the files written are removed. Signals are held (not lost) while
a call that creates something is in flight (getlink, sbatch; each bounded by its
total deadline) and while undoing, so galyleo always learns what it must withdraw.
"""

from __future__ import annotations

import json
import secrets
import socket
import sys
import time
from dataclasses import asdict, dataclass, replace
from typing import Any, Dict, Optional

from galyleo import connect, contract, endings, records, render, slurm
from galyleo.cancel import NotCancelled
from galyleo.config import Config
from galyleo.connect.base import Connection, Handoff
from galyleo.contract import Record, SessionFiles
from galyleo.errors import GalyleoError, SatelliteError
from galyleo.interrupts import Held, Terminated, ending_raises
from galyleo.spec import LaunchSpec


@dataclass(frozen=True)
class Options:
    """How launch reports: plain, quiet, JSON; whether it waits; or only shows (dry run)."""

    quiet: bool = False
    json: bool = False
    wait: bool = False
    dry_run: bool = False


def run(spec: LaunchSpec, config: Config, options: Options) -> int:
    mode = connect.of(spec.connect, config)
    if options.dry_run:
        return dry_run(spec, config, mode)
    if not slurm.available():
        raise GalyleoError("sbatch: command not found (run galyleo on a login node of a Slurm cluster)")
    mode.prepare()  # a bad ca_bundle, a host name ssh cannot take: before anything is made
    records.ensure_dir(spec.output_dir)
    try:
        with ending_raises():
            return _launch(spec, config, options, mode)
    except Terminated as exc:
        say(f"galyleo: error: {exc.words}\n")
        return 128 + exc.signum


def say(text: str) -> None:
    """Write to stderr; after a SIGHUP the terminal is gone, which must not stop the undo."""
    try:
        sys.stderr.write(text)
        sys.stderr.flush()
    except OSError:
        pass


def _launch(spec: LaunchSpec, config: Config, options: Options, mode: Connection) -> int:
    held = Held()
    paths = records.new_session(spec.output_dir)
    handoff: Optional[Handoff] = None
    job_id: Optional[str] = None
    cluster = ""
    try:  # from here on, whatever was reserved is always withdrawn
        with held:  # an interrupted getlink could make an alias we would never hear of
            handoff = replace(mode.reserve(), token_file=paths.token, output_file=paths.output)
        held.deliver()  # a signal held meanwhile ends the launch now, and what was reserved is withdrawn
        token = secrets.token_hex(32)
        records.write_private(paths.token, token)
        records.write_private(paths.script, render.render(spec, config, handoff, mode))
        records.write_private(paths.output, "")  # Slurm keeps the mode of a file that exists
        with held:  # likewise a job sbatch submitted but whose id we never read
            job_id, cluster = slurm.submit(paths.script)
        held.deliver()
        session = record(spec, config, paths, job_id, cluster, mode.record_fields(handoff, token))
        records.write_record(session)
        mode.after_submit(session)
        if not options.quiet and not options.json:
            head(session)
        if not mode.waits and not (options.json and options.wait):  # with both: one document, after the wait
            report(mode, session, options)  # a closed stdout (BrokenPipeError): nobody learns the URL, so undo
    except BaseException as exc:
        if handoff is None:  # reserving itself failed: nothing was made
            raise
        undo(mode, handoff, job_id, cluster, paths, exc)
    return wait(mode, session, options, handoff, cluster)


def undo(mode: Connection, handoff: Handoff, job_id: Optional[str], cluster: str, paths: SessionFiles,
         exc: BaseException) -> None:
    """Withdraw, with every signal held, and say what was undone; then raise EXC's like."""
    with Held():
        mode.withdraw(handoff, job_id, cluster)
        records.remove(paths.token, paths.script, paths.record, paths.output)
    undone = ", ".join(part for part in (
        f"alias {handoff.alias} withdrawn" if handoff.alias else "",
        f"job {job_id} cancelled" if job_id else "") if part) or "nothing was submitted"
    if isinstance(exc, GalyleoError) and not isinstance(exc, SatelliteError) and (handoff.alias or job_id):
        raise type(exc)(f"{exc} ({undone})") from None
    if isinstance(exc, KeyboardInterrupt):
        say(f"galyleo: launch interrupted: {undone}\n")
    if isinstance(exc, BrokenPipeError):
        raise GalyleoError(f"stdout was closed before the URL could be printed ({undone})") from None
    raise exc


def wait(mode: Connection, session: Record, options: Options, handoff: Handoff, cluster: str) -> int:
    """--wait (always, in a mode that `waits`): follow the job until the mode says it is ready."""
    if not (options.wait or mode.waits):
        return 0
    from galyleo import watch

    def give_up() -> None:  # a job cancelled before it ran never read its token: remove it too
        try:
            mode.withdraw(handoff, session.job_id, cluster, keep_unsure=True)
        except NotCancelled:  # it may be running: what it holds, its token and record stay
            return
        records.remove(contract.files_of_record(session.record).token)
        endings.remember(session.record, endings.CANCELLED_PENDING)

    status = watch.follow(session.job_id, mode.ready(session), give_up, cluster=cluster, holds=mode.holds)
    if mode.waits:
        if status != 0:
            return status
        return report(mode, session, options, "RUNNING")
    if options.json:  # the state it waited for: RUNNING and ready, else what Slurm says now
        info = slurm.job(session.job_id, retry=False, cluster=cluster) if status else None
        report(mode, session, options, "RUNNING" if not status else (info.state if info else "UNKNOWN"))
    return status


def head(session: Record) -> None:
    print(f"Submitted batch job {session.job_id} (session {session.name})")
    print(f"Job script: {session.script}")
    print(f"Job output: {session.output}", flush=True)


def report(mode: Connection, session: Record, options: Options, state: str = "SUBMITTED") -> int:
    """URL last on stdout (only line with --quiet); with --json one document, words on stderr."""
    if options.json:
        json.dump(dict(session_json(session, state), **mode.json_fields(session)), sys.stdout, indent=2,
                  sort_keys=True)
        sys.stdout.write("\n")
        sys.stdout.flush()
        return 0
    return 0 if mode.report(session, words=not options.quiet) else 1


def session_json(session: Record, state: str = "SUBMITTED") -> Dict[str, Any]:
    keys = ("name", "job_id", "alias", "url", "script", "output", "record", "interface", "created")
    return dict({k: getattr(session, k) for k in keys}, state=state)


def record(spec: LaunchSpec, config: Config, paths: SessionFiles, job_id: str, cluster: str,
           fields: Dict[str, Any]) -> Record:
    """The session record (0600, holds the URL with its token): what list/status/open/stop need."""
    return Record(
        name=paths.name, job_id=job_id, script=paths.script, output=paths.output, record=paths.record,
        interface=spec.interface, login_host=socket.gethostname(),
        cluster=cluster or slurm.cluster_name(),  # sbatch's `jobid;cluster` answer names another cluster
        created=time.strftime(contract.TIME_FORMAT, time.gmtime()), options=asdict(spec), **fields,
    )


def dry_run(spec: LaunchSpec, config: Config, mode: Connection) -> int:
    """What launch would do, on stdout; nothing is called or written."""
    paths = records.new_session(spec.output_dir)
    before, after = mode.plan(paths)
    steps = before + [
        f"write {paths.token} (0600): a new 256-bit Jupyter token",
        f"write {paths.script} (0600): the script below",
        " ".join(slurm.submit_argv(paths.script)),
        f"write {paths.record} (0600): the session record",
    ] + after
    handoff = replace(mode.placeholder(), token_file=paths.token, output_file=paths.output)
    print(f"# galyleo launch --dry-run{mode.dry_run_words}: nothing below was called or written")
    for number, step in enumerate(steps, 1):
        print(f"# {number}. {step}")
    sys.stdout.write(render.render(spec, config, handoff, mode))
    return 0
