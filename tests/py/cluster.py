"""Helpers for tests against the real local test cluster (tests/harness/up).

The cluster is several hosts (tests/harness/README.md, "Topology"): galyleo and
every Slurm command run on `login` (through tests/harness/on), jobs run on the
compute nodes, and this process is the user's laptop: it reaches sessions only
through the proxy's public address (satellite_client dials PROXY_PUBLIC_ADDR).
galyleo runs as the unprivileged test user (Jupyter refuses root), from the
built pyz copied where that user can read it; Slurm, Lmod, Jupyter, Apache and
the Satellite stand-in are the real services the harness started.
"""

from __future__ import annotations

import contextlib
import functools
import http.cookiejar
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HARNESS_ROOT = os.environ.get("GALYLEO_HARNESS_ROOT", "/srv/galyleo-test")
sys.path.insert(0, os.path.join(REPO, "tests", "harness"))

import satellite_client as sat  # noqa: E402

ON = os.path.join(REPO, "tests", "harness", "on")
LOGIN = "login"


def on(host: str, argv: List[str], user: Optional[str] = None) -> List[str]:
    """The argv that runs ARGV on a test host (as USER with a login environment, else root)."""
    return [ON, host, *(["--user", user] if user else []), *argv]


def slurm(*argv: str, check: bool = False, timeout: float = 60) -> subprocess.CompletedProcess:
    """A Slurm client command (squeue, scancel, scontrol, ...) run as root on login."""
    return subprocess.run(on(LOGIN, list(argv)), capture_output=True, text=True, check=check, timeout=timeout)


def manage_call(env: Dict[str, str], endpoint: str, host: str = LOGIN, **params: str) -> str:
    """One Satellite management call made from HOST (inside the IP gate, as galyleo or a
    job would: the laptop's calls are refused); the reply body."""
    url = f"https://manage.{env['SATELLITE_DOMAIN']}/{endpoint}.cgi?{urllib.parse.urlencode(params)}"
    done = subprocess.run(on(host, ["curl", "-s", "--max-time", "10", "--cacert", env["SATELLITE_CA"], url]),
                          capture_output=True, text=True, timeout=30)
    return done.stdout


def servers_on(user: str, port: int) -> List[int]:
    """Pids of USER's Jupyter/Voila processes told PORT. The port is on no command line (a
    neighbour reads those), so this reads what only the owner and root can: the environment
    the job hands Jupyter's private config file (GALYLEO_PORT)."""
    import pwd

    uid, want, found = pwd.getpwnam(user).pw_uid, f"GALYLEO_PORT={port}".encode(), []
    for entry in os.listdir("/proc"):
        try:
            if not entry.isdigit() or os.stat(f"/proc/{entry}").st_uid != uid:
                continue
            with open(f"/proc/{entry}/environ", "rb") as handle:
                environ = handle.read().split(b"\0")
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                cmdline = handle.read()
        except OSError:  # gone meanwhile
            continue
        if want in environ and (b"jupyter" in cmdline or b"voila" in cmdline):
            found.append(int(entry))
    return found


def harness_env() -> Dict[str, str]:
    """The variables tests/harness/up exported; fail (never skip) when it has not run."""
    path = os.path.join(HARNESS_ROOT, "env.sh")
    if not os.path.exists(path) or not os.path.exists(os.path.join(HARNESS_ROOT, "site.toml")):
        pytest.fail(f"the test cluster is not up ({path} missing): run `make harness`")
    out = subprocess.run(["bash", "-c", f"source {path} && env -0"], capture_output=True, check=True).stdout
    return dict(item.split("=", 1) for item in out.decode().split("\0") if "=" in item)


@functools.lru_cache(maxsize=None)
def vscode_ready() -> str:
    """tests/harness/vscode-up, once: `up` starts it in the background (code-server takes minutes
    to build); this waits for it (its lock) and fails with its reason. The harness's -e value
    that brings code-server and Jupyter with jupyter-server-proxy (VSCODE_MODULES)."""
    done = subprocess.run(["bash", os.path.join(REPO, "tests", "harness", "vscode-up")], capture_output=True,
                          text=True, timeout=1200)
    if done.returncode != 0:
        pytest.fail(f"tests/harness/vscode-up failed: {(done.stderr or done.stdout)[-2000:]}")
    return harness_env()["VSCODE_MODULES"]


