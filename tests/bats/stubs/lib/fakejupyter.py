"""A tiny stand-in for `jupyter lab|notebook` and `voila`: an HTTP server on the
address and port from its argv, nothing else.

Records (in $STUB_LOG/calls.jsonl, cmd "jupyter" or "voila"):
  call        argv, cwd, env (LOADEDMODULES, CONDA_PREFIX, JUPYTER_CONFIG_PATH, ...),
              token_set, token_len, token_sha256 -- never the token itself -- and,
              for voila, what a voila.py on JUPYTER_CONFIG_PATH sets (config: the
              token's SHA-256 and tornado_settings)
  failed      reason (and port), when it does not start
  listening   ip, port actually bound
  http        path of each request it answered
  terminated  signal, when stopped by SIGTERM/SIGINT
  exited      status, when it ends on its own

Knobs (environment):
  STUB_JUPYTER_FAIL=start      exit 1 at once, like a broken install
  STUB_JUPYTER_FAIL=steal-once the first start finds its port taken: a squatter (pid in
                               $STUB_LOG/squatter.pid) grabs it and this exits 1 with
                               "Address already in use"; later starts behave normally
  STUB_JUPYTER_DELAY=SECONDS   wait this long before listening
  STUB_JUPYTER_EXIT=redeemed   exit once the fake Satellite has mapped this port (default)
  STUB_JUPYTER_EXIT=SECONDS    exit this long after listening
  STUB_JUPYTER_EXIT=never      run until signalled
  STUB_JUPYTER_EXIT=tunneled   exit once a URL file in $STUB_URL_DIR (ssh mode) names this port
  STUB_JUPYTER_EXIT_STATUS=N   status for those exits (default 0)
  STUB_JUPYTER_EXIT=idle       once redeemed and asked /api/status, log jupyter_server's own
                               idle-shutdown line (only if given --ServerApp.shutdown_no_activity_timeout)
                               and exit; /api/status says the last activity was that long ago
  STUB_JUPYTER_RECENT=1        ... but /api/status says the last activity is now (the line is forged)
  STUB_JUPYTER_EXIT=deaf       once redeemed, close its port but keep running until signalled
                               (a server that stopped listening but did not exit)
  STUB_JUPYTER_KERNELS=N       what /api/status says of running kernels (default 0)

GET /api/status answers like jupyter_server (JSON with last_activity) when the
request carries `Authorization: token <the token>`, else 403.
"""

import glob
import hashlib
import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import time

from stubrec import log_dir, record

SQUATTER = """
import os, socket, sys, time
s = socket.socket()
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(5)
open(sys.argv[3], "w").write(str(os.getpid()))
time.sleep(600)
"""


def option(argv, *names):
    """Value of --name=VALUE or --name VALUE (last one wins), else None."""
    value = None
    for i, arg in enumerate(argv):
        for name in names:
            if arg.startswith(name + "="):
                value = arg[len(name) + 1:]
            elif arg == name and i + 1 < len(argv):
                value = argv[i + 1]
    return value


def fail(cmd, reason, port=None):
    record(cmd, "failed", reason=reason, port=port)
    sys.stderr.write(f"[fake {cmd}] {reason}\n")
    sys.exit(1)


def steal(ip, port):
    """Start a detached process that listens on ip:port; wait until it does."""
    pidfile = os.path.join(log_dir(), "squatter.pid")
    subprocess.Popen([sys.executable, "-c", SQUATTER, ip, str(port), pidfile],
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True)
    deadline = time.time() + 5
    while time.time() < deadline:
        try:
            socket.create_connection((ip, port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)


STARTED = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())


class Handler(http.server.BaseHTTPRequestHandler):
    cmd = "jupyter"
    asked = False  # /api/status answered once
    last_activity = STARTED

    def do_GET(self):
        record(self.cmd, "http", path=self.path)
        body, kind, code = b"fake jupyter\n", "text/plain", 200
        if self.path == "/api/status":
            if self.headers.get("Authorization") != f"token {os.environ.get('JUPYTER_TOKEN')}":
                body, code = b"forbidden\n", 403
            else:
                kind = "application/json"
                Handler.asked = True
                body = json.dumps({"connections": 0, "kernels": int(os.environ.get("STUB_JUPYTER_KERNELS", "0")),
                                   "last_activity": Handler.last_activity, "started": STARTED}).encode()
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Section:
    """Attribute bag standing in for traitlets' `c.Voila` while a config file runs."""

    def __getattr__(self, name):
        value = Section()
        setattr(self, name, value)
        return value


