"""Satellite mode: the browser reaches the session at `https://<alias>.<domain>/` through
the Satellite reverse proxy (docs/satellite-protocol.md).

Launch reserves an alias (getlink) before the job exists and hands it to the job,
whose snippet (satellite.sh.j2) redeems it once its server proved its own, and
destroys it in its clean-up. The alias is destroyed exactly once: by the job's
trap if the job started, else here (withdraw, release_unstarted). A job cancelled
while its shell had not yet set its trap, or a pending job a plain `scancel`
ended, leaves the alias behind: `orphaned` and `release_ended` find it.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from galyleo import TYPE_CHECKING, apps, contract, proxynames
from galyleo.connect.base import Connection, Handoff
from galyleo.contract import Record, SessionFiles
from galyleo.errors import GalyleoError, SatelliteError

if TYPE_CHECKING:
    from galyleo.slurm import JobInfo

TRAP_GRACE = 15.0  # seconds a cancelled job's clean-up gets to end before we stop waiting for it
PROBE_SECONDS = 10  # the readiness probe's total deadline
JOB_STATES = {"PE": "alias pending", "M": "mapped, route coming", "PR": "proxied (URL live)", "U": "unknown",
              "Q": "job queued", "R": "job running, not yet redeemed", "D": "job gone"}


class Satellite(Connection):
    name = "satellite"
    snippet = "satellite.sh.j2"
    holds = "its alias"

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self._client: Any = None

    def client(self) -> Any:
        """One HTTPS client per command (a bad ca_bundle is an error here, before anything is made)."""
        if self._client is None:
            from galyleo.satellite import Client

            self._client = Client(self.config)
        return self._client

    def prepare(self) -> None:
        self.client()

    def reserve(self) -> Handoff:
        return Handoff(self.client().getlink(), "", "")

    def placeholder(self) -> Handoff:
        return Handoff("ALIAS-FROM-GETLINK", "", "")

    def job_values(self, handoff: Optional[Handoff]) -> Dict[str, Any]:
        config = self.config
        return {
            "GALYLEO_DOMAIN": config.satellite_domain,
            "GALYLEO_SATELLITE_URL": config.management_url,
            "GALYLEO_CA_BUNDLE": config.ca_bundle,
            "GALYLEO_HTTP_TIMEOUT": config.http_timeout,
            "GALYLEO_ALIAS": handoff.alias if handoff else "",
            "GALYLEO_TOKEN_FILE": handoff.token_file if handoff else "",
            **proxynames.values(),
        }

    def record_fields(self, handoff: Handoff, token: str) -> Dict[str, Any]:
        domain = self.config.satellite_domain
        return {"alias": handoff.alias, "url": proxynames.proxy_url(handoff.alias, domain, token), "domain": domain}

    def standalone_record(self, interface: str, folder: str) -> Record:
        domain = self.config.satellite_domain
        url = proxynames.proxy_url(contract.slot("alias"), domain, contract.slot("token"))
        return contract.standalone_record(folder, interface, url, self.name, domain, alias=contract.slot("alias"))

    def after_submit(self, session: Record) -> None:
        """linktoken: lets the proxy show the job's state; the session works without it."""
        from galyleo import cancel  # not at import: rendering a script needs no Slurm command
        try:
            self.client().linktoken(session.alias, session.job_id)
        except SatelliteError as exc:
            cancel.warn(f"{exc} (the session works without it)")

    def ready(self, session: Record) -> Callable[[], bool]:
        """The job's own word first (a route someone else made with a stolen alias answers too),
        then the proxy routes to the server; the probe never carries the token."""
        routed = contract.files_of_record(session.record).routed
        statuses = apps.of(session.interface).proxy_ready
        return lambda: routed_by_job(routed) and answers(session.url, self.config, statuses)

    def report(self, session: Record, words: bool) -> bool:
        print(session.url, flush=True)
        return True

    def plan(self, paths: SessionFiles) -> List[List[str]]:
        base = self.config.management_url
        return [[f"GET {base}/getlink.cgi  -> a new alias"],
                [f"GET {base}/linktoken.cgi?token=<alias>&jobid=<job id>",
                 f"print {proxynames.proxy_url('<alias>', self.config.satellite_domain, '<token>')}"]]

    def withdraw(self, handoff: Handoff, job_id: Optional[str], cluster: str, keep_unsure: bool = False) -> bool:
        """True if we destroyed the alias. For launch's undo, a job Slurm would not cancel is
        reported and its alias destroyed all the same, so that job can never be routed; with
        KEEP_UNSURE (--wait giving up after the URL was printed) such a job may be running:
        its alias is kept."""
        from galyleo import cancel
        if job_id is not None:
            try:
                if cancel.end_job(job_id, cluster) and not self.orphaned(handoff.alias, job_id, cluster):
                    return False  # it started: its own trap destroys the alias
            except cancel.NotCancelled as exc:
                kept = f"; it may be running, so its alias is kept (stop it with: galyleo stop {job_id})"
                cancel.warn(f"could not cancel job {job_id}: {exc}" + (kept if keep_unsure else ""))
                if keep_unsure:
                    raise
        return self.destroy(handoff.alias)

    def orphaned(self, alias: str, job_id: str, cluster: str = "") -> bool:
        """Whether a started job we cancelled left ALIAS behind: scancel's TERM can reach its shell
        in its first milliseconds, before the trap that destroys the alias is set. Once Slurm says
        the job ended, ask the proxy; a job still ending after TRAP_GRACE owns the alias."""
        from galyleo import slurm
        deadline = time.monotonic() + TRAP_GRACE
        while True:
            info = slurm.job(job_id, retry=False, cluster=cluster)
            if info is not None and not info.live:
                break
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)
        try:
            return bool(self.client().known(alias))
        except SatelliteError:
            return False

    def destroy(self, alias: str) -> bool:
        """destroytoken; a failure is a warning naming the alias (it can be destroyed later). True if done."""
        from galyleo import cancel
        try:
            self.client().destroy(alias)
        except SatelliteError as exc:
            cancel.warn(f"{exc} (alias {alias} is still held)")
            return False
        return True

    def release_unstarted(self, session: Record) -> bool:
        return not session.alias or self.destroy(session.alias)  # a plain-sbatch job that never ran made none

    def release_ended(self, session: Record) -> bool:
        from galyleo import cancel
        alias = session.alias
        try:
            if not alias or not self.client().known(alias):
                return False
            self.client().destroy(alias)
        except SatelliteError as exc:
            cancel.warn(f"alias {alias} of an ended session could not be released: {exc}")
            return False
        return True

    def status_fields(self, session: Record, info: JobInfo) -> Dict[str, str]:
        return {"satellite": self.proxy_state(session.alias, info)}

    def status_lines(self, doc: Dict[str, Any], info: JobInfo) -> List[Tuple[str, str]]:
        return [("proxy", doc["satellite"])]

    def proxy_state(self, alias: str, info: JobInfo) -> str:
        """The proxy's view (tokenjobstate) in words; the reply may be `CODE` or `<age> CODE`.

        An ended session's alias was destroyed (tokenjobstate then has nothing to say), unless
        the job never ran its clean-up: then the proxy still knows it, and `stop`/`clean` release it.
        """
        if not alias:
            return "no alias yet (the job gets one when it starts)"
        try:
            if info.state == "ENDED":
                held = self.client().known(alias)
                return "alias still held (`galyleo clean` releases it)" if held else f"alias {alias} released"
            reply = self.client().jobstate(alias).split()
        except GalyleoError as exc:
            return f"unavailable ({exc})"
        code = reply[-1] if reply else "U"
        return JOB_STATES.get(code, code)

    def open(self, session: Record, info: JobInfo, state: str) -> int:
        if not session.url:
            raise GalyleoError(f"job {session.job_id} has no URL yet: {state}; it gets one when it starts")
        print(session.url)
        return 0


