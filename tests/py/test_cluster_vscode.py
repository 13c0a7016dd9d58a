"""VS Code (`-i vscode`) on the real cluster: real code-server from npm (an Lmod module, built by
tests/harness/vscode-up), run by real Jupyter's server through jupyter-server-proxy, reached
from the laptop (this namespace) through the Satellite stand-in and real Apache HTTPS, with
a cookie jar as a browser keeps. The ssh-tunnel case is in test_cluster_ssh.py.

The sessions are launched together (one fixture), so that the idle pair's minutes of waiting
overlap the other checks: the module costs about one idle ending, not the sum.
"""

from __future__ import annotations

import datetime
import json
import os
import pwd
import re
import subprocess
import threading
import time
import urllib.parse
import uuid
from typing import Dict, Iterator, List, Set, Tuple

import pytest
from cluster import (
    Browser,
    Cluster,
    Launched,
    launched_together,
    neighbour,
    on,
    sat,
    slurm,
    vscode_ready,
    wait_for_page,
)
from headless import Chromium, open_vscode_terminal, run_in_terminal
from test_cluster_idle import assert_ended_idle
from test_vscode_extension import load

pytestmark = pytest.mark.cluster

WORKBENCH = "vscode-workbench-web-configuration"  # in code-server's page, and nowhere in Jupyter's
KEEP_ALIVE = 9  # VS Code's protocol: the server's keep-alive message type (first byte of its 13-byte header)
IDLE_MINUTES = 1
MARGIN = IDLE_MINUTES * 60 + 60 + 60 + 60  # timeout, Jupyter's once-a-minute check, exit, a loaded machine


def ws_url(launched: Launched) -> str:
    """The URL VS Code's workbench opens for its connection to the server (through Jupyter)."""
    return (f"wss://{urllib.parse.urlsplit(launched.origin).hostname}/vscode/?reconnectionToken={uuid.uuid4()}"
            "&reconnection=false&skipWebSocketFrames=false")


def keep_alive(ws) -> bytes:
    """The first message the server sends on a fresh connection: VS Code's keep-alive."""
    message = ws.recv()
    assert isinstance(message, bytes) and message[0] == KEEP_ALIVE, message
    return message


def hold(launched: Launched, browser: Browser, stop: threading.Event) -> List[int]:
    """A connected tab: VS Code's connection held open, its keep-alives read, until STOP. The list
    counts the keep-alives read (the connection is alive while it grows)."""
    ws = sat.ws_connect(ws_url(launched), headers={"Origin": launched.origin, "Cookie": browser.cookie_header()},
                        timeout=30)
    seen = [0]

    def read() -> None:
        try:
            while not stop.is_set():
                keep_alive(ws)
                seen[0] += 1
        except (OSError, ConnectionError, AssertionError):
            return
        finally:
            ws.close()

    threading.Thread(target=read, daemon=True).start()
    return seen


def code_servers(user: str) -> List[Tuple[int, List[str]]]:
    """USER's code-server processes (pid, argv), on any host (the hosts share one pid namespace)."""
    uid, found = pwd.getpwnam(user).pw_uid, []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.stat(f"/proc/{entry}").st_uid != uid:
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                argv = [part.decode(errors="replace") for part in handle.read().split(b"\0")[:-1]]
        except OSError:
            continue
        if any(part.endswith("code-server") for part in argv[:2]) and "--socket" in argv:
            found.append((int(entry), argv))
    return found


PROCESSES = load()  # the job's own extension: its reading of /proc (processes, children, descendants)


def parent_of(pid: int) -> int:
    return PROCESSES.processes()[pid][0]


def tree(root: int) -> Set[int]:
    """ROOT and every process below it."""
    return {root, *PROCESSES.descendants(root, PROCESSES.children(PROCESSES.processes()))}


def node_of(job_id: str) -> str:
    return slurm("squeue", "-h", "-j", job_id, "-o", "%N", check=True).stdout.strip()


def alias_entry(alias: str):
    return next((a for a in sat.state() if a["alias"] == alias), None)


@pytest.fixture(scope="module")
def sessions(cluster: Cluster) -> Iterator[Dict[str, object]]:
    """Launched at once: `main` (in a folder whose name has a space, braces and a `$`), `lab` (with
    code-server on PATH: the launcher case), and the idle pair with --idle-timeout 1: `abandoned`
    (its page loaded once, then nothing) and `connected` (its VS Code connection held open); and
    `terminal` (--idle-timeout 1): a real browser opens its workbench and a terminal, runs a
    command there, and is closed while the command runs."""
    modules = vscode_ready()
    with launched_together(cluster) as (launched, stop):
        found: Dict[str, object] = {"stop": stop}
        folder = os.path.join(cluster.fresh_home(), "my {code} $HOME")
        os.mkdir(folder, 0o700)
        os.chown(folder, *pwd.getpwnam(cluster.user)[2:4])
        found["folder"] = folder
        for name in ("abandoned", "connected", "terminal"):
            launched[name] = cluster.launch("--idle-timeout", str(IDLE_MINUTES), interface="vscode", modules=modules)
        launched["main"] = cluster.launch("-d", folder, interface="vscode", modules=modules)
        launched["lab"] = cluster.launch(interface="lab", modules=modules)
        browsers = {name: wait_for_page(s.url, "JupyterLab" if name == "lab" else WORKBENCH, timeout=180)
                    for name, s in launched.items()}
        found["connected_seen"] = hold(launched["connected"], browsers["connected"], stop)
        found["terminal_left"] = leave_a_command_running(cluster, launched["terminal"])
        found["browsers"] = browsers
        found.update(launched)
        yield found


