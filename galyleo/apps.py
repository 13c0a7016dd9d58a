"""The apps a session can serve (`--interface`): one table, the only place that names them.

Each app is what the job's generic server lifecycle (server.sh.j2: port, start,
readiness, route, watch, stop) needs to know about it: the command that starts it,
the snippet that writes its private settings, how the job tells it is ready and
alive, how the proxy shows it is routed, whether idle culling applies, and what the
pre-flight looks for on PATH. Adding an app is one entry here plus, if it needs
settings of its own, one snippet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Tuple


@dataclass(frozen=True)
class App:
    name: str
    summary: str  # for help
    command: str  # what must be on PATH in the session (pre-flight and the job check it)
    argv: Tuple[str, ...]  # how the job starts it; address, port, origin and token reach it through snippet
    snippet: str  # defines galyleo_app_configure DIR: its private settings, read from the environment
    probe_path: str  # answers 200 to the session's token once ready (the job's readiness check)
    probe_json: bool  # ... with a JSON object
    look_path: str  # what the job's watch asks while it runs (with culling: the activity it reads)
    culls: bool  # idle culling applies (the server shuts itself down when idle)
    proxy_ready: Tuple[int, ...]  # statuses of `/` without the token through the proxy once it is routed
    provides: str = "Jupyter"  # in messages: "load the module that provides ..."


REDIRECTS = (301, 302, 303, 307)  # Jupyter sends a browser without a token on to its login page
JUPYTER_ARGS = ("--no-browser", "--KernelManager.transport=ipc")

APPS: Dict[str, App] = {app.name: app for app in (
    App("lab", "JupyterLab", "jupyter-lab", ("jupyter", "lab") + JUPYTER_ARGS, "app_jupyter.sh.j2",
        "/api/status", True, "/api/status", True, REDIRECTS),
    App("notebook", "Jupyter Notebook", "jupyter-notebook", ("jupyter", "notebook") + JUPYTER_ARGS,
        "app_jupyter.sh.j2", "/api/status", True, "/api/status", True, REDIRECTS),
    App("voila", "Voila (notebooks as dashboards)", "voila", ("voila", "--no-browser"), "app_voila.sh.j2",
        "/", False, "/", False, REDIRECTS),  # no /api/status; no server-level idle shutdown
)}
NAMES = tuple(APPS)
CULLING = tuple(name for name, app in APPS.items() if app.culls)


def of(name: str) -> App:
    """The app NAME (a session's interface); a record from before `interface` was kept is a lab."""
    return APPS.get(name) or APPS["lab"]


def choices(last: str = "or", names: Tuple[str, ...] = NAMES) -> str:
    """The names for help and errors: 'lab, notebook or voila'."""
    return ", ".join(names[:-1]) + f" {last} {names[-1]}" if len(names) > 1 else names[0]
