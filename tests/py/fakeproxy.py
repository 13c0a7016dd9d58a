"""A local HTTPS server standing in for the Satellite proxy's public side, for `--wait`'s
readiness check: each connection gets the next scripted answer (the last one repeats).
It serves *.x.test with the test certificate in data/tls, on 127.0.0.1 (a config's
proxy_address), and logs each request's Host header and path.

Answers: "waiting" (the proxy's 200 waiting page), "502"/"500"/"404" (an error page),
"302"/"301"/"303"/"307" (Jupyter's redirect, routed), "late" (the redirect after a
second), "silent" (TLS and the request are taken, nothing ever comes back), "close"
(the connection is dropped before TLS).
"""

from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path
from typing import List, Sequence, Tuple

TLS = Path(__file__).resolve().parent / "data" / "tls"
CA_BUNDLE = str(TLS / "proxy.pem")
REASONS = {"200": "OK", "301": "Moved Permanently", "302": "Found", "303": "See Other", "307": "Temporary Redirect",
           "404": "Not Found", "500": "Internal Server Error", "502": "Proxy Error"}


class FakeProxy:
    def __init__(self, answers: Sequence[str]) -> None:
        self.answers = list(answers)
        self.requests: List[Tuple[str, str]] = []
        self.stop = threading.Event()
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(str(TLS / "proxy.pem"), str(TLS / "proxy.key"))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self.serve, daemon=True).start()

    def url(self, alias: str = "aa-bb-cc", domain: str = "x.test") -> str:
        return f"https://{alias}.{domain}:{self.port}/?token=" + "a" * 64

    def serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
            threading.Thread(target=self.answer, args=(conn, answer), daemon=True).start()

    def answer(self, conn: socket.socket, answer: str) -> None:
        with conn:
            if answer == "close":
                return
            try:
                with self.context.wrap_socket(conn, server_side=True) as tls:
                    head = tls.recv(65536).decode("latin-1")
                    lines = head.split("\r\n")
                    host = next((line.split(":", 1)[1].strip() for line in lines if line.lower().startswith("host:")),
                                "")
                    self.requests.append((host, lines[0].split(" ")[1] if " " in lines[0] else ""))
                    if answer == "silent":
                        self.stop.wait()
                        return
                    if answer == "late":
                        self.stop.wait(1.0)
                        answer = "302"
                    code = "200" if answer == "waiting" else answer
                    body = b"<html>waiting for the session to start</html>" if answer == "waiting" else b"page"
                    location = "Location: /lab\r\n" if code.startswith("3") else ""
                    tls.sendall(f"HTTP/1.1 {code} {REASONS[code]}\r\n{location}Content-Length: {len(body)}\r\n"
                                f"Connection: close\r\n\r\n".encode() + body)
            except (OSError, ssl.SSLError):
                return  # the client gave up or refused our certificate

    def close(self) -> None:
        """Stop listening (a later connect is refused) and end every held connection."""
        self.stop.set()
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() in serve
        except OSError:
            pass
        self.listener.close()
