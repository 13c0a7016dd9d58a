"""The laptop end of an ssh-mode session: a forward on the shared login, held in the foreground.

Input: the remote galyleo's JSON for one session (`ssh_argv`, whose `-L 127.0.0.1:PORT:NODE:
NODEPORT` names the local port Jupyter expects as its origin, and `url`). The same port is
forwarded to the node through the master (sshmaster.forward: never in argv), the local URL
printed last, and galyleo waits: Ctrl-C (or TERM, HUP) cancels the forward and leaves the
session running, saying how to reopen it; `--stop-on-exit` stops it instead. A session that
ends meanwhile ends the wait.
"""

from __future__ import annotations

import re
import sys
import time
from dataclasses import dataclass
from typing import Any, Dict, List

from galyleo import sshmaster
from galyleo.errors import GalyleoError

POLL_SECONDS = 30  # how often the session's state is asked (it also keeps the shared login in use)
SPEC = re.compile(r"127\.0\.0\.1:(?P<local>[0-9]{1,5}):"
                  r"(?P<node>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(?P<port>[0-9]{1,5})\Z")


@dataclass(frozen=True)
class Forward:
    """The laptop's loopback port, and where the login node connects it to."""

    local_port: int
    node: str
    port: int

    @property
    def spec(self) -> str:
        return sshmaster.forward_spec(self.local_port, self.node, self.port)


def forward_of(doc: Dict[str, Any]) -> Forward:
    """The forward in DOC's ssh_argv (the word after -L), checked; the URL must use its port."""
    argv: List[str] = [str(word) for word in doc.get("ssh_argv") or []]
    found = SPEC.match(argv[argv.index("-L") + 1]) if "-L" in argv[:-1] else None
    if not found or not str(doc.get("url", "")).startswith(f"http://127.0.0.1:{found['local']}/"):
        raise GalyleoError(f"session {doc.get('job_id')}: the remote galyleo gave no tunnel this one understands")
    return Forward(int(found["local"]), found["node"], int(found["port"]))


def hold(remote: Any, doc: Dict[str, Any], flags: List[str], quiet: bool) -> int:
    """Open the tunnel, print the local URL, wait; close it (and stop the session if asked)."""
    from galyleo.interrupts import Held, ending_raises

    job, host = str(doc.get("job_id", "")), remote.host
    if not doc.get("ssh_argv"):
        raise GalyleoError(f"job {job} has no tunnel to open (state {doc.get('state', 'unknown')}): "
                           "the job writes it once Jupyter answers")
    forward = forward_of(doc)
    opened = sshmaster.forward(remote.master, forward.spec)
    if opened.returncode != 0:
        sys.stderr.write(opened.stderr)
        raise GalyleoError(f"could not open the tunnel on 127.0.0.1:{forward.local_port} (is another program "
                           f"using that port?); {still_runs(host, job)}")
    ended = False
    try:
        if not quiet:
            print(f"Tunnel open to session {job} on {host}; it stays open while galyleo runs here "
                  "(Ctrl-C closes it, the session keeps running). Open in your browser:")
        show_url(str(doc["url"]), flags)
        with ending_raises():
            ended = wait(remote, job)
    except KeyboardInterrupt:
        pass
    finally:
        with Held():
            sshmaster.forward(remote.master, forward.spec, "cancel")
    if ended:
        sys.stderr.write(f"galyleo: session {job} on {host} has ended; tunnel closed\n")
        return 0
    if "--stop-on-exit" in flags:
        sys.stderr.write(f"galyleo: tunnel closed; stopping session {job} on {host} (--stop-on-exit)\n")
        return int(remote.passthrough(["stop", job]))
    sys.stderr.write(f"galyleo: tunnel closed; {still_runs(host, job)}\n")
    return 0


def still_runs(host: str, job: str) -> str:
    return (f"session {job} is still running on {host}: reopen the tunnel with `galyleo --host {host} open {job}`, "
            f"end the session with `galyleo --host {host} stop {job}`")


def wait(remote: Any, job: str) -> bool:
    """Until the session ends (True); a lost connection is an error. Ctrl-C raises out of here."""
    import json

    while True:
        time.sleep(POLL_SECONDS)
        done = remote.capture(["status", "--json", job])
        if done.returncode == 255:
            raise GalyleoError(f"the connection to {remote.host} was lost, and the tunnel with it; "
                               f"{still_runs(remote.host, job)}")
        try:
            state = json.loads(done.stdout).get("state") if done.returncode == 0 else None
        except (ValueError, AttributeError):
            state = None
        if state == "ENDED":
            return True


def show_url(url: str, flags: List[str]) -> int:
    """URL as the last line of stdout; with --browser also in the browser."""
    print(url, flush=True)
    if "--browser" in flags and url:
        import webbrowser

        webbrowser.open(url)
    return 0
