"""`galyleo launch`: alias -> token -> files -> sbatch -> linktoken -> URL.

Everything is validated before this runs. After the first side effect (getlink)
any failure, Ctrl-C or SIGTERM undoes what was done: the alias is destroyed
exactly once (by us if the job never started, by the job's own trap if it did),
a submitted job is cancelled, and the files written are removed.
"""

from __future__ import annotations

import secrets
import signal
import sys
import time
from typing import Any, List, Optional

from galyleo import records, render, slurm
from galyleo.config import Config
from galyleo.errors import GalyleoError, SatelliteError
from galyleo.satellite import Client
from galyleo.spec import LaunchSpec

STARTED = ("RUNNING", "COMPLETING", "CONFIGURING", "STOPPED", "SUSPENDED")


def run(spec: LaunchSpec, config: Config, quiet: bool = False) -> int:
    if not slurm.available():
        raise GalyleoError("sbatch: command not found (run galyleo on a login node of a Slurm cluster)")
    records.ensure_dir(spec.output_dir)
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return _launch(spec, config, quiet)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _launch(spec: LaunchSpec, config: Config, quiet: bool) -> int:
    client = Client(config)
    alias = client.getlink()
    paths = records.new_session(spec.output_dir)
    job_id: Optional[str] = None
    try:
        token = secrets.token_hex(32)
        url = f"https://{alias}.{config.satellite_domain}/?token={token}"
        handoff = render.Handoff(alias, paths.token, paths.output)
        records.write_private(paths.token, token)
        records.write_private(paths.script, render.render(spec, config, handoff))
        job_id = slurm.submit(paths.script)
        records.write_record(paths.record, record(spec, config, paths, alias, job_id, url))
    except BaseException as exc:
        withdraw(client, alias, job_id)
        records.remove(paths.token, paths.script, paths.record)
        if isinstance(exc, GalyleoError) and not isinstance(exc, SatelliteError):
            raise type(exc)(f"{exc} (alias {alias} withdrawn)") from None
        raise
    try:
        client.linktoken(alias, job_id)
    except SatelliteError as exc:
        sys.stderr.write(f"galyleo: warning: {exc} (the session works without it)\n")
    if not quiet:
        print(f"Submitted batch job {job_id} (session {paths.name})")
        print(f"Job script: {paths.script}")
        print(f"Job output: {paths.output}")
    print(url)
    return 0


def withdraw(client: Client, alias: str, job_id: Optional[str]) -> None:
    """Undo a half-done launch without ever destroying the alias twice."""
    destroy = True
    if job_id is not None:
        try:
            slurm.cancel(job_id, pending_only=True)
            if slurm.state(job_id) in STARTED:
                slurm.cancel(job_id)
                destroy = False  # the job's EXIT trap destroys it
        except GalyleoError as exc:
            sys.stderr.write(f"galyleo: warning: could not cancel job {job_id}: {exc}\n")
    if destroy:
        try:
            client.destroy(alias)
        except SatelliteError as exc:
            sys.stderr.write(f"galyleo: warning: {exc}\n")


def record(spec: LaunchSpec, config: Config, paths: records.SessionPaths, alias: str, job_id: str, url: str) -> dict:
    """The session record (0600): what a later `galyleo list/open/stop` needs."""
    options: List[Any] = [[k, v] for k, v in vars(spec).items()]
    return {
        "name": paths.name,
        "job_id": job_id,
        "alias": alias,
        "url": url,
        "domain": config.satellite_domain,
        "script": paths.script,
        "output": paths.output,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "options": dict(options),
    }