def of_job(pid: int, job_id: str) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            return f"SLURM_JOB_ID={job_id}".encode() in handle.read().split(b"\0")
    except OSError:
        return False


def jupyter_of(user: str, launched: Launched) -> int:
    """The pid of the session's Jupyter server: the parent of its code-server (the one its job started)."""
    for pid, _ in code_servers(user):
        if of_job(parent_of(pid), launched.job_id):
            return parent_of(pid)
    raise AssertionError(f"no code-server of job {launched.job_id}")


def leave_a_command_running(cluster: Cluster, launched: Launched) -> float:
    """In a real browser: open the session, a VS Code terminal, run a command there; once the
    command runs (seen the way the job's Jupyter sees it), close the browser. When it closed."""
    jupyter = jupyter_of(cluster.user, launched)
    with Chromium(cluster.env) as browser:
        open_vscode_terminal(browser, launched.url)
        # VS Code may start a new terminal's shell again once its extensions have set up their
        # environment, and what was typed goes with the first: type until the command runs.
        deadline = time.time() + 120
        while PROCESSES.busy_terminals(jupyter) != 1:
            assert time.time() < deadline, "the command typed into VS Code's terminal never ran"
            run_in_terminal(browser, "sleep 900")
            typed = time.time()
            while PROCESSES.busy_terminals(jupyter) != 1 and time.time() < typed + 10:
                time.sleep(0.5)
    return time.time()


def test_the_printed_url_opens_vscode_in_its_folder_and_it_connects(cluster: Cluster, sessions) -> None:
    launched, browser, folder = sessions["main"], sessions["browsers"]["main"], sessions["folder"]
    # One click: the printed URL (`/?token=`) led through Jupyter's login cookie to the workbench.
    status, body, final = browser.get(launched.url)
    assert status == 200 and WORKBENCH in body and "/vscode/" in final, (status, final)
    assert "token" not in final  # the landing page took it; VS Code's address bar never shows it
    # From here on only the cookie, as a browser: VS Code's connection opens and the server talks.
    ws = sat.ws_connect(ws_url(launched), headers={"Origin": launched.origin, "Cookie": browser.cookie_header()},
                        timeout=30)
    try:
        keep_alive(ws)
    finally:
        ws.close()
    # It opened --notebook-dir (a name with a space, braces and a `$` reaches it intact).
    mine = code_servers(cluster.user)
    assert any(argv[-1] == folder for _, argv in mine), mine
    # The token is in no process's argv, not in the script, not in the job output.
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    assert launched.token not in ps
    assert launched.token not in open(launched.script).read()
    output = cluster.output(launched)
    assert launched.token not in output


def test_without_the_token_nothing_of_it_is_served(sessions) -> None:
    launched = sessions["main"]
    stranger = Browser()
    for path in ("/vscode/", "/vscode/healthz", "/vscode/static/out/vs/code/browser/workbench/workbench.html"):
        status, body, final = stranger.get(launched.origin + path)
        assert WORKBENCH not in body and '"alive"' not in body and (status in (401, 403) or "/login" in final), \
            (path, status, final)
    with pytest.raises(ConnectionError):
        sat.ws_connect(ws_url(launched), headers={"Origin": launched.origin})
    # With the cookie but from another site's page: refused too.
    with pytest.raises(ConnectionError):
        sat.ws_connect(ws_url(launched), headers={"Origin": "https://evil.example.org",
                                                  "Cookie": sessions["browsers"]["main"].cookie_header()})