@dataclass
class Launched:
    """What `galyleo launch` printed, parsed."""

    url: str
    job_id: str
    script: str
    output: str
    stdout: str

    @property
    def alias(self) -> str:
        return urllib.parse.urlsplit(self.url).hostname.split(".")[0]

    @property
    def origin(self) -> str:
        parts = urllib.parse.urlsplit(self.url)
        return f"https://{parts.hostname}"

    @property
    def token(self) -> str:
        return urllib.parse.parse_qs(urllib.parse.urlsplit(self.url).query)["token"][0]


class Cluster:
    """The test cluster as seen by one test user."""

    def __init__(self, env: Dict[str, str]) -> None:
        self.env = env
        self.user = env["GALYLEO_TEST_USER"]
        self.home = f"/home/{self.user}"
        self.site = os.path.join(HARNESS_ROOT, "site.toml")
        self.module = env["JUPYTER_MODULE"]
        self.pyz = os.path.join(HARNESS_ROOT, "galyleo.pyz")
        self.login = env.get("LOGIN_HOST", LOGIN)
        self.nodes = env.get("CLUSTER_NODES", "").split()
        if not self.nodes:
            pytest.fail("the test cluster has no compute nodes in env.sh (CLUSTER_NODES): run `make harness`")

    def install_pyz(self) -> None:
        if os.environ.get("GALYLEO_E2E_CHECKOUT"):  # developer loop: run the checkout, not the pyz
            return
        built = os.path.join(REPO, "dist", "galyleo.pyz")
        if not os.path.exists(built):
            pytest.fail("dist/galyleo.pyz is missing: run `make pyz`")
        shutil.copyfile(built, self.pyz)
        os.chmod(self.pyz, 0o755)

    def as_user(self, argv: List[str], extra_env: Optional[Dict[str, str]] = None, **kw) -> subprocess.CompletedProcess:
        """ARGV on login as the test user, in a login shell's environment plus ours."""
        env = {"HOME": self.home, "GALYLEO_CONFIG": self.site, "PATH": "/usr/local/bin:/usr/bin:/bin"}
        env.update(extra_env or {})
        cmd = on(LOGIN, ["env", "-C", self.home] + [f"{k}={v}" for k, v in env.items()] + argv, self.user)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=kw.pop("timeout", 120), **kw)

    def galyleo(self, *args: str, extra_env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
        if os.environ.get("GALYLEO_E2E_CHECKOUT"):
            site = os.path.join(REPO, ".venv", "lib", "python3.11", "site-packages")
            env = {"PYTHONPATH": f"{REPO}:{site}", **(extra_env or {})}
            return self.as_user(["/usr/bin/python3", "-m", "galyleo", *args], env)
        return self.as_user(["/usr/bin/python3", self.pyz, *args], extra_env)

    def launch(self, *args: str, interface: str = "lab", modules: str = "") -> Launched:
        done = self.galyleo("launch", "-i", interface, "-e", modules or self.module, "-t", "00:10:00", *args)
        assert done.returncode == 0, done.stderr
        lines = done.stdout.strip().splitlines()
        fields = dict(line.split(": ", 1) for line in lines if line.startswith("Job "))
        job = lines[0].split()[3]
        return Launched(lines[-1], job, fields["Job script"], fields["Job output"], done.stdout)

    def fresh_home(self) -> str:
        """An empty home for one test's galyleo calls, so other sessions' files never interfere."""
        path = os.path.join(self.home, f"t-{uuid.uuid4().hex[:8]}")
        os.mkdir(path, 0o700)
        shutil.chown(path, self.user, self.user)
        return path

    def squeue(self) -> List[str]:
        out = slurm("squeue", "-h", "-o", "%i %T", check=True).stdout
        return out.split("\n")[:-1]

    def job_state(self, job_id: str) -> str:
        out = slurm("squeue", "-h", "-j", job_id, "-o", "%T").stdout
        return out.strip()

    def wait_job_gone(self, job_id: str, timeout: float = 60) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.job_state(job_id) in ("", "COMPLETED", "CANCELLED", "FAILED", "TIMEOUT"):
                return
            time.sleep(0.3)
        raise AssertionError(f"job {job_id} still {self.job_state(job_id)} after {timeout} s")

    def output(self, launched: Launched) -> str:
        with open(launched.output, encoding="utf-8", errors="replace") as handle:
            return handle.read()

    def cancel(self, job_id: str) -> None:
        slurm("scancel", job_id)


@contextlib.contextmanager
def launched_together(cluster: "Cluster") -> Iterator[Tuple[Dict[str, Launched], threading.Event]]:
    """For a module's sessions launched at once: the sessions (filled in by the caller) and an
    event that the caller's client threads watch. At the end the threads are told to stop and
    every session is cancelled, whatever happened."""
    launched: Dict[str, Launched] = {}
    stop = threading.Event()
    try:
        yield launched, stop
    finally:
        stop.set()
        for session in launched.values():
            cluster.cancel(session.job_id)


class Browser:
    """A cookie-keeping client that talks to a session only through the proxy."""

    def __init__(self) -> None:
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}),
            urllib.request.HTTPCookieProcessor(self.jar),
            sat._SatelliteHTTPSHandler(context=sat.ssl_context()),
        )

    def get(self, url: str, headers: Optional[Dict[str, str]] = None, timeout: float = 10):
        request = urllib.request.Request(url, headers=headers or {})
        try:
            with self.opener.open(request, timeout=timeout) as reply:
                return reply.status, reply.read().decode("utf-8", "replace"), reply.geturl()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode("utf-8", "replace"), url

    def post_json(self, url: str, data: dict, headers: Dict[str, str]):
        request = urllib.request.Request(url, data=json.dumps(data).encode(), headers=headers, method="POST")
        try:
            with self.opener.open(request, timeout=20) as reply:
                return reply.status, json.loads(reply.read() or b"null")
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode("utf-8", "replace")

    def cookie(self, name: str) -> str:
        return next(c.value for c in self.jar if c.name == name)

    def cookie_header(self) -> str:
        return "; ".join(f"{c.name}={c.value}" for c in self.jar)


