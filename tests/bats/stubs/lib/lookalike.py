#!/usr/bin/env python3
"""lookalike.py ADDRESS PORT LOG [PIDFILE [UID]]: a neighbour's server on ADDRESS:PORT that
answers anyone as Jupyter would (302 to /lab on /, status JSON on /api/...), logging each
request's path and Authorization header to LOG (created once it listens). Its pid goes to
PIDFILE (if not ""). With UID it waits, as a watcher would, until a new process of that
user's with `--no-browser` in its command line starts (a Jupyter), then takes the port
first (a squatter racing Jupyter's bind). Used by the bats stand-in Jupyter
(STUB_JUPYTER_FAIL=squat-once) and by the cluster tests' neighbour (tests/py/cluster.py).
"""

import http.server
import json
import os
import sys
import time


def jupyters(uid):
    """Pids of UID's processes with --no-browser in their command line."""
    found = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.stat(f"/proc/{pid}").st_uid == uid and b"--no-browser" in open(f"/proc/{pid}/cmdline", "rb").read():
                found.add(pid)
        except OSError:
            pass
    return found


class Lookalike(http.server.BaseHTTPRequestHandler):
    log = ""

    def do_GET(self):
        with open(self.log, "a") as out:
            out.write(json.dumps({"path": self.path, "authorization": self.headers.get("Authorization")}) + "\n")
        body = b'{"started": "x", "last_activity": "x", "kernels": 0}' if self.path.startswith("/api/") else b""
        self.send_response(200 if body else 302)
        self.send_header("Location", "/lab")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main(address, port, log, pidfile="", uid=""):
    if uid:
        before = jupyters(int(uid))
        while not jupyters(int(uid)) - before:
            time.sleep(0.01)
    Lookalike.log = log
    server = http.server.HTTPServer((address, int(port)), Lookalike)
    open(log, "a").close()
    if pidfile:
        with open(pidfile, "w") as out:
            out.write(str(os.getpid()))
    server.serve_forever()


if __name__ == "__main__":
    main(*sys.argv[1:])
