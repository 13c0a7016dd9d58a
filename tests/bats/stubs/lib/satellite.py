#!/usr/bin/env python3
"""Fake Satellite management API, reached through the stand-in `curl`.

Speaks the protocol of docs/satellite-protocol.md: every reply is a body on stdout with "HTTP 200",
errors start with `Oops!`. State (alias -> state, jobid, port) lives in
$STUB_LOG/satellite.json under a lock. Each call is recorded as event "satellite"
with the endpoint, the parameters in order and the reply.

Knobs (environment):
  STUB_ALIAS           alias that getlink hands out (default: three words from a small list)
  STUB_SATELLITE_DOWN  non-empty: behave like an unreachable host (curl exit 7)
  STUB_SATELLITE_OOPS  comma-separated endpoints that answer `Oops! ...` whatever the state
  STUB_SATELLITE_SLOW  ENDPOINT=SECONDS: that endpoint records event "satellite-wait", then
                       sleeps SECONDS before it answers (a slow proxy during clean-up)
"""

import fcntl
import json
import os
import random
import re
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from stubrec import log_dir, record  # noqa: E402

VALUE_OPTIONS = {"--max-time", "-m", "--cacert", "--connect-timeout", "--noproxy", "-o", "--output",
                 "-H", "--header", "--retry"}
DATA_OPTIONS = {"--data-urlencode", "--data", "-d", "--data-raw"}
WORDS = ["wages", "astonish", "recapture", "otter", "lucky", "brave", "quartz", "maple", "sonic"]
JOBID = re.compile(r"[-a-zA-Z0-9._]{1,47}\Z")


def config_file(path):
    """curl's config file (`name = "value"` lines, as galyleo_curl_config writes them) as argv."""
    argv = []
    for line in open(path, encoding="utf-8").read().splitlines():
        name, _, value = line.partition(" = ")
        value = re.sub(r'\\(.)', lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), value[1:-1])
        argv += [value] if name == "url" else ["--" + name, value]
    return argv


def expand(argv):
    """ARGV with a config file's options (-K FILE) in its place."""
    out, items = [], iter(argv)
    for arg in items:
        if arg in ("-K", "--config"):
            next(items)  # the stand-in curl copied it (a pipe is read once)
            out += config_file(os.environ["STUB_CURL_CONFIG"])
        else:
            out.append(arg)
    return out


def parse(argv):
    """curl's argv (a config file's options in its place) -> (url, params as [name, value]
    pairs, options dict)."""
    url, params, options = None, [], {}
    items = iter(expand(argv))
    for arg in items:
        if arg in DATA_OPTIONS:
            name, _, value = next(items).partition("=")
            params.append([name, value])
        elif arg in VALUE_OPTIONS:
            options[arg] = next(items)
        elif arg.startswith("-"):
            options[arg] = True
        else:
            url = arg
    parts = urllib.parse.urlsplit(url or "")
    params = [list(p) for p in urllib.parse.parse_qsl(parts.query)] + params
    endpoint = os.path.basename(parts.path)
    endpoint = endpoint[:-4] if endpoint.endswith(".cgi") else endpoint
    return url, endpoint, params, options


def answer(endpoint, params, state):
    """The protocol's reply body for one call; mutates state."""
    given = dict(params)
    token = given.get("token")
    if endpoint not in ("getlink", "linktoken", "redeemtoken", "destroytoken", "tokenjobstate"):
        return None  # no such page: HTTP 404
    if endpoint == "getlink":
        alias = os.environ.get("STUB_ALIAS") or "-".join(random.sample(WORDS, 3))
        state[alias] = {"state": "pending", "jobid": None, "port": None}
        return f"Your token is \n{alias}\n"
    if endpoint == "tokenjobstate":
        entry = state.get(token or "")
        return {"pending": "PE", "mapped": "M"}.get(entry["state"], "U") if entry else ""
    if token is None:
        return "Oops! Missing 'token' parameter"
    entry = state.get(token)
    if endpoint == "linktoken":
        jobid = given.get("jobid", "")
        if entry is None:
            return "Oops! Unknown nonce"
        if not JOBID.match(jobid):
            return "Oops! Invalid jobid"
        if entry["jobid"] is not None:
            return "Oops! Nonce already linked to a jobid, you can do this only once!"
        entry["jobid"] = jobid
        return "Success! Token linked to jobid."
    if endpoint == "redeemtoken":
        port = given.get("port")
        if port is None:
            return "Oops! Missing 'port' parameter"
        if not port.isdigit() or not 1024 <= int(port) <= 65535:
            return "Oops! Port must be an integer between 1024 and 65535"
        if entry is None or entry["state"] != "pending":
            return "Oops! Unknown nonce or nonce already used"
        entry.update(state="mapped", port=int(port))
        return "Success!"
    if endpoint == "destroytoken":
        if entry is None:
            return "Oops! Unknown nonce"
        del state[token]
        return "Success! Token destroyed."
    return None


def main(argv):
    url, endpoint, params, options = parse(argv)
    if os.environ.get("STUB_SATELLITE_DOWN"):
        record("curl", "satellite", argv=argv, endpoint=endpoint, params=params, reply=None, exit=7)
        sys.stderr.write(f"curl: (7) Failed to connect to {urllib.parse.urlsplit(url).hostname} port 443\n")
        return 7
    slow_endpoint, _, seconds = os.environ.get("STUB_SATELLITE_SLOW", "").partition("=")
    if slow_endpoint and slow_endpoint == endpoint:
        record("curl", "satellite-wait", endpoint=endpoint)
        time.sleep(float(seconds))
    cacert = options.get("--cacert")
    if cacert and not os.path.isfile(cacert):
        record("curl", "satellite", argv=argv, endpoint=endpoint, params=params, reply=None, exit=77)
        sys.stderr.write(f"curl: (77) error setting certificate file: {cacert}\n")
        return 77
    with open(os.path.join(log_dir(), "satellite.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        path = os.path.join(log_dir(), "satellite.json")
        state = json.load(open(path)) if os.path.exists(path) else {}
        if endpoint in os.environ.get("STUB_SATELLITE_OOPS", "").split(","):
            body = f"Oops! stand-in told to fail {endpoint}"
        else:
            body = answer(endpoint, params, state)
        with open(path + ".tmp", "w") as handle:
            json.dump(state, handle)
        os.replace(path + ".tmp", path)
    if body is None:
        record("curl", "satellite", argv=argv, endpoint=endpoint, params=params, reply=None, exit=22)
        sys.stderr.write("curl: (22) The requested URL returned error: 404\n")
        return 22
    record("curl", "satellite", argv=argv, endpoint=endpoint, params=params, reply=body, exit=0)
    if endpoint == "redeemtoken" and body == "Success!":
        # tells the fake Jupyter (STUB_JUPYTER_EXIT=redeemed) the session is live;
        # written after the record so the log shows redeem before Jupyter's exit
        open(os.path.join(log_dir(), f"redeemed-{dict(params)['port']}"), "w").close()
    output = options.get("-o") or options.get("--output")
    if output and output != "-":
        with open(output, "w") as handle:
            handle.write(body)
    else:
        sys.stdout.write(body)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
