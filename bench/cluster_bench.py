"""Sections 3-6 and 8 against the real test cluster: launch latency, stamps, usable session, scale,
VS Code against JupyterLab.

galyleo runs as the unprivileged test user on the cluster's login host through
bench/userdriver.py (one tests/harness/on per batch, so its cost is in no figure), and
jobs run on the compute nodes. This process (root, the laptop) polls the session URLs
through Apache on the proxy's public address like a browser, reads the job outputs and
the stand-in's call log, cancels every job it caused and checks that none of its aliases
is left in the stand-in.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import Callable, Dict, List, Optional, Set

from common import HARNESS_ROOT, PYTHON, PYZ, REPO, SITE_TOML

sys.path.insert(0, os.path.join(REPO, "tests", "harness"))
import satellite_client as sat  # noqa: E402

sys.path.insert(0, REPO)
from galyleo import joblog  # noqa: E402  (the job's stamp lines are its format)

ON = os.path.join(REPO, "tests", "harness", "on")


def on_login(*argv: str, user: Optional[str] = None) -> List[str]:
    """ARGV run on the login host (tests/harness/on): as USER in a login environment, else root."""
    return [ON, "login", *(["--user", user] if user else []), *argv]


def slurm_out(*argv: str) -> str:
    return subprocess.run(on_login(*argv), capture_output=True, text=True).stdout


BASH_ORIGINAL_LAUNCH = 0.18  # seconds: the bash galyleo's launch on this kind of machine (issue 7)
JUPYTER_RUNNING = re.compile(r"^\[I (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) ServerApp\] Jupyter Server \S+ is running at",
                             re.M)
WAITING = ("Phase 1 of 2", "Phase 2 of 2")
WORKBENCH = "vscode-workbench-web-configuration"  # in code-server's page, and nowhere in Jupyter's
KEEP_ALIVE = 9  # VS Code's protocol: the server's keep-alive message type (first byte of its 13-byte header)
TERMINAL = ("COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED")


def harness_env() -> Dict[str, str]:
    out = subprocess.run(["bash", "-c", f"source {HARNESS_ROOT}/env.sh && env -0"], capture_output=True,
                         check=True).stdout
    return dict(item.split("=", 1) for item in out.decode().split("\0") if "=" in item)


class UserSide:
    """A private folder the test user can read (pyz, driver) and write (shiv root, outputs)."""

    def __init__(self, env: Dict[str, str]) -> None:
        self.env = env
        self.user = env["GALYLEO_TEST_USER"]
        self.home = f"/home/{self.user}"
        self.module = env["JUPYTER_MODULE"]
        self.dir = tempfile.mkdtemp(prefix="galyleo-bench-")
        os.chmod(self.dir, 0o755)  # noqa: S103 - the test user reads the pyz and driver here
        self.pyz = os.path.join(self.dir, "galyleo.pyz")
        self.driver = os.path.join(self.dir, "userdriver.py")
        shutil.copyfile(PYZ, self.pyz)
        shutil.copyfile(os.path.join(os.path.dirname(os.path.abspath(__file__)), "userdriver.py"), self.driver)
        for path in (self.pyz, self.driver):
            os.chmod(path, 0o644)
        self.shiv_root = os.path.join(self.dir, "shiv")
        self.work = os.path.join(self.dir, "work")
        for path in (self.shiv_root, self.work):
            os.mkdir(path, 0o700)
            shutil.chown(path, self.user, self.user)
        self.launch_args = self.launch_args_for(self.module)

    @staticmethod
    def launch_args_for(modules: str, *extra: str) -> List[str]:
        """`galyleo launch` arguments of every bench session: -e MODULES, one CPU, 1 GB, 10 minutes."""
        return [*extra, "-e", modules, "-t", "00:10:00", "--cpus", "1", "--memory", "1"]

    def run(self, command: str, **cfg: object) -> dict:
        cfg = {"pyz": self.pyz, "workdir": self.work, "launch_args": self.launch_args, "module": self.module,
               "ca": self.env["SATELLITE_CA"], "manage_host": f"manage.{self.env['SATELLITE_DOMAIN']}", **cfg}
        env = {"HOME": self.home, "PATH": "/usr/local/bin:/usr/bin:/bin", "GALYLEO_CONFIG": SITE_TOML,
               "SHIV_ROOT": self.shiv_root, "PYTHONDONTWRITEBYTECODE": "1", "LANG": "C.UTF-8"}
        argv = on_login("env", "-C", self.home, *[f"{k}={v}" for k, v in env.items()], PYTHON, self.driver,
                        command, json.dumps(cfg), user=self.user)
        done = subprocess.run(argv, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            raise RuntimeError(f"userdriver {command} failed: {done.stderr[-1500:]}")
        return json.loads(done.stdout)

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


class Ledger:
    """Every job and alias the bench caused, so each is cancelled / destroyed and checked."""

    def __init__(self) -> None:
        self.jobs: Set[str] = set()
        self.aliases: Set[str] = set()
        self.sessions: Set[str] = set()  # session file paths without extension
        self.destroyed_by_bench: List[Dict[str, str]] = []
        self.started = time.time()

    def add(self, job: str = "", alias: str = "", script: str = "") -> None:
        if job:
            self.jobs.add(job)
        if alias:
            self.aliases.add(alias)
        if script.endswith(".sh"):
            self.sessions.add(script[:-3])

    def remove_files(self) -> int:
        """The test user's session files of every launch the bench made (script, output,
        record, and the token file a job cancelled while pending never read), plus the
        outputs of the bare sbatch runs; nothing else in ~/.galyleo is touched."""
        paths = [base + ext for base in self.sessions for ext in (".sh", ".out", ".json", ".token")]
        folders = {os.path.dirname(base) for base in self.sessions}
        paths += [os.path.join(folder, f"galyleo-{job}{ext}")
                  for folder in folders for job in self.jobs for ext in (".out", ".url")]
        removed = 0
        for path in paths:
            try:
                os.unlink(path)
                removed += 1
            except FileNotFoundError:
                pass
        return removed

    def live_jobs(self, jobs: Optional[Set[str]] = None) -> Dict[str, str]:
        ids = sorted(jobs if jobs is not None else self.jobs)
        if not ids:
            return {}
        out = slurm_out("squeue", "-h", "-j", ",".join(ids), "-o", "%i %T")
        return {line.split()[0]: line.split()[1] for line in out.splitlines() if line.split()[1] not in TERMINAL}

    def cancel(self, jobs: Set[str], timeout: float = 60) -> bool:
        if jobs:
            subprocess.run(on_login("scancel", *sorted(jobs)), check=False)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if not self.live_jobs(jobs):
                return True
            time.sleep(0.2)
        return False

    def my_aliases_left(self) -> List[dict]:
        return [rec for rec in sat.state() if rec["alias"] in self.aliases or str(rec.get("jobid") or "") in self.jobs]

    def settle_aliases(self, aliases: Set[str], timeout: float = 15) -> List[dict]:
        """Wait for the jobs' traps to destroy their aliases; destroy what is left (and say so)."""
        deadline = time.time() + timeout
        left: List[dict] = []
        while time.time() < deadline:
            left = [rec for rec in sat.state() if rec["alias"] in aliases
                    or (rec.get("jobid") and str(rec["jobid"]) in self.jobs)]
            if not left:
                return []
            time.sleep(0.25)
        for rec in left:
            # From the node it was redeemed on (or login if never redeemed): the gate admits the cluster only.
            host = next((h for h in ("node1", "node2") if rec.get("host") == harness_env().get(f"ADDR_{h.upper()}")),
                        "login")
            reply = subprocess.run(
                [ON, host, "curl", "-s", "--max-time", "10", "--cacert", sat.settings()["SATELLITE_CA"],
                 f"https://manage.{sat.settings()['SATELLITE_DOMAIN']}/destroytoken.cgi?token={rec['alias']}"],
                capture_output=True, text=True).stdout
            self.destroyed_by_bench.append({"alias": rec["alias"], "state": rec["state"],
                                            "jobid": str(rec.get("jobid") or ""), "reply": reply.strip()})
        return left