def test_as_another_user_on_the_node_nothing_of_it_can_be_reached(cluster: Cluster, sessions) -> None:
    launched = sessions["main"]
    node, port = node_of(launched.job_id), alias_entry(launched.alias)["port"]
    uid = pwd.getpwnam(cluster.user).pw_uid
    (pid, argv), = [found for found in code_servers(cluster.user) if found[1][-1] == sessions["folder"]]
    session = tree(parent_of(pid))  # Jupyter's server and all below it: code-server, its hosts
    # No TCP port of code-server's: the session's only listener on the node is Jupyter's.
    listeners = subprocess.run(on(node, ["ss", "-Hltnp"]), capture_output=True, text=True, check=True).stdout
    ports = {int(line.split()[3].rsplit(":", 1)[1]) for line in listeners.splitlines()
             if session & {int(p) for p in re.findall(r"pid=(\d+)", line)}}
    assert ports == {port}, listeners
    # Its unix socket: 0600 in a 0700 folder of the session user's; the neighbour cannot connect.
    socket_path = argv[argv.index("--socket") + 1]
    assert os.stat(socket_path).st_mode & 0o777 == 0o600 and os.stat(os.path.dirname(socket_path)).st_uid == uid
    assert os.stat(os.path.dirname(socket_path)).st_mode & 0o777 == 0o700
    her = subprocess.run(on(node, ["curl", "-s", "--max-time", "5", "--unix-socket", socket_path,
                                   "http://localhost/healthz"], neighbour(cluster.env)), capture_output=True, text=True)
    assert her.returncode != 0 and "alive" not in her.stdout, her
    # And straight at Jupyter's port, without the token: no VS Code.
    address = f"{launched_address(launched)}:{port}"
    for path in ("/vscode/healthz", "/vscode/"):
        reply = subprocess.run(on(node, ["curl", "-s", "--max-time", "5", "-w", "\n%{http_code}",
                                         f"http://{address}{path}"], neighbour(cluster.env)),
                               capture_output=True, text=True).stdout
        assert reply.rsplit("\n", 1)[-1] in ("302", "401", "403") and "alive" not in reply, (path, reply)


def launched_address(launched: Launched) -> str:
    return alias_entry(launched.alias)["host"]


def test_a_lab_session_with_code_server_offers_vscode_in_its_launcher(sessions) -> None:
    launched, browser = sessions["lab"], sessions["browsers"]["lab"]
    status, body, _ = browser.get(f"{launched.origin}/server-proxy/servers-info")
    assert status == 200, (status, body[:500])
    entries = {entry["name"]: entry for entry in json.loads(body)["server_processes"]}
    assert entries["vscode"]["launcher_entry"]["title"] == "VS Code", entries
    assert entries["vscode"]["launcher_entry"]["enabled"] is True
    status, body, _ = browser.get(f"{launched.origin}/vscode/healthz", timeout=60)
    assert status == 200 and '"alive"' in body, body


def test_stop_releases_the_alias_once_and_leaves_no_code_server(cluster: Cluster, sessions) -> None:
    launched = sessions["main"]
    assert any(argv[-1] == sessions["folder"] for _, argv in code_servers(cluster.user))
    done = cluster.galyleo("stop", launched.job_id)
    assert done.returncode == 0, done.stderr
    cluster.wait_job_gone(launched.job_id)
    deadline = time.time() + 30
    while time.time() < deadline and (alias_entry(launched.alias) or any(
            argv[-1] == sessions["folder"] for _, argv in code_servers(cluster.user))):
        time.sleep(0.5)
    assert alias_entry(launched.alias) is None
    assert not [argv for _, argv in code_servers(cluster.user) if argv[-1] == sessions["folder"]]
    assert sat.destroy_count(launched.alias) == 1


def test_an_abandoned_vscode_ends_idle_and_a_connected_one_does_not(cluster: Cluster, sessions) -> None:
    abandoned, connected = sessions["abandoned"], sessions["connected"]
    seen = sessions["connected_seen"]
    cluster.wait_job_gone(abandoned.job_id, timeout=MARGIN)
    assert_ended_idle(cluster, abandoned)  # its own line, no SIGTERM, the alias released once
    text = cluster.output(abandoned)
    assert "galyleo_vscode | extension was successfully loaded" in text, text[-3000:]
    # Jupyter's server shut itself down, and what it ran ended with the job (the job's process group).
    assert not [pid for pid, _ in code_servers(cluster.user) if of_job(pid, abandoned.job_id)]
    # The connected tab's session, and the one whose terminal runs a command with its browser
    # gone, outlive the abandoned one by a full check of Jupyter's and more.
    terminal, left = sessions["terminal"], sessions["terminal_left"]
    until = time.time() + 75
    while time.time() < until:
        for launched in (connected, terminal):
            assert cluster.job_state(launched.job_id) == "RUNNING", cluster.output(launched)[-2000:]
        time.sleep(5)
    assert time.time() > left + IDLE_MINUTES * 60 + 60 + 30  # past the timeout and Jupyter's check since
    # What kept it is the terminal: Jupyter's last activity moved on after the browser was gone.
    done = cluster.galyleo("status", terminal.job_id, "--json")
    assert done.returncode == 0, done.stderr
    ends = datetime.datetime.fromisoformat(json.loads(done.stdout)["idle_ends"].replace("Z", "+00:00"))
    # idle_ends is Jupyter's last activity + the timeout + its once-a-minute check: that last
    # activity came at least a minute after the browser was closed.
    assert ends.timestamp() > left + 60 + IDLE_MINUTES * 60 + 60, (done.stdout, left)
    before = seen[0]
    time.sleep(6)
    assert seen[0] > before, "the held VS Code connection stopped receiving keep-alives"
