#!/usr/bin/python3
"""Stand-in for SDSC's Satellite reverse-proxy service (tests only).

Runs behind the private Apache started by `satellite-up`:

* the management port (loopback) receives `https://manage.<domain>/*.cgi`
  from Apache, which sets `X-Satellite-Client-Ip` to the real TCP peer
  address (overwriting anything the client sent), and the waiting pages of
  `https://<alias>.<domain>/` that are not routed yet;
* the control port (loopback, or the address given with --control-address:
  on the test cluster the proxy's public address, so that the laptop's tests
  reach it and the cluster's hosts do not) is a JSON API for tests (state,
  call log, reset, configuration, fault injection).

Routes go live by rewriting a RewriteMap text file (`alias ip:port` lines)
that Apache re-reads on the next request when its mtime changes: no restart,
so no connection of another session is ever dropped.

Standard library only; runs under Debian's /usr/bin/python3. The protocol is
docs/satellite-protocol.md (texts checked against the public
sdsc-hpc-training-org/satellite CGI scripts).
"""

import argparse
import ipaddress
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ENDPOINTS = ("getlink", "linktoken", "redeemtoken", "destroytoken", "tokenjobstate")
DEFAULT_CONFIG = {
    "route_delay": 0.0,  # seconds from redeem to live route (production: <= ~60)
    "unroute_delay": 0.0,  # seconds from destroy to route removal (production: <= ~60)
    "subnet": "127.0.0.0/8",  # the IP gate (production: the cluster's subnet); --subnet
    "ttl": 49 * 3600.0,  # expiry after the last change (production: 49 h)
    "tokenjobstate_staleness": False,  # True: "<secs> <code>" like the deployed CGI
    "faults": {},
}
# What a restart keeps (--state): the sessions' aliases and routes and the tests' records
# of them. The config is not kept: it is per test, and a restart brings a new program.
SAVED = ("aliases", "removals", "destroys", "calls_log")
MAX_CALLS = 20000
SQUEUE_TIMEOUT = 3.0
SQUEUE_CACHE_SECS = 2.0

# Slurm states (long and short forms), as the production configuration groups them.
JOB_WAIT = {"CF", "PD", "RF", "RH", "RQ", "CONFIGURING", "PENDING", "REQUEUE_FED",
            "REQUEUE_HOLD", "REQUEUED"}
JOB_RUN = {"R", "RUNNING"}
JOB_GONE = {"BF", "CA", "CG", "DL", "F", "NF", "OOM", "PR", "RD", "RV", "SI", "SE", "SO",
            "ST", "S", "TO", "BOOT_FAIL", "CANCELLED", "COMPLETING", "COMPLETED",
            "DEADLINE", "FAILED", "NODE_FAIL", "NODEFAIL", "OUT_OF_MEMORY", "OUTOFMEMORY",
            "PREEMPTED", "RESV_DEL_HOLD", "SIGNALING", "SPECIAL_EXIT", "STAGE_OUT",
            "STOPPED", "SUSPENDED", "TIMEOUT"}

WAITING_PAGE = """<!DOCTYPE html>
<html>
<head>
  <meta http-equiv="refresh" content="5">
  <title>Satellite Reverse Proxy (test stand-in)</title>
</head>
<body>
  <h1>Satellite Reverse Proxy Service</h1>
  <h2>Phase {phase} of 2: {title}</h2>
  <p>{text}</p>
  <p>This page reloads itself every 5 seconds.</p>
</body>
</html>
"""
GARBAGE = ("<html><head><title>Satellite</title></head><body>"
           "<p>Garbage reply injected by the satellite stand-in.</p></body></html>\n")


def now():
    return time.time()


class Oops(Exception):
    pass