class Browser:
    """Cookie-keeping client through the proxy (as tests/py/cluster.py's)."""

    def __init__(self) -> None:
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPCookieProcessor(self.jar),
            sat._SatelliteHTTPSHandler(context=sat.ssl_context()))

    def cookie_header(self) -> str:
        return "; ".join(f"{c.name}={c.value}" for c in self.jar)

    def get(self, url: str, timeout: float = 10):
        try:
            with self.opener.open(urllib.request.Request(url), timeout=timeout) as reply:  # noqa: S310
                return reply.status, reply.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode("utf-8", "replace")


# After the page: what else must work before the app is usable (None: nothing), given the
# session URL, the browser that got the page and a dict for its own time marks (epoch);
# returns None when it worked, else why not.
Then = Callable[[str, Browser, Dict[str, float]], Optional[str]]


def vscode_connects(url: str, browser: Browser, marks: Dict[str, float]) -> Optional[str]:
    """VS Code's connection to its server as the workbench opens it (through Jupyter, the cookie
    only, with an Origin): usable once the server's first keep-alive arrives. The server sends
    that on its keep-alive timer (VS Code's ProtocolConstants.KeepAliveSendTime, 5 s), so the
    handshake's end is marked too (`ws_open`)."""
    host = urllib.parse.urlsplit(url).hostname
    ws_url = f"wss://{host}/vscode/?reconnectionToken={uuid.uuid4()}&reconnection=false&skipWebSocketFrames=false"
    try:
        ws = sat.ws_connect(ws_url, headers={"Origin": f"https://{host}", "Cookie": browser.cookie_header()},
                            timeout=30)
    except (OSError, ConnectionError) as exc:
        return f"websocket: {type(exc).__name__}: {str(exc)[:120]}"
    marks["ws_open"] = time.time()
    try:
        message = ws.recv()
    except (OSError, ConnectionError) as exc:
        return f"websocket recv: {type(exc).__name__}: {str(exc)[:120]}"
    finally:
        ws.close()
    if not isinstance(message, bytes) or not message or message[0] != KEEP_ALIVE:
        return f"websocket: first message is no keep-alive: {message[:20]!r}"
    return None