def voila_config():
    """Evaluate the first voila.py on JUPYTER_CONFIG_PATH as Voila would; the settings it makes."""
    for folder in filter(None, os.environ.get("JUPYTER_CONFIG_PATH", "").split(os.pathsep)):
        path = os.path.join(folder, "voila.py")
        if os.path.isfile(path):
            c = Section()
            with open(path) as handle:
                exec(compile(handle.read(), path, "exec"), {"c": c, "get_config": lambda: c})
            token = c.Voila.__dict__.get("token")
            return {"path": path,
                    "token_sha256": hashlib.sha256(token.encode()).hexdigest() if isinstance(token, str) else None,
                    "tornado_settings": c.Voila.__dict__.get("tornado_settings")}
    return None


def stop(cmd, signum):
    record(cmd, "terminated", signal=signal.Signals(signum).name)
    sys.exit(0)


def should_exit(started, port):
    mode = os.environ.get("STUB_JUPYTER_EXIT", "redeemed")
    if mode == "never":
        return False
    if mode in ("redeemed", "idle", "deaf"):
        return os.path.exists(os.path.join(log_dir(), f"redeemed-{port}")) and (Handler.asked or mode != "idle")
    if mode == "tunneled":
        return any(f":{port} " in open(p, encoding="utf-8").readline()
                   for p in glob.glob(os.path.join(os.environ["STUB_URL_DIR"], "*.url")))
    return time.time() - started >= float(mode)


def main(cmd, argv):
    token = os.environ.get("JUPYTER_TOKEN")
    record(cmd, argv=argv, token_set=token is not None, token_len=len(token or ""),
           token_sha256=hashlib.sha256(token.encode()).hexdigest() if token else None,
           env={k: os.environ.get(k) for k in ("LOADEDMODULES", "CONDA_PREFIX", "MODULEPATH", "JUPYTER_CONFIG_PATH")},
           config=voila_config() if cmd == "voila" else None)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda s, f: stop(cmd, s))
    prefix = "--Voila." if cmd == "voila" else "--"
    ip, port = option(argv, prefix + "ip"), option(argv, prefix + "port")
    if not ip or not port or not port.isdigit():
        fail(cmd, f"need {prefix}ip and {prefix}port, got {argv!r}")
    port = int(port)
    behaviour = os.environ.get("STUB_JUPYTER_FAIL", "")
    if behaviour == "start":
        fail(cmd, "told to fail to start", port)
    marker = os.path.join(log_dir(), "stolen")
    if behaviour == "steal-once" and not os.path.exists(marker):
        open(marker, "w").close()
        steal(ip, port)
        fail(cmd, f"OSError: [Errno 98] Address already in use ({ip}:{port})", port)
    time.sleep(float(os.environ.get("STUB_JUPYTER_DELAY", "0")))
    Handler.cmd = cmd
    idle_after = option(argv, "--ServerApp.shutdown_no_activity_timeout")
    if os.environ.get("STUB_JUPYTER_EXIT") == "idle" and idle_after and not os.environ.get("STUB_JUPYTER_RECENT"):
        Handler.last_activity = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(time.time() - int(idle_after)))
    try:
        server = http.server.HTTPServer((ip, port), Handler)
    except OSError as exc:
        fail(cmd, f"OSError: {exc}", port)
    record(cmd, "listening", ip=ip, port=server.server_address[1])
    sys.stderr.write(f"[fake {cmd}] listening on http://{ip}:{port}/\n")
    server.timeout = 0.05
    started = time.time()
    while not should_exit(started, port):
        server.handle_request()
    mode = os.environ.get("STUB_JUPYTER_EXIT", "")
    if mode == "deaf":
        server.server_close()
        record(cmd, "deaf")
        while True:
            time.sleep(1)
    if mode == "idle" and option(argv, "--ServerApp.shutdown_no_activity_timeout"):
        seconds = option(argv, "--ServerApp.shutdown_no_activity_timeout")
        sys.stderr.write(f"[I 2026-12-02 10:50:27.689 ServerApp] No kernels for {seconds} seconds; shutting down.\n")
    status = int(os.environ.get("STUB_JUPYTER_EXIT_STATUS", "0"))
    record(cmd, "exited", status=status)
    sys.exit(status)
