"""Idle culling on the real cluster with real Jupyter (--idle-timeout 1): sessions end by
themselves when idle, a kernel running code is never culled, a kernel idle with its
WebSocket still connected is culled. The sessions of this module are launched together
(one fixture) and each test then waits for its own ending, so the module costs about
the longest of them (the busy kernel: about 6 minutes), not their sum.

Bounds: jupyter_server checks for no activity once a minute and culls kernels every
cull interval (15 s for 1 minute), so an idle session ends within
timeout + interval + 60 s after its last activity, plus Jupyter's exit and Slurm's
clean-up; MARGIN is that plus slack for a loaded 2-core machine.
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.parse
import uuid
from typing import Dict, Iterator, Optional

import pytest
from cluster import Cluster, Launched, execute, launched_together, run_code, sat, wait_for_page

pytestmark = pytest.mark.cluster

TIMEOUT = 60
MARGIN = TIMEOUT + 15 + 60 + 60
BUSY_SECONDS = 3 * TIMEOUT + 20  # longer than three timeouts


def start_code(launched: Launched, browser, code: str) -> None:
    """Send CODE to a new kernel and disconnect once the kernel says it is busy running it."""
    base = launched.origin
    execute(base, f"wss://{urllib.parse.urlsplit(base).hostname}", browser, code, base, sat.ws_connect, busy,
            "the kernel never started running the code")


def busy(message: dict) -> Optional[str]:
    """'busy' once the kernel says it is running the code."""
    state = message["content"].get("execution_state") if message["msg_type"] == "status" else None
    return "busy" if state == "busy" else None


def hold_websocket(launched: Launched, browser, stop: threading.Event) -> threading.Thread:
    """A kernel that ran `print(2)` and is then idle, with a WebSocket client that stays
    connected (answering pings) until STOP or until the server closes it."""
    assert run_code(launched, browser, "print(2)") == "2\n"
    status, body, _ = browser.get(f"{launched.origin}/api/kernels")
    kernel_id = json.loads(body)[0]["id"]
    host = urllib.parse.urlsplit(launched.origin).hostname
    ws = sat.ws_connect(f"wss://{host}/api/kernels/{kernel_id}/channels?session_id={uuid.uuid4().hex}",
                        headers={"Origin": launched.origin, "Cookie": browser.cookie_header()}, timeout=5)

    def read() -> None:
        while not stop.is_set():
            try:
                ws.recv()
            except TimeoutError:
                continue
            except (OSError, ConnectionError, ValueError):
                return

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def wait_ended(cluster: Cluster, launched: Launched, seconds: float) -> float:
    """Wait (bounded) until Slurm no longer runs the job; the time it took."""
    start = time.time()
    cluster.wait_job_gone(launched.job_id, timeout=seconds)
    return time.time() - start


@pytest.fixture(scope="module")
def idle_sessions(cluster: Cluster) -> Iterator[Dict[str, object]]:
    """Four sessions with --idle-timeout 1, set up at once: lab with no kernel, notebook
    with no kernel, lab with a busy kernel (client gone), lab with an idle kernel whose
    WebSocket stays connected."""
    with launched_together(cluster) as (launched, stop):
        found: Dict[str, object] = {"stop": stop}
        for name, interface in (("bare", "lab"), ("notebook", "notebook"), ("busy", "lab"), ("tab", "lab")):
            launched[name] = cluster.launch("--idle-timeout", "1", interface=interface)
        marker = {"bare": "JupyterLab", "notebook": "Jupyter", "busy": "JupyterLab", "tab": "JupyterLab"}
        browsers = {name: wait_for_page(s.url, marker[name]) for name, s in launched.items()}
        found["launched_at"] = time.time()
        start_code(launched["busy"], browsers["busy"], f"import time; time.sleep({BUSY_SECONDS})")
        found["busy_started"] = time.time()
        found["tab_thread"] = hold_websocket(launched["tab"], browsers["tab"], stop)
        found["tab_connected"] = time.time()
        found.update(launched)
        yield found


def assert_ended_idle(cluster: Cluster, launched: Launched) -> None:
    text = cluster.output(launched)
    assert "ended: idle for 1 min" in text, text[-2000:]
    assert "received SIGTERM" not in text
    deadline = time.time() + 30
    while time.time() < deadline and any(a["alias"] == launched.alias for a in sat.state()):
        time.sleep(0.5)
    assert sat.destroy_count(launched.alias) == 1


def status_json(cluster: Cluster, launched: Launched) -> Dict[str, object]:
    done = cluster.galyleo("status", launched.job_id, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_no_kernel_lab_ends_idle(cluster: Cluster, idle_sessions: Dict[str, object]) -> None:
    launched = idle_sessions["bare"]
    assert isinstance(launched, Launched)
    # While it runs, status says when it would end, from Jupyter's own last activity.
    deadline = time.time() + 40
    doc: Dict[str, object] = {}
    while time.time() < deadline:
        doc = status_json(cluster, launched)
        if doc.get("idle_ends") or doc.get("state") != "RUNNING":
            break
        time.sleep(2)
    assert doc["state"] == "RUNNING" and doc["idle_ends"], doc
    wait_ended(cluster, launched, MARGIN)
    assert_ended_idle(cluster, launched)
    ended = status_json(cluster, launched)
    assert ended["state"] == "ENDED" and str(ended["ended"]).startswith("idle"), ended


def test_notebook_ends_idle(cluster: Cluster, idle_sessions: Dict[str, object]) -> None:
    launched = idle_sessions["notebook"]
    assert isinstance(launched, Launched)
    wait_ended(cluster, launched, MARGIN)
    assert_ended_idle(cluster, launched)


def test_idle_kernel_with_a_connected_tab_is_culled_then_the_session_ends(
        cluster: Cluster, idle_sessions: Dict[str, object]) -> None:
    launched = idle_sessions["tab"]
    assert isinstance(launched, Launched)
    wait_ended(cluster, launched, MARGIN + 75)
    text = cluster.output(launched)
    # jupyter_server's own line for a culled kernel: "Culling 'idle' kernel 'python3' (...) with 1 connections ..."
    assert re.search(r"Culling '\w+' kernel .* with [1-9][0-9]* connections", text), text[-3000:]
    assert_ended_idle(cluster, launched)


def test_a_busy_kernel_keeps_the_session_then_it_ends_idle(
        cluster: Cluster, idle_sessions: Dict[str, object]) -> None:
    launched = idle_sessions["busy"]
    assert isinstance(launched, Launched)
    started = idle_sessions["busy_started"]
    assert isinstance(started, float)
    # Alive for longer than three timeouts while the kernel runs code, with no client.
    while time.time() < started + BUSY_SECONDS - 5:
        assert cluster.job_state(launched.job_id) == "RUNNING", cluster.output(launched)[-2000:]
        time.sleep(5)
    # jupyter_server culls with "Culling '<state>' kernel ..."; its start-up banner says "Culling kernels ...".
    assert not re.search(r"Culling '\w+' kernel", cluster.output(launched)), cluster.output(launched)[-2000:]
    wait_ended(cluster, launched, 5 + MARGIN + 15)
    assert_ended_idle(cluster, launched)


def test_voila_refuses_an_idle_timeout(cluster: Cluster) -> None:
    done = cluster.galyleo("launch", "-i", "voila", "--idle-timeout", "5", "-e", cluster.module)
    assert done.returncode == 2 and done.stdout == ""
    assert "--idle-timeout: not available with --interface voila" in done.stderr