APPS: Dict[str, tuple] = {"lab": ("JupyterLab", None), "vscode": (WORKBENCH, vscode_connects)}  # marker, then


class Poller(threading.Thread):
    """Polls one session URL until it serves the app's page (then, if the app needs it, until THEN
    works too); notes every reply that is not the waiting page."""

    def __init__(self, url: str, interval: float, stop: threading.Event, timeout: float = 180,
                 marker: str = "JupyterLab", then: Optional[Then] = None) -> None:
        super().__init__(daemon=True)
        self.url, self.interval, self.stop, self.timeout = url, interval, stop, timeout
        self.marker, self.then = marker, then
        self.page: Optional[float] = None  # the app's page served
        self.ready: Optional[float] = None  # usable: the page, and THEN worked
        self.marks: Dict[str, float] = {}  # THEN's own time marks
        self.polls = 0
        self.waiting = 0
        self.anomalies: List[str] = []

    def run(self) -> None:
        browser = Browser()
        deadline = time.time() + self.timeout
        while not self.stop.is_set() and time.time() < deadline:
            if self.page is None:
                self.poll(browser)
            if self.page is not None and self.then is None:
                self.ready = self.page
                return
            if self.page is not None and self.then is not None:
                failed = self.then(self.url, browser, self.marks)
                if failed is None:
                    self.ready = time.time()
                    return
                self.anomalies.append(failed)
            time.sleep(self.interval)

    def poll(self, browser: Browser) -> None:
        self.polls += 1
        try:
            status, body = browser.get(self.url, timeout=30)  # the proxy's first request starts code-server
        except Exception as exc:  # connection reset, empty reply, TLS: all count as anomalies
            self.anomalies.append(f"{type(exc).__name__}: {str(exc)[:120]}")
            return
        if status == 200 and self.marker in body:
            self.page = time.time()
        elif status == 200 and any(mark in body for mark in WAITING):
            self.waiting += 1
        else:
            self.anomalies.append(f"HTTP {status}: {' '.join(body.split())[:120] or 'empty body'}")


