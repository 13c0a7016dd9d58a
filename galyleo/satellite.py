"""Client for the Satellite reverse proxy's management API, used on the login node.

Every reply is HTTP 200, errors included: a body starting `Oops!`, or one that
does not parse, is a failure. Trust: the site's `ca_bundle` if set, else the Mozilla
CA list bundled with galyleo (certifi), passed per request as a path, so nothing in
the environment (REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE, SSL_CERT_FILE) can widen it.
Every call, retries included, ends within `http_timeout` seconds in total, however
slowly the peer answers (a SIGALRM deadline, not requests' per-read timeout). A
redirect is followed only to the same scheme, host and port. Connection failures
are retried a few times, but getlink and linktoken only when the request surely
never left (connect errors): a getlink that timed out may still have made an
alias, and a repeated linktoken is refused ("only once"). A destroy repeated
after a timeout that finds the alias already gone has succeeded.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
import urllib.parse
from typing import Any, Callable, Dict, Iterator

import certifi
import requests

from galyleo import proxynames
from galyleo.config import Config
from galyleo.errors import SatelliteError

RETRIES = 2
BACKOFF = 0.3
MAX_REDIRECTS = 3


class Deadline(BaseException):
    """The call's total time ran out (raised by SIGALRM; a BaseException so no library swallows it)."""


def trusted(ca_bundle: str) -> str:
    """The CA file every HTTPS call of galyleo trusts; a missing or unreadable ca_bundle is an error."""
    if not ca_bundle:
        return certifi.where()
    if not (os.path.isfile(ca_bundle) and os.access(ca_bundle, os.R_OK)):
        raise SatelliteError(f"site setting ca_bundle {ca_bundle!r}: not a readable file")
    return ca_bundle


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Raise Deadline after SECONDS, whatever the socket does (main thread only; elsewhere
    requests' per-read timeout is the only bound)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise Deadline

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL if previous is None else previous)


class Client:
    """One HTTPS session (one connection reused) against `https://manage.<domain>/`."""

    def __init__(self, config: Config) -> None:
        self.base = config.management_url
        self.verify = trusted(config.ca_bundle)
        self.timeout = config.http_timeout
        self.http = requests.Session()
        self.retried = False

    def call(self, endpoint: str, params: Dict[str, str], retry_on: Callable[[Exception], bool]) -> str:
        """GET one endpoint within the total deadline; return the body, or raise SatelliteError with the cause."""
        self.retried = False
        try:
            with deadline(self.timeout):
                reply = self.attempts(endpoint, params, retry_on, time.monotonic() + self.timeout)
                body = reply.text
        except Deadline:
            self.http.close()  # a half-read connection must not be reused
            raise SatelliteError(f"Satellite proxy {self.base}: {endpoint}: no answer (timed out) within "
                                 f"{self.timeout} s in total (http_timeout)") from None
        if reply.is_redirect:
            target = reply.headers.get("Location", "?")
            raise SatelliteError(f"Satellite proxy {self.base}: {endpoint}: redirected to {target!r} "
                                 "(another host or scheme, or a loop: not followed)")
        if reply.status_code != 200:
            raise SatelliteError(f"Satellite proxy {self.base}: {endpoint}: HTTP {reply.status_code}")
        if not body.strip() or body.startswith("Oops!"):
            raise SatelliteError(f"Satellite proxy {self.base}: {endpoint}: {body.strip()[:200] or 'empty reply'}")
        return body

    def attempts(self, endpoint: str, params: Dict[str, str], retry_on: Callable[[Exception], bool],
                 end: float) -> requests.Response:
        """The GET, retried on connection errors RETRY_ON allows while time remains."""
        for attempt in range(RETRIES + 1):
            try:
                # per read: past the deadline, so the deadline (one message) ends a slow call
                return self.get(f"{self.base}/{endpoint}.cgi", params, max(0.1, end - time.monotonic()) + 1)
            except requests.RequestException as exc:
                if attempt == RETRIES or not retry_on(exc) or time.monotonic() + BACKOFF >= end:
                    raise SatelliteError(f"Satellite proxy {self.base}: {endpoint}: {cause(exc)}") from None
                self.retried = True
                time.sleep(BACKOFF * (attempt + 1))
        raise AssertionError("unreachable")

    def get(self, url: str, params: Dict[str, str], timeout: float) -> requests.Response:
        """One GET; a redirect is followed only within the same scheme, host and port."""
        reply = self.http.get(url, params=params, timeout=timeout, verify=self.verify, allow_redirects=False)
        for _ in range(MAX_REDIRECTS):
            if not reply.is_redirect:
                break
            target = urllib.parse.urljoin(reply.url, reply.headers.get("Location", ""))
            if not same_origin(reply.url, target):
                break
            reply = self.http.get(target, timeout=timeout, verify=self.verify, allow_redirects=False)
        return reply

    def getlink(self) -> str:
        """A new alias in state pending; the reply must be exactly one alias."""
        body = self.call("getlink", {}, never_sent)
        alias = body.strip().splitlines()[-1].strip() if body.strip() else ""
        if not body.startswith("Your token is") or not proxynames.ALIAS.match(alias):
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


def same_origin(first: str, second: str) -> bool:
    a, b = urllib.parse.urlsplit(first), urllib.parse.urlsplit(second)
    return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port)


def never_sent(exc: Exception) -> bool:
    return isinstance(exc, requests.ConnectTimeout) or (
        isinstance(exc, requests.ConnectionError) and "NewConnectionError" in repr(exc)
    )


def any_connection_error(exc: Exception) -> bool:
    return isinstance(exc, (requests.ConnectionError, requests.Timeout))


def cause(exc: Any) -> str:
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
