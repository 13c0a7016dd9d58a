"""Tests of the Satellite stand-in itself, through the real Apache on :443.

They run ON the proxy host, where Apache, the stand-in and the loopback
backends these tests start share one network (clients dial 127.0.0.1, and the
IP gate is opened to loopback for them):

    tests/harness/on proxy env SATELLITE_DIAL=127.0.0.1 .venv/bin/python -m pytest tests/harness/test_satellite_standin.py

Needs `tests/harness/up` (as root); fails, never skips, when the stand-in is
not there. Every test starts from POST /reset, so do not run these while
other tests use the stand-in.
"""

import base64
import hashlib
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import satellite_client as sc  # noqa: E402

ALIAS_RE = re.compile(r"^Your token is \n([a-z0-9]+-[a-z0-9]+-[a-z0-9]+)\n$")
OTHER_IP = "127.0.0.2"  # a second loopback "host"


# ---- fixtures and helpers ------------------------------------------------------
@pytest.fixture(scope="session")
def env():
    try:
        s = sc.settings()
        sc.reset()
    except Exception as exc:  # noqa: BLE001
        pytest.fail("Satellite stand-in not reachable (%s): run tests/harness/satellite-up as root" % exc)
    return s


@pytest.fixture(autouse=True)
def fresh(env):
    sc.reset()
    sc.configure(subnet="127.0.0.0/8")  # the clients here are the proxy's own loopback
    yield
    sc.reset()


def manage(endpoint, source_address=None, method="GET", headers=None, **params):
    query = "&".join("%s=%s" % kv for kv in params.items())
    url = "https://manage.%s/%s.cgi%s" % (sc.settings()["SATELLITE_DOMAIN"], endpoint,
                                         "?" + query if query else "")
    return sc.https_request(method, url, headers=headers,
                            source_address=(source_address, 0) if source_address else None)


def ok(endpoint, **kw):
    resp = manage(endpoint, **kw)
    assert resp.status == 200, resp
    return resp.text


def getlink(**kw):
    body = ok("getlink", **kw)
    m = ALIAS_RE.match(body)
    assert m, body
    return m.group(1)


def alias_url(alias, path="/"):
    return "https://%s.%s%s" % (alias, sc.settings()["SATELLITE_DOMAIN"], path)