class Satellite:
    """All state, behind one lock. Times are epoch seconds."""

    def __init__(self, root, domain, words, saved=None):
        self.root = root
        self.domain = domain
        self.words = words
        self.routes_file = os.path.join(root, "routes.txt")
        self.lock = threading.RLock()
        self.wake = threading.Condition(self.lock)
        self.rng = random.SystemRandom()
        self._squeue_cache = {}
        self._last_routes = None
        self._last_mtime_ns = 0
        self.reset(saved)

    # ---- bookkeeping -------------------------------------------------------
    def reset(self, saved=None):
        """Forget everything, or start from SAVED (what save() wrote) without a moment of no routes."""
        with self.lock:
            self.config = json.loads(json.dumps(DEFAULT_CONFIG))
            self.aliases = {}  # alias -> record
            self.removals = {}  # alias -> (due time, "ip:port") of destroyed routed aliases
            self.calls_log = []
            self.destroys = {}  # alias -> {"calls": n, "succeeded": m}
            for key in SAVED:
                if saved and key in saved:
                    setattr(self, key, saved[key])
            self.removals = {a: tuple(v) for a, v in self.removals.items()}
            self._squeue_cache = {}
            self._sync_routes()
            self.wake.notify_all()

    def save(self, path):
        """Write what a restart keeps to PATH (0600, atomically), for load_saved()."""
        with self.lock:
            tmp = path + ".tmp"
            with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as fh:
                json.dump({key: getattr(self, key) for key in SAVED}, fh)
            os.replace(tmp, path)

    def configure(self, new):
        with self.lock:
            if not isinstance(new, dict):
                raise ValueError("expected a JSON object")
            for key, value in new.items():
                if key == "faults":
                    if not isinstance(value, dict):
                        raise ValueError("faults must be an object")
                    for ep, fault in value.items():
                        ep = ep[:-4] if ep.endswith(".cgi") else ep
                        if ep not in ENDPOINTS:
                            raise ValueError("unknown endpoint %r" % ep)
                        if fault is None:
                            self.config["faults"].pop(ep, None)
                        elif fault in ("oops", "http500", "garbage", "refuse") or (
                                isinstance(fault, str) and re.fullmatch(r"slow:[0-9.]+", fault)):
                            self.config["faults"][ep] = fault
                        else:
                            raise ValueError("unknown fault %r" % (fault,))
                elif key == "subnet":
                    ipaddress.ip_network(value, strict=False)
                    self.config["subnet"] = str(value)
                elif key in ("route_delay", "unroute_delay", "ttl"):
                    value = float(value)
                    if value < 0:
                        raise ValueError("%s must be >= 0" % key)
                    self.config[key] = value
                elif key == "tokenjobstate_staleness":
                    self.config[key] = bool(value)
                else:
                    raise ValueError("unknown config key %r" % key)
            self._tick()
            self.wake.notify_all()
            return self.snapshot_config()

    def snapshot_config(self):
        return json.loads(json.dumps(self.config))

    def state(self):
        with self.lock:
            self._tick()
            return [dict(r) for r in sorted(self.aliases.values(), key=lambda r: r["created"])]

    def _tick(self):
        """Expire old aliases and turn due mapped aliases into routes."""
        t = now()
        changed = False
        ttl = self.config["ttl"]
        for alias, rec in list(self.aliases.items()):
            if rec["changed"] < t - ttl:
                del self.aliases[alias]
                changed = True
        for alias, rec in self.aliases.items():
            if rec["state"] == "mapped" and t >= rec["changed"] + self.config["route_delay"]:
                rec["state"] = "proxied"
                rec["routed"] = t
                changed = True
        for alias, (due, _) in list(self.removals.items()):
            if t >= due:
                del self.removals[alias]
                changed = True
        if changed or self._last_routes is None:
            self._sync_routes()

    def next_due(self):
        """Seconds until the next scheduled change, or None."""
        dues = [r["changed"] + self.config["route_delay"]
                for r in self.aliases.values() if r["state"] == "mapped"]
        dues += [d for d, _ in self.removals.values()]
        return (min(dues) - now()) if dues else None

    def _sync_routes(self):
        """Write the RewriteMap file when the set of live routes changed."""
        routes = {a: "%s:%d" % (r["host"], r["port"])
                  for a, r in self.aliases.items() if r["state"] == "proxied"}
        for alias, (_, target) in self.removals.items():
            routes.setdefault(alias, target)
        if routes == self._last_routes:
            return
        lines = ["# alias ip:port -- written by satellite_standin.py, read by Apache\n"]
        lines += ["%s %s\n" % (a, routes[a]) for a in sorted(routes)]
        tmp = self.routes_file + ".tmp"
        with open(tmp, "w") as fh:
            fh.writelines(lines)
        os.chmod(tmp, 0o644)
        # mod_rewrite reloads a txt map when its mtime changes: make sure it does.
        mtime = max(time.time_ns(), self._last_mtime_ns + 1_000_000)
        os.utime(tmp, ns=(mtime, mtime))
        os.replace(tmp, self.routes_file)
        self._last_mtime_ns = mtime
        self._last_routes = routes

    def scheduler(self):
        with self.lock:
            while True:
                self._tick()
                due = self.next_due()
                self.wake.wait(timeout=None if due is None else max(0.005, min(due, 60.0)))

    def log_call(self, endpoint, params, ip, status, reply, fault, started):
        with self.lock:
            self.calls_log.append({
                "endpoint": endpoint, "params": params, "client_ip": ip,
                "status": status, "reply": reply, "fault": fault,
                "time": started, "duration": round(now() - started, 4),
            })
            del self.calls_log[:-MAX_CALLS]

    # ---- the protocol ------------------------------------------------------
    def gate(self, ip, where):
        net = ipaddress.ip_network(self.config["subnet"], strict=False)
        try:
            inside = ipaddress.ip_address(ip) in net
        except ValueError:
            inside = False
        if not inside:
            raise Oops("Client (your) IP not in range %s, please try from %s." % (
                self.config["subnet"], where))

    def new_alias(self):
        for _ in range(1000):
            alias = "-".join(self.rng.choice(self.words) for _ in range(3))
            if alias not in self.aliases:
                return alias
        raise Oops("Problem generating unique URL. Sorry!")

    def handle(self, endpoint, method, params, ip):
        """Return the reply body (success) or raise Oops."""
        with self.lock:
            self._tick()
            token = params.get("token", "")
            if endpoint == "getlink":
                self.gate(ip, "within the cluster")
                alias = self.new_alias()
                t = now()
                self.aliases[alias] = {
                    "alias": alias, "state": "pending", "jobid": None, "host": None,
                    "port": None, "created": t, "changed": t, "routed": None,
                    "requested_from": ip,
                }
                return "Your token is \n%s\n" % alias
            if method != "GET":
                raise Oops("Only GET method is supported")
            if endpoint == "linktoken":
                if not token:
                    raise Oops("Missing 'token' parameter")
                jobid = re.sub(r"[^-a-zA-Z0-9._]", "", re.sub(r"\s", "", params.get("jobid", "")))
                if not jobid or len(jobid) >= 48:
                    raise Oops("Missing 'jobid' parameter")
                self.gate(ip, "within the cluster")
                rec = self.aliases.get(token)
                if rec is None:
                    raise Oops("Unknown nonce or nonce already destroyed")
                if rec["jobid"]:
                    raise Oops("Nonce already linked to a jobid, you can do this only once!")
                rec["jobid"] = jobid
                return "Success! Token linked to jobid.\n"
            if endpoint == "redeemtoken":
                if not token:
                    raise Oops("Missing 'token' parameter")
                port = params.get("port", "")
                if not port:
                    raise Oops("Missing 'port' parameter, or try 'revssh=1' instead")
                if not (re.fullmatch(r"[0-9]{4,5}", port) and 1023 < int(port) < 65536):
                    raise Oops("'port' parameter isn't an integer between 1024 and 65535")
                self.gate(ip, "the compute node running your service")
                rec = self.aliases.get(token)
                if rec is None or rec["state"] != "pending":
                    raise Oops("Unknown nonce or nonce already used")
                rec.update(state="mapped", host=ip, port=int(port), changed=now())
                self.wake.notify_all()
                self._tick()
                return "Success!\n"
            if endpoint == "destroytoken":
                if not token:
                    raise Oops("Missing 'token' parameter")
                self.gate(ip, "the compute node running your service")
                rec = self.aliases.get(token)
                if rec is None:
                    raise Oops("Unknown nonce or nonce already destroyed")
                if rec["host"] and rec["host"] != ip:
                    raise Oops("Nonce must be destroyed from host it was redeemed on")
                del self.aliases[token]
                self.destroys.setdefault(token, {"calls": 0, "succeeded": 0})["succeeded"] += 1
                if rec["state"] == "proxied":
                    self.removals[token] = (now() + self.config["unroute_delay"],
                                            "%s:%d" % (rec["host"], rec["port"]))
                self._tick()
                self.wake.notify_all()
                return "Success! Token destroyed.\n"
            if endpoint == "tokenjobstate":
                if not token:
                    raise Oops("Missing 'token' parameter")
                if "." in token:
                    token = token.split(".")[0]
                    if not token:
                        raise Oops("Missing 'token' parameter")
                rec = self.aliases.get(token)
                if rec is None:
                    return ""
                rec = dict(rec)
        # Outside the lock: squeue may take a moment.
        code = self.jobstate_code(rec)
        if self.config["tokenjobstate_staleness"]:
            return "%d %s" % (now() - rec["changed"], code)
        return code

    def jobstate_code(self, rec):
        basic = {"pending": "PE", "mapped": "M", "proxied": "PR"}.get(rec["state"], "U")
        job = self.slurm_state(rec["jobid"]) if rec["jobid"] else "U"
        if job == "G":
            return "D"
        if job == "W":
            return "Q" if rec["state"] == "pending" else basic
        if job == "R":
            return "R" if rec["state"] == "pending" else basic
        return basic

    def slurm_state(self, jobid):
        """W(aiting), R(unning), G(one) or U(nknown), from squeue, cached briefly."""
        cached = self._squeue_cache.get(jobid)
        if cached and now() - cached[0] < SQUEUE_CACHE_SECS:
            return cached[1]
        try:
            proc = subprocess.run(["squeue", "-h", "-j", jobid, "-o", "%T"],
                                  capture_output=True, text=True, timeout=SQUEUE_TIMEOUT)
            out = proc.stdout.strip().upper()
            if proc.returncode == 0 and out:
                first = out.split()[0]
                state = ("G" if first in JOB_GONE else "R" if first in JOB_RUN
                         else "W" if first in JOB_WAIT else "U")
            elif proc.returncode == 0 or "INVALID JOB ID" in proc.stderr.upper():
                state = "G"  # finished and purged (or never existed)
            else:
                state = "U"  # slurmctld unreachable
        except (OSError, subprocess.TimeoutExpired):
            state = "U"  # no Slurm here, or too slow
        self._squeue_cache[jobid] = (now(), state)
        return state

    def waiting(self, host_alias):
        """Body of https://<alias>.<domain>/ while no route is live."""
        with self.lock:
            self._tick()
            rec = self.aliases.get(host_alias.lower())
            st = rec["state"] if rec else None
        if st == "pending":
            return "text/html", WAITING_PAGE.format(
                phase=1, title="Pending", text="Waiting for your job to start on a compute node...")
        if st in ("mapped", "proxied"):
            return "text/html", WAITING_PAGE.format(
                phase=2, title="Mapped",
                text="Your job has started and checked in with the proxy. "
                     "Please wait for the URL mapping to take effect.")
        return "text/plain", "Please see documentation on how to use this service.\n"


