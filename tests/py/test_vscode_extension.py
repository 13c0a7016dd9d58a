"""snippets/vscode_extension.py: a VS Code terminal busy with a command is activity; the landing page.

Real processes on a real pseudo-terminal: a stand-in for VS Code's pty host (a process
whose argv carries code-server's `--type=ptyHost`) runs an interactive bash on a pty, as
node-pty does; the test types into it. Plus: the extension as the job writes it is this file.
"""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Callable, Iterator

import pytest

from galyleo import apps, cli, render, spec
from galyleo.config import Config

SOURCE = Path(__file__).resolve().parents[2] / "galyleo" / "snippets" / "vscode_extension.py"

# A pty host: starts bash on a pty (job control on, as in a terminal) and types what it reads on stdin.
HOST = r"""
import os, pty, sys, threading
pid, fd = pty.fork()
if pid == 0:
    os.execvp("bash", ["bash", "--norc", "--noprofile", "-i"])
def drain():
    try:
        while os.read(fd, 4096):
            pass
    except OSError:
        pass
threading.Thread(target=drain, daemon=True).start()
for line in sys.stdin:
    os.write(fd, line.encode().replace(b"^C", b"\x03"))
"""


def load() -> ModuleType:
    loaded = importlib.util.spec_from_file_location("galyleo_vscode", SOURCE)
    assert loaded and loaded.loader
    module = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(module)
    return module


activity = load()


def until(condition: Callable[[], bool], what: str, seconds: float = 20) -> None:
    """Poll CONDITION (never a timing assertion: the deadline only ends a hung test)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.05)


@pytest.fixture
def host(request: pytest.FixtureRequest) -> Iterator[subprocess.Popen]:
    """A pty host (marked as VS Code's unless the test's param says otherwise) with its idle shell."""
    marker = getattr(request, "param", activity.PTY_HOST.decode())
    proc = subprocess.Popen([sys.executable, "-c", HOST, marker], stdin=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        until(lambda: any(parent == proc.pid for parent, _, _ in activity.processes().values()), "the shell started")
        yield proc
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def type_in(proc: subprocess.Popen, line: str) -> None:
    assert proc.stdin
    proc.stdin.write(line + "\n")
    proc.stdin.flush()


def test_an_idle_terminal_is_not_busy_and_a_running_command_is(host: subprocess.Popen) -> None:
    until(lambda: activity.busy_terminals(os.getpid()) == 0, "the idle shell holds its own foreground")
    type_in(host, "sleep 300")
    until(lambda: activity.busy_terminals(os.getpid()) == 1, "the command holds the terminal")
    type_in(host, "^C")
    until(lambda: activity.busy_terminals(os.getpid()) == 0, "the shell has its terminal back")


def shells(host: subprocess.Popen) -> set:
    return {pid for pid, (parent, _, _) in activity.processes().items() if parent == host.pid}


def ran(host: subprocess.Popen) -> bool:
    """A command runs in the host's shell (a process below it)."""
    below = shells(host)
    return any(parent in below for parent, _, _ in activity.processes().values())


def test_a_command_sent_to_the_background_is_not_activity(host: subprocess.Popen) -> None:
    type_in(host, "sleep 300 &")
    until(lambda: ran(host), "the background job started")
    assert activity.busy_terminals(os.getpid()) == 0


@pytest.mark.parametrize("host", ["--type=extensionHost"], indirect=True)
def test_only_the_pty_host_s_terminals_count(host: subprocess.Popen) -> None:
    type_in(host, "sleep 300")
    until(lambda: ran(host), "the command ran")
    assert activity.busy_terminals(os.getpid()) == 0


def test_only_terminals_below_the_server_count(host: subprocess.Popen) -> None:
    type_in(host, "sleep 300")
    until(lambda: activity.busy_terminals(os.getpid()) == 1, "the command holds the terminal")
    other = subprocess.Popen(["sleep", "300"])
    try:
        assert activity.busy_terminals(other.pid) == 0  # a neighbour's server sees none of ours
    finally:
        other.kill()
        other.wait()


def test_the_extension_names_itself_and_its_landing_page() -> None:
    assert activity._jupyter_server_extension_points() == [{"module": "galyleo_vscode"}]
    assert activity.landing(apps.VSCODE_NAME) == f"galyleo/{apps.VSCODE_NAME}"


@pytest.mark.parametrize("interface", ["lab", "notebook", "vscode"])
def test_the_job_writes_this_file_unchanged(interface: str) -> None:
    conf = Config(account="a")
    text = render.render(spec.build(cli.make_parser(conf).parse_args(["generate", "-i", interface]), conf, home="/"),
                         conf)
    found = re.search(r"""cat >"\$1/galyleo_vscode\.py" <<'PY'\n(.*?)\nPY\n""", text, re.S)
    assert found and found.group(1) + "\n" == SOURCE.read_text()
    assert 'jpserver_extensions.update({"galyleo_vscode": True})' in text
