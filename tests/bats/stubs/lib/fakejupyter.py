"""A tiny stand-in for `jupyter lab|notebook` and `voila`: an HTTP server on the
address and port it was told, nothing else. It is told them as the real servers are,
with traitlets' precedence: argv (--ip/--port, --ServerApp.ip/..., --Voila.ip/--Voila.port) over a --config
file and the config files on JUPYTER_CONFIG_PATH (jupyter_server_config / _notebook_ /
voila, .json or .py), over the JUPYTER_PORT environment variable. Like jupyter_server,
it listens on every interface when told '' or '*', and on localhost when told nothing:
a test compares the recorded address with the one it expects, whatever this accepts.

Records (in $STUB_LOG/calls.jsonl, cmd "jupyter" or "voila"):
  call        argv, cwd, env (LOADEDMODULES, CONDA_PREFIX, JUPYTER_CONFIG_PATH, ...),
              token_set, token_len, token_sha256 -- never the token itself -- and,
              what the config file on JUPYTER_CONFIG_PATH sets (config: ip, port,
              port_retries, allow_origin; for voila the token's SHA-256 and tornado_settings)
  told        ip, port (null when not told) and by_ip, by_port: "argv", "config PATH" or
              "environment JUPYTER_PORT" -- what it was told, however the job told it
  failed      reason (and port), when it does not start
  listening   ip, port actually bound
  http        path and status of each request it answered
  terminated  signal, when stopped by SIGTERM/SIGINT
  exited      status, when it ends on its own

Knobs (environment):
  STUB_JUPYTER_FAIL=start      exit 1 at once, like a broken install
  STUB_JUPYTER_FAIL=steal-once the first start finds its port taken: a squatter (pid in
                               $STUB_LOG/squatter.pid) grabs it and this exits 1 with
                               "Address already in use"; later starts behave normally
  STUB_JUPYTER_FAIL=squat-once the first start finds a neighbour's server on its port, one that
                               answers anyone like Jupyter (302 on /, 200 JSON on /api/status;
                               each request's path and Authorization header in
                               $STUB_LOG/squatter-requests.jsonl), and exits 1 with "Address
                               already in use" STUB_SQUAT_LINGER (3) s later, as Jupyter does
                               after its start-up; later starts behave normally
  STUB_JUPYTER_DELAY=SECONDS   wait this long before listening
  STUB_JUPYTER_WARMUP=SECONDS  once listening, answer nothing for this long (connections wait
                               in the backlog: the port is open, yet no request is answered)
  STUB_JUPYTER_EXIT=redeemed   exit once the fake Satellite has mapped this port (default)
  STUB_JUPYTER_EXIT=SECONDS    exit this long after listening
  STUB_JUPYTER_EXIT=never      run until signalled
  STUB_JUPYTER_EXIT=tunneled   exit once a URL file in $STUB_URL_DIR (ssh mode) names this port
  STUB_JUPYTER_EXIT_STATUS=N   status for those exits (default 0)
  STUB_JUPYTER_EXIT=idle       once redeemed and then asked /api/status, log jupyter_server's own
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

DETACH = "import subprocess, sys; subprocess.Popen(sys.argv[1:], start_new_session=True, close_fds=True)"

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


def steal(ip, port, answering=False):
    """Start a detached process that listens on ip:port (silent, or ANSWERING like Jupyter:
    lookalike.py); wait until it does."""
    pidfile = os.path.join(log_dir(), "squatter.pid")
    squatter = [os.path.join(os.path.dirname(os.path.abspath(__file__)), "lookalike.py"), ip, str(port),
                os.path.join(log_dir(), "squatter-requests.jsonl"), pidfile] if answering else \
        ["-c", SQUATTER, ip, str(port), pidfile]
    # started through a child that exits at once: like a neighbour's, the squatter is no
    # descendant of this Jupyter (the job checks whose process tree holds the port)
    subprocess.run([sys.executable, "-c", DETACH, sys.executable, *squatter],
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True, check=True)
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
    asked = False  # /api/status answered once the route is live (the job's watcher, not its readiness check)
    last_activity = STARTED

    def do_GET(self):
        body, kind, code = b"fake jupyter\n", "text/plain", 200
        if self.path == "/api/status":
            if self.headers.get("Authorization") != f"token {os.environ.get('JUPYTER_TOKEN')}":
                body, code = b"forbidden\n", 403
            else:
                kind = "application/json"
                routed = os.path.exists(os.path.join(log_dir(), f"redeemed-{self.server.server_address[1]}"))
                Handler.asked = Handler.asked or routed
                body = json.dumps({"connections": 0, "kernels": int(os.environ.get("STUB_JUPYTER_KERNELS", "0")),
                                   "last_activity": Handler.last_activity, "started": STARTED}).encode()
        record(self.cmd, "http", path=self.path, status=code)  # before the answer: the log orders it first
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


def python_config(path):
    """Run a traitlets .py config file; the `c` it filled in."""
    c = Section()
    with open(path) as handle:
        exec(compile(handle.read(), path, "exec"), {"c": c, "get_config": lambda: c, "__file__": path})
    return c


def config_paths():
    return [folder for folder in os.environ.get("JUPYTER_CONFIG_PATH", "").split(os.pathsep) if folder]


CONFIG_FILES = {"jupyter": ("jupyter_server_config.py", "ServerApp"), "voila": ("voila.py", "Voila")}


def app_config(cmd):
    """Evaluate the first config file of CMD on JUPYTER_CONFIG_PATH as Jupyter would; the settings it makes."""
    name, section = CONFIG_FILES[cmd]
    for folder in config_paths():
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            app = getattr(python_config(path), section).__dict__
            token = app.get("token")
            found = {"path": path, **{key: app.get(key) for key in ("ip", "port", "port_retries", "allow_origin")}}
            if cmd == "voila":
                found.update(token_sha256=hashlib.sha256(token.encode()).hexdigest() if isinstance(token, str) else None,
                             tornado_settings=app.get("tornado_settings"))
            return found
    return None


SECTIONS = {"jupyter": ("ServerApp", "NotebookApp"), "voila": ("Voila",)}
CONFIG_NAMES = {"jupyter": ("jupyter_config", "jupyter_notebook_config", "jupyter_server_config", "jupyter_lab_config"),
                "voila": ("voila",)}


def config_settings(cmd, path):
    """{"ip": ..., "port": ...} that the config file PATH (.json or .py) sets for CMD's sections."""
    found = {}
    if path.endswith(".json"):
        with open(path) as handle:
            data = json.load(handle)
        sections = [data.get(name, {}) for name in SECTIONS[cmd]]
    else:
        c = python_config(path)
        sections = [getattr(c, name).__dict__ for name in SECTIONS[cmd]]
    for section in sections:
        found.update({key: section[key] for key in ("ip", "port") if key in section})
    return found