class ManageHandler(BaseHTTPRequestHandler):
    """Behind Apache: management CGIs and waiting pages."""

    server_version = "satellite-standin"
    sat = None  # set in main

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, body, ctype="text/plain"):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype + "; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def do_HEAD(self):
        self.do_GET()

    def do_POST(self):
        self.do_GET()

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        ip = self.headers.get("X-Satellite-Client-Ip")
        if not ip:
            return self.reply(403, "Oops! Direct access to the stand-in backend: go through Apache\n")
        m = re.fullmatch(r"/__satellite_waiting__/([^/]*)", url.path)
        if m:
            ctype, body = self.sat.waiting(urllib.parse.unquote(m.group(1)))
            return self.reply(200, body, ctype)
        m = re.fullmatch(r"/([a-z]+)\.cgi", url.path)
        endpoint = m.group(1) if m and m.group(1) in ENDPOINTS else None
        if endpoint is None:
            return self.reply(200, "Please see documentation on how to use this service.\n")
        started = now()
        # CGI.pm semantics: the first value of each parameter, query string only.
        params = {}
        for k, v in urllib.parse.parse_qsl(url.query, keep_blank_values=True):
            params.setdefault(k, v)
        with self.sat.lock:
            fault = self.sat.config["faults"].get(endpoint)
            if endpoint == "destroytoken" and params.get("token"):
                self.sat.destroys.setdefault(params["token"], {"calls": 0, "succeeded": 0})["calls"] += 1
        status, body = 200, None
        if fault and fault.startswith("slow:"):
            time.sleep(float(fault[5:]))
        if fault == "refuse":
            self.sat.log_call(endpoint, params, ip, None, None, fault, started)
            self.close_connection = True
            return  # nothing at all: Apache answers 502 to the client
        if fault == "oops":
            body = "Oops! Injected fault (satellite stand-in)\n"
        elif fault == "http500":
            status, body = 500, "Internal Server Error (injected by the satellite stand-in)\n"
        elif fault == "garbage":
            body = GARBAGE
        else:
            try:
                body = self.sat.handle(endpoint, self.command, params, ip)
            except Oops as exc:
                body = "Oops! %s\n" % exc
            except Exception as exc:  # a stand-in bug must be visible
                status, body = 500, "stand-in error: %r\n" % (exc,)
        self.sat.log_call(endpoint, params, ip, status, body, fault, started)
        self.reply(status, body)


