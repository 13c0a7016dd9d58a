"""A local fake Satellite management API for the fast tier: real HTTPS on 127.0.0.1.

The protocol (aliases, `Oops!` texts, linktoken once, destroy counts) is the harness
stand-in's own state machine (tests/harness/satellite_standin.Satellite), so the two
never disagree; this adds a server that needs no Apache and a peer that misbehaves
on demand, per endpoint, always or for the next N calls:

  oops, http500, garbage    an `Oops!` body, an HTTP 500, an HTML page
  refuse                    read the request, close the connection, answer nothing
  stall                     read the request, never answer (until the server stops)
  drip:SECONDS              answer one byte every SECONDS, for ever
  slow:SECONDS              answer as usual, after SECONDS
  redirect:URL              302 to URL (another scheme or host, or this server)

Every request, faulted or not, is appended to `log` (endpoint and parameters, in
order) and, if given, to a shared call log file in sessionkit.fake_slurm's format,
so a test reads Satellite and Slurm calls as one transcript.
"""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Dict, List, Optional, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "harness"))
from satellite_standin import ENDPOINTS, Oops, Satellite  # noqa: E402

WORDS = ["wages", "astonish", "recapture", "otter", "lucky", "brave", "quartz", "maple", "sonic", "ember"]


def make_cert(folder: Path) -> Tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost (cert, key), made with openssl."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


class FakeSatellite:
    """One server thread on an ephemeral port; `stop()` ends it and every stalled answer."""

    def __init__(self, root: Path, tls: Optional[Tuple[Path, Path]] = None, call_log: Optional[Path] = None) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.sat = Satellite(str(root), "proxy.example.org", WORDS)
        self.call_log = call_log
        self.log: List[Tuple[str, Dict[str, str]]] = []
        self.faults: Dict[str, List[Tuple[str, Optional[int]]]] = {}
        self.stopped = threading.Event()
        self.lock = threading.Lock()
        handler = type("Handler", (Handler,), {"fake": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(tls[0]), str(tls[1]))
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def fault(self, endpoint: str, behaviour: Optional[str], times: Optional[int] = None) -> None:
        """BEHAVIOUR for ENDPOINT's next TIMES calls (None: every call; behaviour None: clear)."""
        assert endpoint in ENDPOINTS, endpoint
        with self.lock:
            if behaviour is None:
                self.faults.pop(endpoint, None)
            else:
                self.faults.setdefault(endpoint, []).append((behaviour, times))

    def take_fault(self, endpoint: str) -> str:
        with self.lock:
            queue = self.faults.get(endpoint, [])
            if not queue:
                return ""
            behaviour, times = queue[0]
            if times is not None:
                queue[0] = (behaviour, times - 1)
                if times - 1 <= 0:
                    queue.pop(0)
            return behaviour

    def note(self, endpoint: str, params: Dict[str, str]) -> None:
        with self.lock:
            self.log.append((endpoint, params))
            if self.call_log is not None:
                fields = ["satellite", endpoint] + [f"{k}={v}" for k, v in params.items()]
                with open(self.call_log, "a") as handle:
                    handle.write("".join(f"{f}\0" for f in fields) + "\n")

    def endpoints(self) -> List[str]:
        with self.lock:
            return [endpoint for endpoint, _ in self.log]

    def aliases(self) -> List[str]:
        """The aliases the proxy holds now."""
        return [record["alias"] for record in self.sat.state()]

    def destroyed(self, alias: str) -> int:
        """How many destroytoken calls for ALIAS succeeded."""
        return self.sat.destroys.get(alias, {}).get("succeeded", 0)

    def wait_for(self, endpoint: str, timeout: float = 30) -> None:
        """Block until ENDPOINT has been called (a test's sync point, not a timing check)."""
        end = time.monotonic() + timeout
        while endpoint not in self.endpoints():
            assert time.monotonic() < end, f"{endpoint} was never called: {self.endpoints()}"
            time.sleep(0.02)

    def stop(self) -> None:
        self.stopped.set()
        self.server.shutdown()
        self.server.server_close()


class Handler(BaseHTTPRequestHandler):
    fake: FakeSatellite
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        endpoint = os.path.basename(url.path)[: -len(".cgi")] if url.path.endswith(".cgi") else url.path
        params: Dict[str, str] = {}
        for key, value in urllib.parse.parse_qsl(url.query, keep_blank_values=True):
            params.setdefault(key, value)
        self.fake.note(endpoint, params)
        behaviour = self.fake.take_fault(endpoint) if endpoint in ENDPOINTS else ""
        if behaviour == "refuse":
            self.close_connection = True
            return
        if behaviour == "stall":
            self.fake.stopped.wait()
            return
        if behaviour.startswith("drip:"):
            return self.drip(float(behaviour[5:]))
        if behaviour.startswith("slow:") and self.fake.stopped.wait(float(behaviour[5:])):
            return
        if behaviour.startswith("redirect:"):
            return self.reply(302, "moved\n", location=behaviour[len("redirect:"):])
        if behaviour == "oops":
            return self.reply(200, "Oops! Injected fault (fake satellite)\n")
        if behaviour == "http500":
            return self.reply(500, "Internal Server Error\n")
        if behaviour == "garbage":
            return self.reply(200, "<html><body>not the protocol</body></html>\n")
        if endpoint not in ENDPOINTS:
            return self.reply(200, "Please see documentation on how to use this service.\n")
        try:
            body = self.fake.sat.handle(endpoint, "GET", params, self.client_address[0])
        except Oops as exc:
            body = f"Oops! {exc}\n"
        self.reply(200, body)

    def reply(self, status: int, body: str, location: str = "") -> None:
        data = body.encode()
        self.send_response(status)
        if location:
            self.send_header("Location", location)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def drip(self, seconds: float) -> None:
        """A valid-looking answer that never ends: one byte per SECONDS, headers first."""
        data = b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\nYour token is \n" + b"a" * 1000000
        for index in range(len(data)):
            if self.fake.stopped.wait(seconds):
                return
            try:
                self.wfile.write(data[index:index + 1])
                self.wfile.flush()
            except OSError:
                return