def wait_until(pred, timeout=10.0, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("timed out")


class Backend:
    """A tiny HTTP + WebSocket echo server on 127.0.0.1 (raw sockets, threads).

    GET /redirect-abs -> 302 to http://<its own ip:port>/landed
    GET /redirect-rel -> 302 to /landed
    Upgrade: websocket -> echo every message, prefixed with "echo:"
    anything else -> 200 JSON {method, path, headers, body}
    """

    def __init__(self, host="127.0.0.1"):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(50)
        self.host, self.port = self.sock.getsockname()
        self.requests = []
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            conn.settimeout(30)
            buf = b""
            while b"\r\n\r\n" not in buf:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                buf += chunk
            head, _, body = buf.partition(b"\r\n\r\n")
            request_line, *lines = head.decode("latin-1").split("\r\n")
            method, path, _ = request_line.split(" ", 2)
            headers = {}
            for line in lines:
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
            n = int(headers.get("content-length", 0))
            while len(body) < n:
                body += conn.recv(65536)
            self.requests.append({"method": method, "path": path, "headers": headers,
                                  "body": body.decode("latin-1")})
            if headers.get("upgrade", "").lower() == "websocket":
                return self._websocket(conn, headers, body)
            if path == "/redirect-abs":
                return self._send(conn, 302, b"", {"Location": "http://%s:%d/landed" % (self.host, self.port)})
            if path == "/redirect-rel":
                return self._send(conn, 302, b"", {"Location": "/landed"})
            payload = json.dumps({"method": method, "path": path, "headers": headers,
                                  "body": body.decode("latin-1")}).encode()
            self._send(conn, 200, payload, {"Content-Type": "application/json"})
        except OSError:
            pass
        finally:
            conn.close()

    @staticmethod
    def _send(conn, status, body, headers):
        lines = ["HTTP/1.1 %d X" % status, "Content-Length: %d" % len(body), "Connection: close"]
        lines += ["%s: %s" % kv for kv in headers.items()]
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)

    def _websocket(self, conn, headers, rest):
        accept = base64.b64encode(hashlib.sha1(
            (headers["sec-websocket-key"] + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
        conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        buf = rest

        def need(n):
            nonlocal buf
            while len(buf) < n:
                chunk = conn.recv(65536)
                if not chunk:
                    raise OSError("closed")
                buf += chunk
            out, buf = buf[:n], buf[n:]
            return out

        while True:
            b0, b1 = need(2)
            op, n = b0 & 0x0F, b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", need(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", need(8))[0]
            mask = need(4)
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(need(n)))
            if op == 0x8:
                conn.sendall(b"\x88\x00")
                return
            reply = b"echo:" + data
            if len(reply) < 126:
                frame = bytes([0x80 | op, len(reply)])
            else:
                frame = bytes([0x80 | op, 126]) + struct.pack("!H", len(reply))
            conn.sendall(frame + reply)

    def close(self):
        self.closed = True
        self.sock.close()


@pytest.fixture
def backend():
    b = Backend()
    yield b
    b.close()


def routed_alias(backend, **kw):
    alias = getlink()
    assert ok("redeemtoken", token=alias, port=backend.port, **kw) == "Success!\n"
    return alias


# ---- getlink and the alias ------------------------------------------------------------
def test_getlink_creates_pending_alias_of_three_words(env):
    alias = getlink()
    words = alias.split("-")
    assert len(words) == 3 and all(re.fullmatch("[a-z]+", w) for w in words)
    rec = sc.alias_record(alias)
    assert rec["state"] == "pending" and rec["jobid"] is None and rec["host"] is None
    assert rec["requested_from"] == "127.0.0.1"
    assert len({getlink() for _ in range(20)}) == 20
    call = sc.calls()[0]
    assert call["endpoint"] == "getlink" and call["client_ip"] == "127.0.0.1"
    assert call["reply"] == "Your token is \n%s\n" % alias and call["status"] == 200


# ---- linktoken ----------------------------------------------------------------------------
def test_linktoken(env):
    alias = getlink()
    assert ok("linktoken", token=alias, jobid="1234") == "Success! Token linked to jobid.\n"
    assert sc.alias_record(alias)["jobid"] == "1234"
    assert ok("linktoken", token=alias, jobid="99") == \
        "Oops! Nonce already linked to a jobid, you can do this only once!\n"
    assert sc.alias_record(alias)["jobid"] == "1234"
    assert ok("linktoken", jobid="1") == "Oops! Missing 'token' parameter\n"
    assert ok("linktoken", token=alias) == "Oops! Missing 'jobid' parameter\n"
    assert ok("linktoken", token="no-such-alias", jobid="1") == \
        "Oops! Unknown nonce or nonce already destroyed\n"


def test_linktoken_jobid_charset_and_length(env):
    a, b, c = getlink(), getlink(), getlink()
    # Like production: characters outside [-a-zA-Z0-9._] and spaces are dropped...
    assert ok("linktoken", token=a, jobid="12%3B%20rm%20-rf_x.1") == "Success! Token linked to jobid.\n"
    assert sc.alias_record(a)["jobid"] == "12rm-rf_x.1"
    # ...a job id left empty, or of 48 characters or more, is refused.
    assert ok("linktoken", token=b, jobid="%3B%3B") == "Oops! Missing 'jobid' parameter\n"
    assert ok("linktoken", token=b, jobid="9" * 48) == "Oops! Missing 'jobid' parameter\n"
    assert ok("linktoken", token=c, jobid="9" * 47) == "Success! Token linked to jobid.\n"


# ---- redeemtoken ------------------------------------------------------------------------
def test_redeemtoken_errors(env):
    alias = getlink()
    assert ok("redeemtoken", port=8888) == "Oops! Missing 'token' parameter\n"
    assert ok("redeemtoken", token=alias) == "Oops! Missing 'port' parameter, or try 'revssh=1' instead\n"
    bad_port = "Oops! 'port' parameter isn't an integer between 1024 and 65535\n"
    for port in ("80", "1023", "65536", "99999", "abc", "8888x", "-1024", "123456"):
        assert ok("redeemtoken", token=alias, port=port) == bad_port, port
    assert ok("redeemtoken", token="no-such-alias", port=8888) == "Oops! Unknown nonce or nonce already used\n"
    # Exact, case-sensitive look-up.
    assert ok("redeemtoken", token=alias.upper(), port=8888) == "Oops! Unknown nonce or nonce already used\n"
    assert sc.alias_record(alias)["state"] == "pending"
    assert ok("redeemtoken", method="POST", token=alias, port=8888) == "Oops! Only GET method is supported\n"


def test_redeem_records_caller_ip_and_port_and_only_once(env):
    alias = getlink()
    assert ok("redeemtoken", token=alias, port=1024, source_address=OTHER_IP) == "Success!\n"
    rec = sc.alias_record(alias)
    assert (rec["host"], rec["port"]) == (OTHER_IP, 1024)
    assert rec["state"] == "proxied"  # route_delay 0
    assert sc.routes() == {alias: "%s:1024" % OTHER_IP}
    assert ok("redeemtoken", token=alias, port=65535) == "Oops! Unknown nonce or nonce already used\n"
    assert sc.alias_record(alias)["port"] == 1024


# ---- destroytoken -------------------------------------------------------------------------
def test_destroytoken(env, backend):
    pending = getlink()
    assert ok("destroytoken") == "Oops! Missing 'token' parameter\n"
    # Before redeem, any host in the subnet may destroy.
    assert ok("destroytoken", token=pending, source_address=OTHER_IP) == "Success! Token destroyed.\n"
    assert ok("destroytoken", token=pending) == "Oops! Unknown nonce or nonce already destroyed\n"
    assert sc.destroy_count(pending) == 2 and sc.destroy_count(pending, succeeded=True) == 1

    alias = routed_alias(backend)
    assert ok("destroytoken", token=alias, source_address=OTHER_IP) == \
        "Oops! Nonce must be destroyed from host it was redeemed on\n"
    assert sc.alias_record(alias)["state"] == "proxied"
    assert ok("destroytoken", token=alias) == "Success! Token destroyed.\n"
    assert sc.alias_record(alias) is None and sc.routes() == {}
    assert sc.destroy_count(alias) == 2 and sc.destroy_count(alias, succeeded=True) == 1
    assert sc.destroy_count("never-seen-alias") == 0


# ---- tokenjobstate -----------------------------------------------------------------------
def test_tokenjobstate_basic_codes(env, backend):
    domain = sc.settings()["SATELLITE_DOMAIN"]
    assert ok("tokenjobstate") == "Oops! Missing 'token' parameter\n"
    assert ok("tokenjobstate", token="no-such-alias") == ""
    alias = getlink()
    assert ok("tokenjobstate", token=alias) == "PE"
    assert ok("tokenjobstate", token="%s.%s" % (alias, domain)) == "PE"
    assert ok("tokenjobstate", token=alias.upper()) == ""
    sc.configure(route_delay=60)
    ok("redeemtoken", token=alias, port=backend.port)
    assert ok("tokenjobstate", token=alias) == "M"
    sc.configure(route_delay=0)
    assert ok("tokenjobstate", token=alias) == "PR"
    sc.configure(tokenjobstate_staleness=True)
    assert re.fullmatch(r"[0-9]+ PR", ok("tokenjobstate", token=alias))
    # Not IP-gated.
    sc.configure(subnet="10.0.0.0/8")
    assert re.fullmatch(r"[0-9]+ PR", ok("tokenjobstate", token=alias))


def _slurm_works():
    if not shutil.which("squeue"):
        return False
    try:
        return subprocess.run(["squeue", "-h"], capture_output=True, timeout=5).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def test_tokenjobstate_with_linked_job_without_slurm_job(env):
    alias = getlink()
    ok("linktoken", token=alias, jobid="987654321")
    # A job Slurm does not know is gone (D); with no Slurm at all the state is
    # unknown and the basic code (PE) is returned.
    assert ok("tokenjobstate", token=alias) == ("D" if _slurm_works() else "PE")


def test_tokenjobstate_with_real_slurm_job(env, backend):
    if not _slurm_works():
        pytest.skip("Slurm is not up (tests/harness/slurm-up): Q/R/D codes against real jobs not checked")
    out = subprocess.run(["sbatch", "--parsable", "--hold", "-o", "/dev/null", "--wrap", "sleep 300"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    jobid = out.stdout.strip().split(";")[0]
    try:
        alias = getlink()
        ok("linktoken", token=alias, jobid=jobid)
        assert wait_until(lambda: ok("tokenjobstate", token=alias) == "Q", 10)
        subprocess.run(["scontrol", "release", jobid], check=True, timeout=30)
        assert wait_until(lambda: ok("tokenjobstate", token=alias) == "R", 30)
        ok("redeemtoken", token=alias, port=backend.port)
        assert ok("tokenjobstate", token=alias) == "PR"
        subprocess.run(["scancel", jobid], check=True, timeout=30)
        assert wait_until(lambda: ok("tokenjobstate", token=alias) == "D", 30)
    finally:
        subprocess.run(["scancel", jobid], timeout=30)


# ---- the IP gate ----------------------------------------------------------------------------
def test_ip_gate(env, backend):
    alias = getlink()
    sc.configure(subnet="10.0.0.0/8")
    cluster = "Oops! Client (your) IP not in range 10.0.0.0/8, please try from within the cluster.\n"
    node = ("Oops! Client (your) IP not in range 10.0.0.0/8, "
            "please try from the compute node running your service.\n")
    assert ok("getlink") == cluster
    assert ok("linktoken", token=alias, jobid="1") == cluster
    assert ok("redeemtoken", token=alias, port=8888) == node
    assert ok("destroytoken", token=alias) == node
    # Headers a client sends cannot fake its address.
    spoof = {"X-Forwarded-For": "10.1.2.3", "X-Real-IP": "10.1.2.3", "X-Satellite-Client-Ip": "10.1.2.3"}
    assert ok("getlink", headers=spoof) == cluster
    assert [c["client_ip"] for c in sc.calls()][-1] == "127.0.0.1"
    # The mask is honoured exactly: /32 lets 127.0.0.1 in, keeps 127.0.0.2 out.
    sc.configure(subnet="127.0.0.1/32")
    assert ALIAS_RE.match(ok("getlink"))
    assert ok("getlink", source_address=OTHER_IP).startswith(
        "Oops! Client (your) IP not in range 127.0.0.1/32, ")
    assert ok("redeemtoken", token=alias, port=backend.port, source_address=OTHER_IP).startswith(
        "Oops! Client (your) IP not in range 127.0.0.1/32")
    assert sc.alias_record(alias)["state"] == "pending"
    sc.configure(subnet="127.0.0.0/8")
    assert ok("redeemtoken", token=alias, port=backend.port, source_address=OTHER_IP) == "Success!\n"


# ---- the proxy: waiting pages, routing, Host, WebSockets -------------------------------------
def test_waiting_pages_and_unknown_alias(env, backend):
    sc.configure(route_delay=60)
    alias = getlink()
    r = sc.https_get(alias_url(alias, "/lab?x=1"))
    assert r.status == 200 and "Phase 1 of 2" in r.text and 'http-equiv="refresh"' in r.text
    # DNS names are case-insensitive: so is the page.
    assert "Phase 1 of 2" in sc.https_get(alias_url(alias.upper())).text
    ok("redeemtoken", token=alias, port=backend.port)
    r = sc.https_get(alias_url(alias))
    assert r.status == 200 and "Phase 2 of 2" in r.text and 'http-equiv="refresh"' in r.text
    assert backend.requests == []
    r = sc.https_get(alias_url("no-such-alias"))
    assert r.status == 200 and r.text == "Please see documentation on how to use this service.\n"


def test_proxy_rewrites_host_and_keeps_path_query_and_body(env, backend):
    alias = routed_alias(backend)
    r = sc.https_get(alias_url(alias, "/a%20b%3Fc/d%2Be?x=1&y=%2F%20"), headers={"Cookie": "k=v"})
    assert r.status == 200, r
    seen = r.json()
    assert seen["path"] == "/a%20b%3Fc/d%2Be?x=1&y=%2F%20"
    assert seen["headers"]["host"] == "127.0.0.1:%d" % backend.port
    assert seen["headers"]["x-forwarded-host"] == "%s.%s" % (alias, sc.settings()["SATELLITE_DOMAIN"])
    assert seen["headers"]["cookie"] == "k=v"
    r = sc.https_request("POST", alias_url(alias, "/api/contents"), body=b'{"a": 1}',
                         headers={"Content-Type": "application/json"})
    assert r.json()["method"] == "POST" and r.json()["body"] == '{"a": 1}'
    # Upper-case host names reach the same route.
    assert sc.https_get(alias_url(alias.upper(), "/x")).json()["path"] == "/x"


def test_redirects_are_rewritten_like_proxypassreverse(env, backend):
    alias = routed_alias(backend)
    host = "%s.%s" % (alias, sc.settings()["SATELLITE_DOMAIN"])
    r = sc.https_get(alias_url(alias, "/redirect-abs"))
    assert r.status == 302 and r.headers["Location"] == "https://%s/landed" % host
    r = sc.https_get(alias_url(alias, "/redirect-rel"))
    assert r.status == 302 and r.headers["Location"] == "/landed"
    with sc.urlopen(alias_url(alias, "/redirect-abs")) as resp:
        assert json.loads(resp.read())["path"] == "/landed"


def test_websocket_tunnel_and_routing_changes_do_not_drop_connections(env, backend):
    a = routed_alias(backend)
    with sc.ws_connect(alias_url(a, "/api/kernels/k1/channels?token=t")) as ws:
        ws.send("hello")
        assert ws.recv() == "echo:hello"
        ws.send(b"\x00\x01" * 200)
        assert ws.recv() == b"echo:" + b"\x00\x01" * 200
        upgrade = [r for r in backend.requests if r["headers"].get("upgrade")][-1]
        assert upgrade["path"] == "/api/kernels/k1/channels?token=t"
        assert upgrade["headers"]["host"] == "127.0.0.1:%d" % backend.port
        # Other sessions come and go (routes file rewritten each time)...
        for _ in range(5):
            b = routed_alias(backend)
            assert sc.https_get(alias_url(b, "/other")).status == 200
            assert ok("destroytoken", token=b) == "Success! Token destroyed.\n"
        # ...and this tunnel is still up.
        ws.send("still there?")
        assert ws.recv() == "echo:still there?"
    # A WebSocket to an unrouted alias gets the waiting page, not a tunnel.
    pending = getlink()
    with pytest.raises(ConnectionError):
        sc.ws_connect(alias_url(pending, "/api/kernels/k1/channels"))


def test_route_delay(env, backend):
    sc.configure(route_delay=2)
    alias = getlink()
    ok("redeemtoken", token=alias, port=backend.port)
    assert sc.alias_record(alias)["state"] == "mapped"
    assert ok("tokenjobstate", token=alias) == "M"
    assert "Phase 2 of 2" in sc.https_get(alias_url(alias)).text
    assert sc.routes() == {}

    def routed():
        r = sc.https_get(alias_url(alias, "/ready"))
        return r.headers.get("Content-Type") == "application/json"
    assert not routed(), "routed before the delay"
    wait_until(routed, timeout=10, step=0.1)
    rec = sc.alias_record(alias)
    assert rec["state"] == "proxied" and rec["routed"] - rec["changed"] >= 1.9
    assert ok("tokenjobstate", token=alias) == "PR"


def test_route_removed_on_destroy_with_and_without_delay(env, backend):
    alias = routed_alias(backend)
    assert sc.https_get(alias_url(alias, "/x")).json()["path"] == "/x"
    ok("destroytoken", token=alias)
    r = sc.https_get(alias_url(alias, "/x"))
    assert r.text == "Please see documentation on how to use this service.\n"

    sc.configure(unroute_delay=1.5)
    alias = routed_alias(backend)
    ok("destroytoken", token=alias)
    assert sc.alias_record(alias) is None
    assert sc.https_get(alias_url(alias, "/x")).json()["path"] == "/x"  # route lingers, as in production
    wait_until(lambda: "documentation" in sc.https_get(alias_url(alias, "/x")).text, timeout=5)


def test_expiry(env, backend):
    sc.configure(ttl=1)
    pending = getlink()
    routed = routed_alias(backend)
    assert sc.routes() == {routed: "127.0.0.1:%d" % backend.port}
    time.sleep(1.3)
    assert sc.state() == []
    assert sc.routes() == {}
    assert ok("tokenjobstate", token=pending) == ""
    assert "documentation" in sc.https_get(alias_url(routed)).text


# ---- faults ---------------------------------------------------------------------------------
def test_fault_oops_http500_garbage_have_no_effect(env):
    sc.configure(faults={"getlink": "oops"})
    assert ok("getlink") == "Oops! Injected fault (satellite stand-in)\n"
    sc.configure(faults={"getlink": "http500"})
    r = manage("getlink")
    assert r.status == 500
    sc.configure(faults={"getlink": "garbage"})
    body = ok("getlink")
    assert not body.startswith("Oops!") and not ALIAS_RE.match(body)
    assert sc.state() == []
    sc.configure(faults={"getlink": None})
    alias = getlink()
    sc.configure(faults={"destroytoken": "oops"})
    assert ok("destroytoken", token=alias).startswith("Oops!")
    assert sc.alias_record(alias)["state"] == "pending"
    assert sc.destroy_count(alias) == 1 and sc.destroy_count(alias, succeeded=True) == 0
    assert [c["fault"] for c in sc.calls()] == ["oops", "http500", "garbage", None, "oops"]


def test_fault_slow_then_normal(env):
    sc.configure(faults={"redeemtoken": "slow:1.0"})
    alias = getlink()
    assert ok("redeemtoken", token=alias, port=9999) == "Success!\n"  # slow, then the normal answer
    assert [c["fault"] for c in sc.calls() if c["endpoint"].startswith("redeemtoken")] == ["slow:1.0"]
    # A client that gives up waiting still leaves the call done on the server.
    sc.configure(faults={"getlink": "slow:1"})
    with pytest.raises((socket.timeout, TimeoutError)):
        sc.https_get("https://manage.%s/getlink.cgi" % sc.settings()["SATELLITE_DOMAIN"], timeout=0.3)
    wait_until(lambda: len(sc.state()) == 2, timeout=5)


def test_fault_refuse(env):
    sc.configure(faults={"linktoken": "refuse", "tokenjobstate": "refuse"})
    alias = getlink()
    r = manage("linktoken", token=alias, jobid="1")
    # The stand-in closes the connection without a reply; Apache answers 502.
    assert r.status == 502
    assert manage("tokenjobstate", token=alias).status == 502
    assert sc.alias_record(alias)["jobid"] is None
    assert sc.calls()[-1]["fault"] == "refuse"
    sc.configure(faults={"linktoken": None, "tokenjobstate": None})
    assert ok("linktoken", token=alias, jobid="1") == "Success! Token linked to jobid.\n"


# ---- control API ------------------------------------------------------------------------------
def test_control_api(env):
    getlink()
    assert len(sc.state()) == 1 and len(sc.calls()) == 1
    cfg = sc.configure(route_delay=3, faults={"getlink.cgi": "slow:0.1"})
    assert cfg["route_delay"] == 3 and cfg["faults"] == {"getlink": "slow:0.1"}
    assert sc.config() == cfg
    for bad in ({"faults": {"getlink": "explode"}}, {"faults": {"nope": "oops"}},
                {"subnet": "not-a-net"}, {"route_delay": -1}, {"colour": "blue"}):
        with pytest.raises(Exception) as info:
            sc.configure(**bad)
        assert getattr(info.value, "code", None) == 400, bad
    sc.reset()
    assert sc.state() == [] and sc.calls() == [] and sc.destroys() == {}
    assert sc.config()["route_delay"] == 0 and sc.config()["faults"] == {}


def test_direct_backend_access_is_refused(env):
    # The management backend trusts only Apache's header; without it, nothing.
    import urllib.error
    import urllib.request
    port = 17481
    try:
        with open(os.path.join(os.environ.get("GALYLEO_HARNESS_ROOT", "/srv/galyleo-test"),
                               "satellite", "apache", "httpd.conf")) as fh:
            port = int(re.search(r'ProxyPass "/" "http://127\.0\.0\.1:([0-9]+)/"', fh.read()).group(1))
    except OSError:
        pass
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with pytest.raises(urllib.error.HTTPError) as info:
        opener.open("http://127.0.0.1:%d/getlink.cgi" % port, timeout=5)
    assert info.value.code == 403
    assert sc.state() == []