def told(cmd, argv):
    """The address and port CMD was told, and by what (lowest precedence first, later wins)."""
    values, by = {"ip": None, "port": None}, {"ip": None, "port": None}

    def take(settings, source):
        for key, value in settings.items():
            values[key], by[key] = value, source

    if os.environ.get("JUPYTER_PORT") and cmd == "jupyter":
        take({"port": os.environ["JUPYTER_PORT"]}, "environment JUPYTER_PORT")
    files = [os.path.join(folder, name + ext) for folder in reversed(config_paths())
             for name in CONFIG_NAMES[cmd] for ext in (".json", ".py")]
    files.append(option(argv, "--config") or "")
    for path in files:
        if path and os.path.isfile(path):
            take(config_settings(cmd, path), f"config {path}")
    prefixes = ["--Voila."] if cmd == "voila" else ["--"] + [f"--{name}." for name in SECTIONS[cmd]]
    given = {key: option(argv, *(prefix + key for prefix in prefixes)) for key in ("ip", "port")}
    take({key: value for key, value in given.items() if value is not None}, "argv")
    return values["ip"], values["port"], by


def bind_address(ip):
    """Where jupyter_server would listen when told IP: '' and '*' are every interface."""
    if ip is None:
        return "localhost"
    if ip in ("", "*"):
        return "0.0.0.0"
    return ip[1:-1] if ip.startswith("[") and ip.endswith("]") else ip


class Server6(http.server.HTTPServer):
    address_family = socket.AF_INET6


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
           config=app_config(cmd))
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda s, f: stop(cmd, s))
    ip, port, by = told(cmd, argv)
    record(cmd, "told", ip=ip, port=port, by_ip=by["ip"], by_port=by["port"])
    if port is None or not str(port).isdigit():
        fail(cmd, f"need a port (argv, config or JUPYTER_PORT), got {port!r}; argv {argv!r}")
    ip, port = bind_address(ip), int(port)
    behaviour = os.environ.get("STUB_JUPYTER_FAIL", "")
    if behaviour == "start":
        fail(cmd, "told to fail to start", port)
    marker = os.path.join(log_dir(), "stolen")
    if behaviour == "steal-once" and not os.path.exists(marker):
        open(marker, "w").close()
        steal(ip, port)
        fail(cmd, f"OSError: [Errno 98] Address already in use ({ip}:{port})", port)
    if behaviour == "squat-once" and not os.path.exists(marker):
        open(marker, "w").close()
        steal(ip, port, answering=True)
        time.sleep(float(os.environ.get("STUB_SQUAT_LINGER", "3")))
        fail(cmd, f"OSError: [Errno 98] Address already in use ({ip}:{port})", port)
    time.sleep(float(os.environ.get("STUB_JUPYTER_DELAY", "0")))
    Handler.cmd = cmd
    idle_after = option(argv, "--ServerApp.shutdown_no_activity_timeout")
    if os.environ.get("STUB_JUPYTER_EXIT") == "idle" and idle_after and not os.environ.get("STUB_JUPYTER_RECENT"):
        Handler.last_activity = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(time.time() - int(idle_after)))
    try:
        server = (Server6 if ":" in ip else http.server.HTTPServer)((ip, port), Handler)
    except OSError as exc:
        fail(cmd, f"OSError: {exc}", port)
    record(cmd, "listening", ip=ip, port=server.server_address[1])
    sys.stderr.write(f"[fake {cmd}] listening on http://{ip}:{port}/\n")
    time.sleep(float(os.environ.get("STUB_JUPYTER_WARMUP", "0")))
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
    orphan = os.environ.get("STUB_JUPYTER_ORPHAN")  # a file: leave a child behind, as a server whose
    if orphan:  # proxied process outlives it (code-server after Jupyter's idle shutdown); its pid goes there
        child = subprocess.Popen(["sleep", "300"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        with open(orphan, "w") as handle:
            handle.write(str(child.pid))
    status = int(os.environ.get("STUB_JUPYTER_EXIT_STATUS", "0"))
    record(cmd, "exited", status=status)
    sys.exit(status)