def wait_for_page(url: str, marker: str, timeout: float = 90) -> Browser:
    """Poll the session URL as a browser would until the page contains MARKER."""
    browser = Browser()
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = browser.get(url)
            if last[0] == 200 and marker in last[1]:
                return browser
        except OSError as exc:
            last = exc
        time.sleep(0.5)
    raise AssertionError(f"{url} did not serve {marker!r} within {timeout} s; last reply: {str(last)[:300]}")


def run_code(launched: Launched, browser: Browser, code: str, origin: Optional[str] = None) -> str:
    """Start a kernel over REST and run CODE over the WebSocket, cookie only (no token)."""
    base = launched.origin
    return run_code_at(base, f"wss://{urllib.parse.urlsplit(base).hostname}", browser, code, origin or base,
                       sat.ws_connect)


def run_code_at(base: str, ws_base: str, browser: Browser, code: str, origin: str, connect) -> str:
    """run_code against BASE (REST) and WS_BASE (WebSocket, opened by CONNECT(url, headers=, timeout=))."""
    return execute(base, ws_base, browser, code, origin, connect, output_of, "no output from the kernel")


def output_of(message: dict) -> Optional[str]:
    """The kernel's printed output, or its error as a failure; None for any other reply."""
    if message["msg_type"] == "stream":
        return message["content"]["text"]
    if message["msg_type"] == "error":
        raise AssertionError(message["content"])
    return None


def execute(base: str, ws_base: str, browser: Browser, code: str, origin: str, connect,
            answer: Callable[[dict], Optional[str]], failure: str) -> str:
    """Send CODE to a new kernel (REST at BASE, WebSocket at WS_BASE via CONNECT) and return what
    ANSWER first makes of the kernel's replies to it (None: keep reading); FAILURE after 60 s."""
    xsrf = browser.cookie("_xsrf")
    headers = {"Origin": origin, "X-XSRFToken": xsrf, "Content-Type": "application/json"}
    status, kernel = browser.post_json(f"{base}/api/kernels", {"name": "python3"}, headers)
    assert status == 201, (status, kernel)
    session = uuid.uuid4().hex
    ws_url = f"{ws_base}/api/kernels/{kernel['id']}/channels?session_id={session}"
    with connect(ws_url, headers={"Origin": origin, "Cookie": browser.cookie_header()}, timeout=30) as ws:
        msg_id = uuid.uuid4().hex
        ws.send(json.dumps({
            "header": {"msg_id": msg_id, "username": "test", "session": session, "msg_type": "execute_request",
                       "version": "5.3", "date": ""},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": True},
        }))
        deadline = time.time() + 60
        while time.time() < deadline:
            message = json.loads(ws.recv())
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            found = answer(message)
            if found is not None:
                return found
    raise AssertionError(failure)


