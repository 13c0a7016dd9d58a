"""The apps a session can serve (`--interface`): one table, the only place that names them.

Each app is what the job's generic server lifecycle (server.sh.j2: port, start,
readiness, route, watch, stop) needs to know about it: the command that starts it,
the snippet that writes its private settings, how the job tells it is ready and
alive, how the proxy shows it is routed, whether idle culling applies, and what the
pre-flight looks for on PATH. Adding an app is one entry here plus, if it needs
settings of its own, one snippet.
"""

from __future__ import annotations

from galyleo import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Dict, Tuple


JUPYTER = "Jupyter"  # what most apps need loaded


class App:
    """One app. A plain class, not a dataclass: `help` imports this table, and dataclasses
    (with inspect and typing) would cost it about 10 ms."""

    __slots__ = ("name", "summary", "commands", "argv", "snippet", "probe_path", "probe_json", "look_path",
                 "culls", "proxy_ready", "provides", "values")

    def __init__(self, name: str, summary: str, commands: Tuple[str, ...], argv: Tuple[str, ...], snippet: str,
                 probe_path: str, probe_json: bool, look_path: str, culls: bool, proxy_ready: Tuple[int, ...],
                 provides: str = JUPYTER, values: Tuple[Tuple[str, str], ...] = ()) -> None:
        self.name = name  # the --interface value
        self.summary = summary  # for help
        self.commands = commands  # what must be on PATH in the session (pre-flight and the job check each)
        self.argv = argv  # how the job starts it; address, port, origin and token reach it through its snippet
        self.snippet = snippet  # defines galyleo_app_configure DIR: its private settings, read from the environment
        self.probe_path = probe_path  # answers 200 to the session's token once ready (the job's readiness check)
        self.probe_json = probe_json  # ... with a JSON object
        self.look_path = look_path  # what the job's watch asks while it runs (with culling: the activity it reads)
        self.culls = culls  # idle culling applies (the server shuts itself down when idle)
        self.proxy_ready = proxy_ready  # statuses of `/` without the token through the proxy once it is routed
        self.provides = provides  # in messages: "load the module that provides ..."
        self.values = values  # what its snippet reads, bound with the script's other values

    def __setattr__(self, name: str, value: object) -> None:
        if hasattr(self, name):
            raise AttributeError(f"App.{name} is read-only")
        object.__setattr__(self, name, value)


REDIRECTS = (301, 302, 303, 307)  # Jupyter sends a browser without a token on to its login page
JUPYTER_ARGS = ("--no-browser", "--KernelManager.transport=ipc")
VSCODE_NAME = "vscode"  # the name Jupyter's server proxies code-server under (app_jupyter_server.sh.j2), and its path
VSCODE_PATH = f"/{VSCODE_NAME}/"
JUPYTER_VALUES = (("GALYLEO_VSCODE_NAME", VSCODE_NAME),)  # a Jupyter server offers VS Code where it can

APPS: Dict[str, App] = {app.name: app for app in (
    App("lab", "JupyterLab", ("jupyter-lab",), ("jupyter", "lab") + JUPYTER_ARGS, "app_jupyter.sh.j2",
        "/api/status", True, "/api/status", True, REDIRECTS, values=JUPYTER_VALUES),
    App("notebook", "Jupyter Notebook", ("jupyter-notebook",), ("jupyter", "notebook") + JUPYTER_ARGS,
        "app_jupyter.sh.j2", "/api/status", True, "/api/status", True, REDIRECTS, values=JUPYTER_VALUES),
    App("voila", "Voila (notebooks as dashboards)", ("voila",), ("voila", "--no-browser"), "app_voila.sh.j2",
        "/", False, "/", False, REDIRECTS),  # no /api/status; no server-level idle shutdown
    # code-server under Jupyter's own server, proxied by jupyter-server-proxy from a unix socket
    # in a private folder: Jupyter's token is the only key, and no TCP port of code-server's exists.
    # The session URL's `/` leads to it (default_url: galyleo's landing page, which drops the token);
    # readiness is code-server's own health check.
    App("vscode", "VS Code in the browser (code-server, behind Jupyter's server)", ("code-server", "jupyter-server"),
        ("jupyter", "server") + JUPYTER_ARGS, "app_vscode.sh.j2", VSCODE_PATH + "healthz", True, "/api/status", True,
        REDIRECTS, "code-server and a Jupyter server with jupyter-server-proxy", JUPYTER_VALUES),
)}
NAMES = tuple(APPS)
CULLING = tuple(name for name, app in APPS.items() if app.culls)


def of(name: str) -> App:
    """The app NAME (a session's interface); a record from before `interface` was kept is a lab."""
    return APPS.get(name) or APPS["lab"]


def choices(last: str = "or", names: Tuple[str, ...] = NAMES) -> str:
    """The names for help and errors: 'lab, notebook or voila'."""
    return ", ".join(names[:-1]) + f" {last} {names[-1]}" if len(names) > 1 else names[0]
