"""galyleo's Jupyter server extension for VS Code, run in the job (code-server behind Jupyter's server).

It does two things Jupyter's server and jupyter-server-proxy do not:
- A landing page, /galyleo/<name> (`-i vscode`'s default_url). It takes the session token once
  (Jupyter's login cookie is set by then) and sends the browser on to VS Code without it,
  so the token never shows in VS Code's address bar, history or recent folders; JupyterLab
  drops it from its own URL in the same way.
- Idle culling: a VS Code terminal busy with a command is activity. Jupyter's own idle
  shutdown already counts what passes through jupyter-server-proxy, so a connected VS Code
  tab (its websocket carries a keep-alive every few seconds) keeps a session, and an
  abandoned one does not. What it cannot see is a command left running in a VS Code
  terminal after the tab is gone: code-server keeps its terminals for a reconnection, so
  this looks at them. A terminal is busy while a command holds its foreground, that is
  while the terminal's foreground process group is not its shell's.
Written into the job's private settings folder as galyleo_vscode.py (app_jupyter_server.sh.j2);
imports nothing of galyleo's, and runs on the Python of the session's Jupyter (3.8 or later).
"""

from __future__ import annotations

import os
from typing import Any, Dict, Iterator, List, Optional, Tuple

PTY_HOST = b"--type=ptyHost"  # how VS Code's server starts the process that owns its terminals
LOOK_SECONDS = 30  # Jupyter checks for idleness every 60 s


def processes(proc: str = "/proc") -> Dict[int, Tuple[int, int, int]]:
    """Every process: pid -> (parent, process group, its terminal's foreground group)."""
    table: Dict[int, Tuple[int, int, int]] = {}
    for name in os.listdir(proc):
        if not name.isdigit():
            continue
        try:
            with open(os.path.join(proc, name, "stat"), "rb") as stat:
                fields = stat.read().rpartition(b")")[2].split()
        except OSError:
            continue  # ended meanwhile
        if len(fields) > 6:
            table[int(name)] = (int(fields[1]), int(fields[2]), int(fields[5]))
    return table


def children(table: Dict[int, Tuple[int, int, int]]) -> Dict[int, List[int]]:
    found: Dict[int, List[int]] = {}
    for pid, (parent, _, _) in table.items():
        found.setdefault(parent, []).append(pid)
    return found


def descendants(root: int, below: Dict[int, List[int]]) -> Iterator[int]:
    todo = list(below.get(root, ()))
    while todo:
        pid = todo.pop()
        yield pid
        todo.extend(below.get(pid, ()))


def is_pty_host(pid: int, proc: str = "/proc") -> bool:
    try:
        with open(os.path.join(proc, str(pid), "cmdline"), "rb") as cmdline:
            return PTY_HOST in cmdline.read().split(b"\0")
    except OSError:
        return False


def busy_terminals(root: int, proc: str = "/proc") -> int:
    """How many terminals of the VS Code servers below ROOT run a command in their foreground."""
    table = processes(proc)
    below = children(table)
    busy = 0
    for host in (pid for pid in descendants(root, below) if is_pty_host(pid, proc)):
        for shell in below.get(host, ()):
            _, group, foreground = table[shell]
            busy += int(foreground > 0 and foreground != group)
    return busy


def _jupyter_server_extension_points() -> List[Dict[str, str]]:
    return [{"module": __name__}]


def landing(name: str) -> str:
    """The landing page's path below the server's base URL."""
    return f"galyleo/{name}"


def _load_jupyter_server_extension(serverapp: Any) -> Optional[object]:
    """The landing page; with idle shutdown on, a busy terminal counts as activity (every LOOK_SECONDS)."""
    add_landing(serverapp, os.environ["GALYLEO_VSCODE_NAME"])
    if not getattr(serverapp, "shutdown_no_activity_timeout", 0):
        return None
    return watch_terminals(serverapp)


def add_landing(serverapp: Any, name: str) -> None:
    from jupyter_server.base.handlers import JupyterHandler
    from jupyter_server.utils import url_path_join
    from tornado import web

    class Landing(JupyterHandler):  # type: ignore[misc]
        @web.authenticated  # type: ignore[misc]
        def get(self) -> None:
            self.redirect(url_path_join(self.base_url, name) + "/")

    serverapp.web_app.add_handlers(".*$", [(url_path_join(serverapp.base_url, landing(name)), Landing)])


def watch_terminals(serverapp: Any) -> object:
    from jupyter_server._tz import utcnow
    from tornado.ioloop import PeriodicCallback

    settings = serverapp.web_app.settings
    me = os.getpid()

    def look() -> None:
        if busy_terminals(me):
            settings["api_last_activity"] = utcnow()

    watcher = PeriodicCallback(look, LOOK_SECONDS * 1000)
    watcher.start()
    return watcher
