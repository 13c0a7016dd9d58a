"""Test-side helpers for the Satellite stand-in (tests/harness/satellite-up).

Standard library only, Python 3.8+. Settings come from the environment
(SATELLITE_DOMAIN, SATELLITE_CA, SATELLITE_CONTROL) or else from
$GALYLEO_HARNESS_ROOT/env.sh (default /srv/galyleo-test/env.sh).

Control API (loopback JSON):   state(), calls(), reset(), configure(**kw),
                               config(), destroys(), destroy_count(alias), routes()
HTTPS to the proxy:             https_get(url), https_request(method, url),
                               urlopen(url), resolve_satellite() (context manager
                               that patches socket.getaddrinfo for other code),
                               ws_connect(url) (a minimal WebSocket client).

Every `*.<domain>` host (and <domain> itself) is dialled at the proxy's
public address (PROXY_PUBLIC_ADDR: the laptop's view of the test cluster;
SATELLITE_DIAL overrides it, e.g. 127.0.0.1 inside the proxy itself) and
the certificate is verified against SATELLITE_CA, never the system store.
"""

import base64
import contextlib
import hashlib
import http.client
import json
import os
import shlex
import socket
import ssl
import struct
import urllib.parse
import urllib.request

__all__ = [
    "settings", "state", "calls", "reset", "configure", "config", "destroys",
    "destroy_count", "routes", "alias_record", "https_get", "https_request",
    "urlopen", "resolve_satellite", "ws_connect", "Response", "ssl_context",
]

_KEYS = ("SATELLITE_DOMAIN", "SATELLITE_CA", "SATELLITE_CONTROL")


def _read_env_sh():
    root = os.environ.get("GALYLEO_HARNESS_ROOT", "/srv/galyleo-test")
    values = {}
    try:
        with open(os.path.join(root, "env.sh")) as fh:
            for line in fh:
                line = line.strip()
                if not line.startswith("export ") or "=" not in line:
                    continue
                key, _, raw = line[len("export "):].partition("=")
                try:
                    parts = shlex.split(raw)
                except ValueError:
                    continue
                values[key.strip()] = parts[0] if parts else ""
    except OSError:
        pass
    return values


def dial_address():
    """Where *.<domain> is dialled: SATELLITE_DIAL, else PROXY_PUBLIC_ADDR, else loopback."""
    for key in ("SATELLITE_DIAL", "PROXY_PUBLIC_ADDR"):
        if os.environ.get(key):
            return os.environ[key]
    return _read_env_sh().get("PROXY_PUBLIC_ADDR") or "127.0.0.1"


def settings():
    """dict with SATELLITE_DOMAIN, SATELLITE_CA, SATELLITE_CONTROL."""
    file_values = None
    out = {}
    for key in _KEYS:
        if os.environ.get(key):
            out[key] = os.environ[key]
        else:
            if file_values is None:
                file_values = _read_env_sh()
            out[key] = file_values.get(key)
    missing = [k for k, v in out.items() if not v]
    if missing:
        raise RuntimeError("Satellite stand-in settings missing (%s): run tests/harness/satellite-up"
                           % ", ".join(missing))
    return out


# ---- control API --------------------------------------------------------------
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _control(method, path, payload=None, timeout=10):
    url = settings()["SATELLITE_CONTROL"].rstrip("/") + path
    data = None if payload is None else json.dumps(payload).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with _NO_PROXY.open(req, timeout=timeout) as resp:
        return json.loads(resp.read().decode())


def state():
    """List of alias records: alias, state (pending|mapped|proxied), jobid, host,
    port, created, changed, routed, requested_from (times: epoch seconds)."""
    return _control("GET", "/state")


def alias_record(alias):
    """The record of one alias, or None."""
    for rec in state():
        if rec["alias"] == alias:
            return rec
    return None


def calls():
    """Every management call: endpoint, params, client_ip, status, reply, fault,
    time, duration (oldest first)."""
    return _control("GET", "/calls")


def reset():
    """Forget all aliases, routes, calls, destroy counts; config back to defaults."""
    return _control("POST", "/reset", {})


def configure(**kw):
    """route_delay=, unroute_delay=, subnet=, ttl=, tokenjobstate_staleness=,
    faults={"getlink": "oops"|"http500"|"garbage"|"slow:<s>"|"refuse"|None}.
    Returns the resulting configuration."""
    return _control("POST", "/config", kw)


def config():
    return _control("GET", "/config")


def destroys():
    """{alias: {"calls": n, "succeeded": m}} for every destroytoken call."""
    return _control("GET", "/destroys")


def destroy_count(alias, succeeded=False):
    """How many destroytoken calls named this alias (or how many succeeded)."""
    rec = destroys().get(alias, {"calls": 0, "succeeded": 0})
    return rec["succeeded" if succeeded else "calls"]


def routes():
    """{alias: "ip:port"} of the routes Apache currently serves."""
    return _control("GET", "/routes")


# ---- HTTPS on loopback ------------------------------------------------------------
def ssl_context():
    return ssl.create_default_context(cafile=settings()["SATELLITE_CA"])


def _is_satellite_host(host):
    domain = settings()["SATELLITE_DOMAIN"].lower()
    host = (host or "").lower().rstrip(".")
    return host == domain or host.endswith("." + domain)


