"""Client for the Satellite reverse proxy's management API, used on the login node.

Every reply is HTTP 200, errors included: a body starting `Oops!`, or one that
does not parse, is a failure. Verification always uses the site CA bundle (or
the system store) passed per request, so REQUESTS_CA_BUNDLE cannot override it.
Connection failures are retried a few times, but getlink and linktoken only
when the request surely never left (connect errors): a getlink that timed out
may still have made an alias, and a repeated linktoken is refused ("only
once"). A destroy repeated after a timeout that finds the alias already gone
has succeeded.
"""

from __future__ import annotations

import re
import time
from typing import Any, Callable, Dict, Union

from galyleo import shivcache
from galyleo.config import Config
from galyleo.errors import SatelliteError

shivcache.compile_network(shivcache.__file__)  # a pyz's first use of requests: its bytecode
import requests  # noqa: E402

ALIAS = re.compile(r"[a-z0-9]+-[a-z0-9]+-[a-z0-9]+\Z")
RETRIES = 2
BACKOFF = 0.3


class Client:
    """One HTTPS session (one connection reused) against `https://manage.<domain>/`."""

    def __init__(self, config: Config) -> None:
        self.base = config.management_url
        self.verify: Union[str, bool] = config.ca_bundle or True
        self.timeout = config.http_timeout
        self.http = requests.Session()
        self.retried = False

    def call(self, endpoint: str, params: Dict[str, str], retry_on: Callable[[Exception], bool]) -> str:
        """GET one endpoint; return the body, or raise SatelliteError with the cause."""
        url = f"{self.base}/{endpoint}.cgi"
        self.retried = False
        for attempt in range(RETRIES + 1):
            try:
                reply = self.http.get(url, params=params, timeout=self.timeout, verify=self.verify)
                break
            except requests.RequestException as exc:
                if attempt == RETRIES or not retry_on(exc):
                    raise SatelliteError(f"Satellite proxy {self.base}: {endpoint}: {describe(exc)}") from None
                self.retried = True
                time.sleep(BACKOFF * (attempt + 1))
        body = reply.text
        if reply.status_code != 200:
            raise SatelliteError(f"Satellite proxy {self.base}: {endpoint}: HTTP {reply.status_code}")
        if not body.strip() or body.startswith("Oops!"):
            raise SatelliteError(f"Satellite proxy {self.base}: {endpoint}: {body.strip()[:200] or 'empty reply'}")
        return body

    def getlink(self) -> str:
        """A new alias in state pending; the reply must be exactly one alias."""
        body = self.call("getlink", {}, never_sent)
        alias = body.strip().splitlines()[-1].strip() if body.strip() else ""
        if not body.startswith("Your token is") or not ALIAS.match(alias):
            raise SatelliteError(f"Satellite proxy {self.base}: getlink: unexpected reply {body[:80]!r}")
        return alias

    def linktoken(self, alias: str, job_id: str) -> None:
        self.call("linktoken", {"token": alias, "jobid": job_id}, never_sent)

    def destroy(self, alias: str) -> None:
        try:
            self.call("destroytoken", {"token": alias}, any_connection_error)
        except SatelliteError as exc:
            if not (self.retried and "already destroyed" in str(exc)):
                raise

    def known(self, alias: str) -> bool:
        """Whether the proxy still holds ALIAS (tokenjobstate answers nothing for an unknown one)."""
        try:
            return bool(self.jobstate(alias))
        except SatelliteError as exc:
            if str(exc).endswith("empty reply"):
                return False
            raise

    def jobstate(self, alias: str) -> str:
        return self.call("tokenjobstate", {"token": alias}, any_connection_error).strip()


def never_sent(exc: Exception) -> bool:
    return isinstance(exc, requests.ConnectTimeout) or (
        isinstance(exc, requests.ConnectionError) and "NewConnectionError" in repr(exc)
    )


def any_connection_error(exc: Exception) -> bool:
    return isinstance(exc, (requests.ConnectionError, requests.Timeout))


def describe(exc: Any) -> str:
    """A plain cause: refused, timed out, TLS, or requests' own words."""
    text = str(exc)
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS certificate not trusted or invalid (site setting ca_bundle)"
    if isinstance(exc, requests.Timeout):
        return "no answer (timed out)"
    if "Connection refused" in text:
        return "connection refused"
    if "Name or service not known" in text or "NameResolutionError" in text:
        return "host name not found"
    return text[:200]