def assert_refused_to(user: str, host: str, address: str, token: str) -> None:
    """USER, on test host HOST (the session's node), straight at Jupyter's ADDRESS (host:port)
    without the token (or one digit off), gets nothing."""
    wrong = token[:-1] + ("1" if token.endswith("0") else "0")  # one hex digit off, never the token
    for path in ("/api/kernels", "/api/contents", "/api/status", f"/api/kernels?token={wrong}"):
        code = subprocess.run(on(host, ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                        f"http://{address}{path}"], user), capture_output=True, text=True).stdout
        assert code in ("401", "403"), (path, code)
    lab = subprocess.run(on(host, ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}",
                                   f"http://{address}/lab"], user), capture_output=True, text=True).stdout
    assert lab.startswith("302") and "/login" in lab, lab


# --- the neighbour: a second unprivileged user on the same hosts (issue 24) -------------
LOOKALIKE = os.path.join(REPO, "tests", "bats", "stubs", "lib", "lookalike.py")  # a server answering like Jupyter


def neighbour(env: Dict[str, str]) -> str:
    """The hostile neighbour's user name (tests/harness: GALYLEO_NEIGHBOUR_USER)."""
    name = env.get("GALYLEO_NEIGHBOUR_USER", "")
    if not name:
        pytest.fail("the test cluster has no neighbour user (GALYLEO_NEIGHBOUR_USER in env.sh): run `make harness`")
    return name


def neighbour_file(env: Dict[str, str], stem: str) -> str:
    """A fresh path in the neighbour's home for something she writes (root reads it)."""
    return f"/home/{neighbour(env)}/{stem}-{uuid.uuid4().hex[:8]}"


def as_neighbour(env: Dict[str, str], host: str, argv: List[str], **kw) -> subprocess.Popen:
    """ARGV on HOST as the neighbour, not waited for (its pid is ARGV's: `on` execs down), in a
    process group of its own, so that `stop` ends what it started too (a pipeline's stages)."""
    return subprocess.Popen(on(host, argv, neighbour(env)), stdin=subprocess.DEVNULL, start_new_session=True, **kw)


def neighbour_watch(env: Dict[str, str], host: str) -> Tuple[subprocess.Popen, str]:
    """The neighbour's `ps` on HOST every 50 ms, each command line she sees once, in a file."""
    path = neighbour_file(env, "seen")
    loop = ("while :; do ps -eww -o args=; sleep 0.05; done | awk '!seen[$0]++ { print; fflush() }' >\"$1\"")
    return as_neighbour(env, host, ["bash", "-c", loop, "watch", path]), path


def neighbour_server(env: Dict[str, str], host: str, port: int, victim_uid: Optional[int] = None
                     ) -> Tuple[subprocess.Popen, str]:
    """The neighbour's server on HOST's every address at PORT, answering anyone like Jupyter
    and logging each request (path, Authorization) to the returned file; with VICTIM_UID it
    binds only once that user's Jupyter has started (a squatter racing Jupyter's bind)."""
    path = neighbour_file(env, "served")
    with open(LOOKALIKE, encoding="utf-8") as handle:  # as text: she cannot read the checkout
        code = handle.read()
    argv = ["python3", "-c", code, "0.0.0.0", str(port), path, "", "" if victim_uid is None else str(victim_uid)]
    return as_neighbour(env, host, argv), path


def neighbour_call(env: Dict[str, str], host: str, endpoint: str, **params: str) -> str:
    """One Satellite management call made by the neighbour from HOST (inside the IP gate)."""
    url = f"https://manage.{env['SATELLITE_DOMAIN']}/{endpoint}.cgi?{urllib.parse.urlencode(params)}"
    done = subprocess.run(on(host, ["curl", "-s", "--max-time", "10", "--cacert", env["SATELLITE_CA"], url],
                             neighbour(env)), capture_output=True, text=True, timeout=30)
    return done.stdout


def stop(proc: subprocess.Popen) -> None:
    """End a process a test started, and its process group when it leads one, and reap it."""
    group = own_group(proc)
    if proc.poll() is None:
        signal_all(proc, group, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            signal_all(proc, group, signal.SIGKILL)
            proc.wait(timeout=10)
    if group:  # what the process started (a pipeline's other stages) ends with it
        signal_all(proc, group, signal.SIGKILL)


def own_group(proc: subprocess.Popen) -> bool:
    """Whether PROC leads a process group of its own (as_neighbour starts it so)."""
    try:
        return os.getpgid(proc.pid) == proc.pid
    except OSError:
        return False


def signal_all(proc: subprocess.Popen, group: bool, signum: int) -> None:
    """SIGNUM to PROC's whole group when it leads one, else to PROC alone."""
    try:
        if group:
            os.killpg(proc.pid, signum)
        else:
            proc.send_signal(signum)
    except OSError:
        pass