def stamps(output: str) -> Dict[str, float]:
    try:
        with open(output, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return {}
    found = joblog.stamps(text)
    running = JUPYTER_RUNNING.search(text)
    if running:  # Jupyter logs local time (UTC here) with milliseconds
        found["_jupyter_running_epoch"] = time.mktime(time.strptime(running.group(1)[:19], "%Y-%m-%d %H:%M:%S")) \
            + float("0." + running.group(1)[20:])
    return found


def redeem_end(calls: List[dict], alias: str) -> Optional[float]:
    for call in calls:
        if call["endpoint"] == "redeemtoken" and call["params"].get("token") == alias and call.get("status") == 200:
            return float(call["time"]) + float(call.get("duration") or 0)
    return None


def alias_of(url: str) -> str:
    return url.split("://", 1)[-1].split(".", 1)[0]


def wait_stamp(output: str, name: str, timeout: float = 10) -> Dict[str, float]:
    deadline = time.time() + timeout
    found = stamps(output)
    while name not in found and time.time() < deadline:
        time.sleep(0.1)
        found = stamps(output)
    return found


def session_breakdown(launch: dict, ready: Optional[float], calls: List[dict],
                      page: Optional[float] = None) -> Dict[str, Optional[float]]:
    """Launch start -> URL -> job start -> stamps -> redeem -> page served (PAGE, else READY: the
    same for JupyterLab), in seconds."""
    found = wait_stamp(launch["output"], "redeemed")
    end = redeem_end(calls, alias_of(launch["url"]))
    row: Dict[str, Optional[float]] = {"launch": launch["end"] - launch["start"],
                                       "usable": (ready - launch["start"]) if ready else None}
    row.update({f"stamp:{k}": v for k, v in found.items() if not k.startswith("_")})
    if end is not None and "redeemed" in found:
        job_start = end - found["redeemed"]
        row["url_to_job_start"] = job_start - launch["end"]
        row["redeem_to_page"] = ((page or ready) - end) if (page or ready) else None
        if "_jupyter_running_epoch" in found:
            row["jupyter_answering_to_redeemed"] = end - found["_jupyter_running_epoch"]
            row["jupyter_answering_to_ready_stamp"] = (job_start + found.get("jupyter-ready", 0)) \
                - found["_jupyter_running_epoch"]
    return row


def standin_mark() -> Dict[str, object]:
    """What other users of the shared stand-in can change under a measurement."""
    cfg = sat.config()
    return {"calls": len(sat.calls()), "faults": {k: v for k, v in (cfg.get("faults") or {}).items() if v},
            "route_delay": cfg.get("route_delay")}


def wait_standin_clean(timeout: float = 90) -> Dict[str, object]:
    """Wait until no fault is injected (another test's faults are short-lived)."""
    deadline = time.time() + timeout
    mark = standin_mark()
    while mark["faults"] and time.time() < deadline:
        time.sleep(1)
        mark = standin_mark()
    return mark


def disturbed(before: Dict[str, object], after: Dict[str, object]) -> str:
    """Why a measurement is not galyleo's own: the shared stand-in changed under it."""
    if int(after["calls"]) < int(before["calls"]):
        return "the stand-in was reset (POST /reset by another test)"
    if before["faults"] or after["faults"]:
        return f"faults injected by another test: {before['faults'] or after['faults']}"
    if before["route_delay"] != after["route_delay"]:
        return f"route delay changed from {before['route_delay']} to {after['route_delay']} by another test"
    return ""


def sessions(user: UserSide, ledger: Ledger, n: int, interval: float, settle_timeout: float = 180,
             app: str = "lab", launch_args: Optional[List[str]] = None) -> dict:
    """Launch n sessions of APP at once (LAUNCH_ARGS, else the user side's), poll each until
    usable (those Slurm can run), then cancel all."""
    before = wait_standin_clean()
    node_before = node_capacity()
    launched = user.run("launch-many", n=n, **({"launch_args": launch_args} if launch_args else {}))["launches"]
    for item in launched:
        alias = alias_of(item["url"]) if item.get("url") else ""
        ledger.add(item.get("job", ""), alias, item.get("script", ""))
    failed = [item for item in launched if item["rc"] != 0]
    ok = [item for item in launched if item["rc"] == 0]
    stop = threading.Event()
    marker, then = APPS[app]
    pollers = [Poller(item["url"], interval, stop, timeout=settle_timeout, marker=marker, then=then) for item in ok]
    for poller in pollers:
        poller.start()
    jobs = {item["job"] for item in ok}
    pending_reason: Dict[str, str] = {}
    deadline = time.time() + settle_timeout
    while time.time() < deadline:
        states = job_states(jobs)
        fits = int(node_capacity()["fits_1cpu_1gb"])
        pending_reason = {job: st[1] for job, st in states.items() if st[0] == "PENDING"}
        # Still worth waiting for: not ready, and running, starting, or pending while a slot is free.
        waiting = [item for item, poller in zip(ok, pollers) if not poller.ready
                   and (states.get(item["job"], ("", ""))[0] in ("RUNNING", "CONFIGURING")
                        or (states.get(item["job"], ("", ""))[0] == "PENDING" and fits >= 1))]
        if not waiting:
            break
        time.sleep(0.5)
    stop.set()
    for poller in pollers:
        poller.join(timeout=15)
    calls = sat.calls()
    after = standin_mark()
    rows = []
    for item, poller in zip(ok, pollers):
        row = session_breakdown(item, poller.ready, calls, poller.page) if poller.ready else {
            "launch": item["end"] - item["start"], "usable": None}
        row["page"] = (poller.page - item["start"]) if poller.page else None
        row.update({mark: at - item["start"] for mark, at in poller.marks.items()})
        row.update({"job": item["job"], "app": app, "polls": poller.polls, "waiting_pages": poller.waiting,
                    "anomalies": poller.anomalies, "pending_reason": pending_reason.get(item["job"], "")})
        rows.append(row)
    gone = ledger.cancel(jobs)
    left = ledger.settle_aliases({alias_of(item["url"]) for item in ok})
    reason = disturbed(before, after) or (f"{len(failed)} launches failed" if failed else "")
    return {"n": n, "node_before": node_before, "rows": rows, "failed_launches": failed, "disturbed": reason,
            "starts": [item["start"] for item in ok], "ends": [item["end"] for item in ok],
            "readies": [p.ready for p in pollers], "jobs_gone": gone,
            "aliases_left_after_cancel": [dict(alias=r["alias"], state=r["state"]) for r in left]}


def job_states(jobs: Set[str]) -> Dict[str, tuple]:
    if not jobs:
        return {}
    out = slurm_out("squeue", "-h", "-j", ",".join(sorted(jobs)), "-o", "%i|%T|%r")
    return {line.split("|")[0]: tuple(line.split("|")[1:3]) for line in out.splitlines()}


def node_capacity() -> Dict[str, object]:
    """What the nodes can still take: one-CPU 1-GB sessions fit, per node, min(free CPUs, free GB)."""
    total = {"nodes": 0, "cpus": 0, "alloc_cpus": 0, "free_cpus": 0, "real_memory_mb": 0, "alloc_memory_mb": 0,
             "free_memory_mb": 0, "fits_1cpu_1gb": 0}
    for line in slurm_out("scontrol", "show", "node", "-o").splitlines():
        fields = dict(item.split("=", 1) for item in line.split() if "=" in item)
        cpus, alloc = int(fields.get("CPUTot", 0)), int(fields.get("CPUAlloc", 0))
        mem, alloc_mem = int(fields.get("RealMemory", 0)), int(fields.get("AllocMem", 0))
        for key, value in (("nodes", 1), ("cpus", cpus), ("alloc_cpus", alloc), ("free_cpus", cpus - alloc),
                           ("real_memory_mb", mem), ("alloc_memory_mb", alloc_mem),
                           ("free_memory_mb", mem - alloc_mem),
                           ("fits_1cpu_1gb", min(cpus - alloc, (mem - alloc_mem) // 1024))):
            total[key] += value
    return total


def foreign_jobs(ledger: Ledger) -> List[str]:
    out = slurm_out("squeue", "-h", "-o", "%i %u %T %j")
    return [line for line in out.splitlines() if line.split()[0] not in ledger.jobs]