MODE = Satellite


def answers(url: str, config: Any, statuses: Tuple[int, ...]) -> bool:
    """True once the proxy hands `/` to the server (the app answers one of STATUSES without
    the token: a redirect), never for the proxy's waiting page."""
    import http.client
    import ssl
    import urllib.parse

    from galyleo.satellite import Deadline, deadline, trusted

    parts = urllib.parse.urlsplit(url)
    context = ssl.create_default_context(cafile=trusted(config.ca_bundle))  # what the Satellite calls trust
    try:
        with deadline(PROBE_SECONDS):  # a proxy that drips its answer must not hold --wait
            return probe(parts.hostname or "", parts.port or 443, context, config.proxy_address) in statuses
    except (OSError, http.client.HTTPException, Deadline):
        return False


def probe(host: str, port: int, context: Any, proxy_address: str) -> int:
    """The HTTP status of `GET /` on HOST (dialled at PROXY_ADDRESS if set)."""
    import http.client
    import socket

    raw = socket.create_connection((proxy_address or host, port), timeout=5)
    with context.wrap_socket(raw, server_hostname=host) as sock:
        conn = http.client.HTTPSConnection(host, port, timeout=5)
        conn.sock = sock
        conn.request("GET", "/", headers={"Host": host})
        return conn.getresponse().status


def routed_by_job(path: str) -> bool:
    """Whether the job says its own route is live: it writes PATH (SessionFiles.routed) only
    after its own redeem succeeded. A file someone else put there, or anything but a
    regular file, is not the job's word."""
    import os
    import stat

    try:
        found = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISREG(found.st_mode) and found.st_uid == os.getuid()
