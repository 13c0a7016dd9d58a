"""`galyleo launch`: alias -> token -> files -> sbatch -> linktoken -> URL (-> --wait).

Everything is validated before this runs. After the first side effect (getlink)
any failure, Ctrl-C, SIGTERM, SIGHUP (the SSH connection dropped), SIGQUIT, or a
closed stdout before the URL is out undoes what was done: the alias is destroyed
exactly once (by us if the job never started, by the job's own trap if it did),
a submitted job is cancelled, and the files written are removed. Signals are held
(not lost) while a call that creates something is in flight (getlink, sbatch;
each bounded by its total deadline) and while undoing, so galyleo always learns
the alias or job id it must withdraw. `--dry-run` shows the script and the calls,
and makes none.
"""

from __future__ import annotations

import json
import secrets
import socket
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Optional

from galyleo import contract, endings, records, render, slurm
from galyleo.cancel import NotCancelled, withdraw
from galyleo.config import Config
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
    if options.dry_run:
        return dry_run(spec, config)
    if not slurm.available():
        raise GalyleoError("sbatch: command not found (run galyleo on a login node of a Slurm cluster)")
    client = None
    if spec.connect != "ssh":  # ssh mode makes no Satellite call at all
        from galyleo.satellite import Client

        client = Client(config)  # a bad ca_bundle stops here, before anything is made
    records.ensure_dir(spec.output_dir)
    try:
        with ending_raises():
            return _launch(spec, config, options, client)
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


def _launch(spec: LaunchSpec, config: Config, options: Options, client: Any) -> int:
    if spec.connect == "ssh":  # no Satellite call at all: its own flow
        from galyleo import tunnel_launch

        return tunnel_launch.launch(spec, config, options)
    held = Held()
    paths = records.new_session(spec.output_dir)
    alias: Optional[str] = None
    job_id: Optional[str] = None
    cluster = ""
    try:  # from here on, an alias once known is always withdrawn
        with held:  # an interrupted getlink could make an alias we would never hear of
            alias = client.getlink()
        held.deliver()
        token = secrets.token_hex(32)
        url = contract.proxy_url(alias, config.satellite_domain, token)
        handoff = render.Handoff(alias, paths.token, paths.output)
        records.write_private(paths.token, token)
        records.write_private(paths.script, render.render(spec, config, handoff))
        records.write_private(paths.output, "")  # Slurm keeps the mode of a file that exists
        with held:  # likewise a job sbatch submitted but whose id we never read
            job_id, cluster = slurm.submit(paths.script)
        held.deliver()
        session = record(spec, config, paths, alias, job_id, url, cluster)
        records.write_record(session)
        link(client, alias, job_id)
        if not (options.json and options.wait):  # with both: one document, once the wait is over
            report(session, options)  # a closed stdout (BrokenPipeError): nobody learns the URL, so undo
    except BaseException as exc:
        if alias is None:  # getlink itself failed: nothing was made
            raise
        with Held():
            withdraw(client, alias, job_id, cluster)
            records.remove(paths.token, paths.script, paths.record, paths.output)
        undone = f"alias {alias} withdrawn" + (f", job {job_id} cancelled" if job_id else "")
        if isinstance(exc, GalyleoError) and not isinstance(exc, SatelliteError):
            raise type(exc)(f"{exc} ({undone})") from None
        if isinstance(exc, KeyboardInterrupt):
            say(f"galyleo: launch interrupted: {undone}\n")
        if isinstance(exc, BrokenPipeError):
            raise GalyleoError(f"stdout was closed before the URL could be printed ({undone})") from None
        raise
    if not options.wait:
        return 0
    from galyleo import watch

    def give_up() -> None:  # a job cancelled before it ran never read its token: remove it too
        try:
            withdraw(client, alias, job_id, cluster, keep_unsure=True)
        except NotCancelled:  # it may be running: its alias, token and record stay
            return
        records.remove(paths.token)
        endings.remember(paths.record, endings.CANCELLED_PENDING)

    def ready() -> bool:  # the job's own word first: a route someone else made may answer too
        return contract.routed(paths.routed) and watch.answers(url, config)

    status = watch.follow(job_id, url, config, give_up, cluster=cluster, ready=ready)
    if options.json:  # the state it waited for: RUNNING and ready, else what Slurm says now
        info = slurm.job(job_id, retry=False, cluster=cluster) if status else None
        report(session, options, "RUNNING" if not status else (info.state if info else "UNKNOWN"))
    return status


def link(client: Any, alias: str, job_id: str) -> None:
    """linktoken: lets the proxy show the job's state; the session works without it."""
    try:
        client.linktoken(alias, job_id)
    except SatelliteError as exc:
        sys.stderr.write(f"galyleo: warning: {exc} (the session works without it)\n")


def report(session: Record, options: Options, state: str = "SUBMITTED") -> None:
    """URL last on stdout (only line with --quiet); with --json one document, words on stderr."""
    if options.json:
        json.dump(session_json(session, state), sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
        sys.stdout.flush()
        return
    if not options.quiet:
        print(f"Submitted batch job {session.job_id} (session {session.name})")
        print(f"Job script: {session.script}")
        print(f"Job output: {session.output}")
    print(session.url, flush=True)


def session_json(session: Record, state: str = "SUBMITTED") -> Dict[str, Any]:
    keys = ("name", "job_id", "alias", "url", "script", "output", "record", "interface", "created")
    return dict({k: getattr(session, k) for k in keys}, state=state)


def record(spec: LaunchSpec, config: Config, paths: SessionFiles, alias: str, job_id: str,
           url: str, cluster: str = "") -> Record:
    """The session record (0600, holds the URL with its token): what list/status/open/stop need."""
    return Record(
        name=paths.name, job_id=job_id, alias=alias, url=url, domain=config.satellite_domain,
        script=paths.script, output=paths.output, record=paths.record, interface=spec.interface,
        login_host=socket.gethostname(),
        cluster=cluster or slurm.cluster_name(),  # sbatch's `jobid;cluster` answer names another cluster
        created=time.strftime(contract.TIME_FORMAT, time.gmtime()), options=asdict(spec),
    )


def dry_run(spec: LaunchSpec, config: Config) -> int:
    """What launch would do, on stdout; nothing is called or written."""
    if spec.connect == "ssh":
        from galyleo import tunnel_launch

        return tunnel_launch.dry_run(spec, config)
    paths = records.new_session(spec.output_dir)
    handoff = render.Handoff("ALIAS-FROM-GETLINK", paths.token, paths.output)
    base = config.management_url
    steps = [
        f"GET {base}/getlink.cgi  -> a new alias",
        f"write {paths.token} (0600): a new 256-bit Jupyter token",
        f"write {paths.script} (0600): the script below",
        " ".join(slurm.submit_argv(paths.script)),
        f"write {paths.record} (0600): the session record",
        f"GET {base}/linktoken.cgi?token=<alias>&jobid=<job id>",
        f"print {contract.proxy_url('<alias>', config.satellite_domain, '<token>')}",
    ]
    return show_plan("", steps, render.render(spec, config, handoff))


def show_plan(mode: str, steps: List[str], script: str) -> int:
    """--dry-run's output: the numbered steps as comments, then the script."""
    print(f"# galyleo launch --dry-run{mode}: nothing below was called or written")
    for number, step in enumerate(steps, 1):
        print(f"# {number}. {step}")
    sys.stdout.write(script)
    return 0
