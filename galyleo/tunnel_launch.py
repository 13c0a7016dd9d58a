"""`galyleo launch` and `open` in ssh-tunnel mode: token -> files -> sbatch -> wait -> the two lines.

No Satellite call is made, before, during or after. The job's node and port are
known only once it runs, so launch always waits (launch --wait's machinery, watch.py)
until the job has written its URL file (tunnel.py), then prints the ssh command to
run on the laptop and, last, the local URL. Any failure, Ctrl-C or SIGTERM before
the job id is known removes the files; after it, the job is cancelled too.
"""

from __future__ import annotations

import json
import secrets
import sys
from dataclasses import replace
from typing import Any, Optional

from galyleo import records, render, slurm, tunnel
from galyleo.config import Config
from galyleo.contract import Record, SessionFiles
from galyleo.errors import GalyleoError
from galyleo.sessions import Session
from galyleo.slurm import JobInfo
from galyleo.spec import LaunchSpec


def launch(spec: LaunchSpec, config: Config, options: Any) -> int:
    from galyleo import watch
    from galyleo.interrupts import Held

    held = Held()
    paths = records.new_session(spec.output_dir)
    url_file = paths.url
    target = tunnel.target(config)  # before any side effect: a name ssh cannot take is an error now
    job_id: Optional[str] = None
    cluster = ""
    try:
        token = secrets.token_hex(32)
        port = tunnel.local_port()
        records.write_private(paths.token, token)
        records.write_private(paths.script,
                              render.render(spec, config, render.Handoff("", paths.token, paths.output, port)))
        records.write_private(paths.output, "")  # Slurm keeps the mode of a file that exists
        with held:  # a job sbatch submitted but whose id we never read
            job_id, cluster = slurm.submit(paths.script)
        held.deliver()
        session = record(spec, config, paths, job_id, tunnel.local_url(port, token), target, port, cluster)
        records.write_record(session)
    except BaseException as exc:
        undo(job_id, paths, cluster)
        undone = f"job {job_id} cancelled" if job_id else "nothing was submitted"
        if isinstance(exc, GalyleoError) and job_id:
            raise type(exc)(f"{exc} ({undone})") from None
        if isinstance(exc, KeyboardInterrupt):
            sys.stderr.write(f"galyleo: launch interrupted: {undone}\n")
        raise
    if not options.quiet and not options.json:
        print(f"Submitted batch job {job_id} (session {paths.name})")
        print(f"Job script: {paths.script}")
        print(f"Job output: {paths.output}", flush=True)

    submitted = session.job_id

    def give_up() -> None:  # a job cancelled before it ran never read its token: remove it too
        if cancel_job(submitted, cluster):
            records.remove(paths.token)

    status = watch.follow(submitted, session.url, config, give_up, sys.stderr, cluster=cluster,
                          ready=lambda: tunnel.read(url_file) is not None, alias=False)
    found = tunnel.read(url_file)
    if status != 0 or found is None:
        return status or 1
    report(session, found, options)
    return 0


def record(spec: LaunchSpec, config: Config, paths: SessionFiles, job_id: str, url: str,
           target: str, port: int, cluster: str = "") -> Record:
    """launch's session record, in ssh mode: no alias, the local URL, the ssh target."""
    from galyleo.launch import record as satellite_record

    session = satellite_record(spec, config, paths, "", job_id, url, cluster)
    return replace(session, connect="ssh", domain="", ssh_target=target, local_port=port)


def undo(job_id: Optional[str], paths: SessionFiles, cluster: str = "") -> None:
    from galyleo.interrupts import Held

    with Held():
        if job_id:
            cancel_job(job_id, cluster)
        records.remove(paths.token, paths.script, paths.record, paths.output)


def cancel_job(job_id: str, cluster: str = "") -> bool:
    """Cancel JOB_ID; False (with a warning) if it may still run."""
    from galyleo import cancel

    try:
        cancel.end_job(job_id, cluster)
    except cancel.NotCancelled as exc:
        cancel.warn(f"could not cancel job {job_id}: {exc}")
        return False
    return True


def report(session: Record, found: tunnel.Tunnel, options: Any) -> None:
    """The ssh command, then the local URL as the last line; --json: one document."""
    if options.json:
        from galyleo.launch import session_json

        doc = dict(session_json(session), state="RUNNING", connect="ssh", ssh_argv=found.ssh_argv(), url=found.url())
        json.dump(doc, sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
        sys.stdout.flush()
        return
    print_lines(found, words=not options.quiet)


def print_lines(found: tunnel.Tunnel, words: bool = True) -> None:
    if words:
        print("On your laptop, open the tunnel (it stays open until you press Ctrl-C there):")
    print(found.ssh_line())
    if words:
        print("then open in your browser:")
    print(found.url(), flush=True)


def open_session(session: Session, info: JobInfo) -> int:
    """`galyleo open` of an ssh-mode session: the two lines again, once the job wrote them."""
    found = tunnel.read(tunnel.url_path(session.record))
    if found is None or not info.live:
        from galyleo.session_commands import describe

        raise GalyleoError(f"job {session.job_id} has no tunnel to open: {describe(info)}; "
                           "the job writes the ssh command once Jupyter answers")
    print_lines(found)
    return 0


def dry_run(spec: LaunchSpec, config: Config) -> int:
    """What launch would do in ssh mode, on stdout; nothing is called or written."""
    paths = records.new_session(spec.output_dir)
    handoff = render.Handoff("", paths.token, paths.output)
    ports = f"random in {tunnel.LOCAL_PORT_MIN}-{tunnel.LOCAL_PORT_MIN + tunnel.LOCAL_PORT_SPAN - 1}"
    steps = [
        f"write {paths.token} (0600): a new 256-bit Jupyter token",
        f"write {paths.script} (0600): the script below",
        " ".join(slurm.submit_argv(paths.script)),
        f"write {paths.record} (0600): the session record",
        f"wait until the job writes {paths.url} (0600)",
        "print: " + tunnel.URL_FORMAT.splitlines()[0] % ("<local port>", "<node>", "<port>", tunnel.target(config)),
        f"print {tunnel.ORIGIN_FORMAT % '<local port>'}/?token=<token>  (local port {ports}, chosen now)",
    ]
    from galyleo.launch import show_plan

    return show_plan(" (ssh tunnel mode, no Satellite call)", steps, render.render(spec, config, handoff))