class SatelliteHTTPSConnection(http.client.HTTPSConnection):
    """HTTPSConnection that dials dial_address() for *.<domain> (SNI and certificate
    checks still use the real host name). `source_address` picks the client IP
    (any 127.x.y.z works on Linux loopback) for tests of the IP checks."""

    def __init__(self, host, port=None, context=None, **kw):
        super().__init__(host, port, context=context or ssl_context(), **kw)
        self._sat_context = context or ssl_context()

    def connect(self):
        target = dial_address() if _is_satellite_host(self.host) else self.host
        sock = socket.create_connection((target, self.port), self.timeout, self.source_address)
        self.sock = self._sat_context.wrap_socket(sock, server_hostname=self.host)


class Response:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers  # http.client.HTTPMessage (case-insensitive)
        self.body = body

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.text)

    def __repr__(self):
        return "<Response %s %r>" % (self.status, self.text[:80])


def https_request(method, url, headers=None, body=None, timeout=10, source_address=None):
    """One request on a fresh connection. Returns a Response (no redirects
    followed; HTTP errors are returned, not raised)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "https":
        raise ValueError("https only: %s" % url)
    conn = SatelliteHTTPSConnection(parts.hostname, parts.port or 443, timeout=timeout,
                                    source_address=source_address)
    try:
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        conn.request(method, path, body=body, headers=dict(headers or {}))
        resp = conn.getresponse()
        return Response(resp.status, resp.reason, resp.headers, resp.read())
    finally:
        conn.close()


def https_get(url, headers=None, timeout=10, source_address=None):
    return https_request("GET", url, headers=headers, timeout=timeout,
                         source_address=source_address)


class _SatelliteHTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req):
        return self.do_open(SatelliteHTTPSConnection, req)


def urlopen(url_or_request, data=None, timeout=10):
    """urllib.request.urlopen that follows redirects, with the loopback resolver
    and the test CA (raises HTTPError for >= 400 like urllib does)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _SatelliteHTTPSHandler())
    return opener.open(url_or_request, data=data, timeout=timeout)


@contextlib.contextmanager
def resolve_satellite():
    """Within the block, socket.getaddrinfo resolves *.<domain> to dial_address()
    for all code in this process (e.g. a client library under test). TLS trust
    is not changed: pass SATELLITE_CA to that code yourself."""
    original = socket.getaddrinfo

    def patched(host, *args, **kw):
        if isinstance(host, bytes):
            name = host.decode()
        else:
            name = host
        if name and _is_satellite_host(name):
            host = dial_address()
        return original(host, *args, **kw)

    socket.getaddrinfo = patched
    try:
        yield
    finally:
        socket.getaddrinfo = original


# ---- a minimal WebSocket client (RFC 6455), enough to test tunnelling ---------
class WebSocket:
    def __init__(self, sock, response_headers, status):
        self.sock = sock
        self.status = status
        self.headers = response_headers
        self._buf = b""

    def _recv_exact(self, n):
        while len(self._buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("websocket closed by peer")
            self._buf += chunk
        data, self._buf = self._buf[:n], self._buf[n:]
        return data

    def send(self, payload, opcode=None):
        if isinstance(payload, str):
            payload, op = payload.encode(), 0x1
        else:
            op = 0x2
        op = opcode if opcode is not None else op
        head = bytes([0x80 | op])
        n = len(payload)
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", n)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + masked)

    def recv(self):
        """Next data message (str for text, bytes for binary); answers pings."""
        while True:
            b0, b1 = self._recv_exact(2)
            op, n = b0 & 0x0F, b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._recv_exact(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._recv_exact(8))[0]
            mask = self._recv_exact(4) if b1 & 0x80 else None
            data = self._recv_exact(n)
            if mask:
                data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
            if op == 0x9:
                self.send(data, opcode=0xA)
                continue
            if op == 0x8:
                raise ConnectionError("websocket closed by peer")
            if op == 0x1:
                return data.decode()
            if op in (0x2, 0x0):
                return data

    def close(self):
        try:
            self.send(b"", opcode=0x8)
        except OSError:
            pass
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def ws_connect(url, headers=None, timeout=10, source_address=None):
    """Open a WebSocket to wss://<alias>.<domain>/... through the proxy.
    Raises ConnectionError unless the server answers 101."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("wss", "https"):
        raise ValueError("wss only: %s" % url)
    host, port = parts.hostname, parts.port or 443
    target = dial_address() if _is_satellite_host(host) else host
    raw = socket.create_connection((target, port), timeout, source_address)
    sock = ssl_context().wrap_socket(raw, server_hostname=host)
    key = base64.b64encode(os.urandom(16)).decode()
    path = (parts.path or "/") + ("?" + parts.query if parts.query else "")
    lines = ["GET %s HTTP/1.1" % path, "Host: %s" % (host if port == 443 else "%s:%d" % (host, port)),
             "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: " + key,
             "Sec-WebSocket-Version: 13"]
    lines += ["%s: %s" % kv for kv in (headers or {}).items()]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            sock.close()
            raise ConnectionError("connection closed during the websocket handshake")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split()[1])
    resp_headers = {}
    for line in header_lines:
        k, _, v = line.partition(":")
        resp_headers[k.strip().lower()] = v.strip()
    expect = base64.b64encode(hashlib.sha1(
        (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
    if status != 101 or resp_headers.get("sec-websocket-accept") != expect:
        sock.close()
        raise ConnectionError("websocket handshake failed: %s %r" % (status_line, resp_headers))
    ws = WebSocket(sock, resp_headers, status)
    ws._buf = rest
    return ws