class ControlHandler(BaseHTTPRequestHandler):
    server_version = "satellite-standin-control"
    sat = None

    def log_message(self, fmt, *args):
        pass

    def send_json(self, obj, status=200):
        data = (json.dumps(obj, indent=1, sort_keys=True) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        path = urllib.parse.urlsplit(self.path).path.rstrip("/")
        sat = self.sat
        if path == "/state":
            return self.send_json(sat.state())
        if path == "/calls":
            with sat.lock:
                return self.send_json(list(sat.calls_log))
        if path == "/config":
            with sat.lock:
                return self.send_json(sat.snapshot_config())
        if path == "/destroys":
            with sat.lock:
                return self.send_json(sat.destroys)
        if path == "/routes":
            with sat.lock:
                sat._tick()
                return self.send_json(sat._last_routes)
        if path in ("", "/health"):
            return self.send_json({"ok": True, "pid": os.getpid(), "domain": sat.domain,
                                   "words": len(sat.words)})
        self.send_json({"error": "unknown path %s" % path}, 404)

    def do_POST(self):
        path = urllib.parse.urlsplit(self.path).path.rstrip("/")
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if path == "/reset":
            self.sat.reset()
            return self.send_json({"ok": True})
        if path == "/config":
            try:
                cfg = self.sat.configure(json.loads(raw or b"{}"))
            except (ValueError, TypeError) as exc:
                return self.send_json({"error": str(exc)}, 400)
            return self.send_json(cfg)
        self.send_json({"error": "unknown path %s" % path}, 404)


def load_words(path):
    with open(path) as fh:
        words = sorted({w.strip() for w in fh if re.fullmatch(r"[a-z]+", w.strip())})
    if len(words) < 1000:
        sys.exit("word list %s has only %d usable words" % (path, len(words)))
    return words


def load_saved(path):
    """What the previous run saved at PATH (used once: the file goes), or None."""
    if not path or not os.path.exists(path):
        return None
    with open(path) as fh:
        saved = json.load(fh)
    os.remove(path)
    return saved


def save_on_term(sat, path):
    """On SIGTERM (satellite-up's restart), save the state to PATH and leave."""
    def stop(signum, frame):
        sat.save(path)
        os._exit(0)
    signal.signal(signal.SIGTERM, stop)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", required=True, help="state directory (routes.txt lives here)")
    ap.add_argument("--domain", default="satellite.test")
    ap.add_argument("--words", required=True)
    ap.add_argument("--manage-port", type=int, required=True)
    ap.add_argument("--control-port", type=int, required=True)
    ap.add_argument("--control-address", default="127.0.0.1")
    ap.add_argument("--subnet", default=DEFAULT_CONFIG["subnet"],
                    help="the IP gate after start and after every reset")
    ap.add_argument("--state", help="aliases and routes: saved here on SIGTERM, taken back at start")
    args = ap.parse_args()
    DEFAULT_CONFIG["subnet"] = str(ipaddress.ip_network(args.subnet, strict=False))

    sat = Satellite(args.root, args.domain, load_words(args.words), load_saved(args.state))
    if args.state:
        save_on_term(sat, args.state)
    ManageHandler.sat = ControlHandler.sat = sat
    ThreadingHTTPServer.daemon_threads = True
    manage = ThreadingHTTPServer(("127.0.0.1", args.manage_port), ManageHandler)
    control = ThreadingHTTPServer((args.control_address, args.control_port), ControlHandler)
    threading.Thread(target=sat.scheduler, daemon=True).start()
    threading.Thread(target=manage.serve_forever, daemon=True).start()
    print("satellite stand-in: manage 127.0.0.1:%d control %s:%d, gate %s, %d words" % (
        args.manage_port, args.control_address, args.control_port, DEFAULT_CONFIG["subnet"],
        len(sat.words)), flush=True)
    control.serve_forever()


if __name__ == "__main__":
    main()
