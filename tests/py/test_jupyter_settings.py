"""app_jupyter_server.sh.j2 and app_vscode.sh.j2: the server settings file the job writes, run.

The settings file is Python that Jupyter's server runs at start; here it is cut out of the
rendered script and run with a small stand-in for traitlets' `c`, a PATH with or without
code-server and an importable or missing jupyter_server_proxy, as a node would have them.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any, Dict, Iterator

import pytest

from galyleo import apps, cli, render, spec
from galyleo.config import Config

EXTENSION = Path(__file__).resolve().parents[2] / "galyleo" / "snippets" / "vscode_extension.py"


class Section(Dict[str, Any]):
    """c.ServerApp and the like: attributes are settings; dict settings can be updated as in traitlets."""

    def __getattr__(self, name: str) -> Any:
        return self.setdefault(name, {})

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value


class Settings(Dict[str, Section]):
    def __getattr__(self, name: str) -> Section:
        return self.setdefault(name, Section())


def settings_file(interface: str) -> str:
    conf = Config(account="a")
    text = render.render(spec.build(cli.make_parser(conf).parse_args(["generate", "-i", interface]), conf, home="/"),
                         conf)
    parts = re.findall(r"""cat >>?"\$1/jupyter_server_config\.py" <<'PY'\n(.*?)\nPY\n""", text, re.S)
    assert parts
    return "\n".join(parts) + "\n"


@pytest.fixture
def node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The job's environment for the settings file, in a notebook dir whose name has braces."""
    work = tmp_path / "my {project} $HOME"
    work.mkdir()
    (tmp_path / "bin").mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    for name, value in {"GALYLEO_JUPYTER_IP": "10.0.0.5", "GALYLEO_PORT": "8123", "GALYLEO_ORIGIN": "https://x.y",
                        "GALYLEO_VSCODE_NAME": apps.VSCODE_NAME, "GALYLEO_READY_TIMEOUT": "77"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delitem(sys.modules, "jupyter_server_proxy", raising=False)
    yield tmp_path


def with_code_server(node: Path) -> None:
    server = node / "bin" / "code-server"
    server.write_text("#!/bin/sh\n")
    server.chmod(0o755)


def with_proxy(node: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (node / "site" / "jupyter_server_proxy").mkdir(parents=True)
    (node / "site" / "jupyter_server_proxy" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(node / "site"))


def run(interface: str, node: Path) -> Settings:
    """The settings file run as Jupyter would, with the job's extension beside it."""
    c = Settings()
    here = node / "conf" / "jupyter_server_config.py"
    here.parent.mkdir(exist_ok=True)
    shutil.copyfile(EXTENSION, here.parent / "galyleo_vscode.py")
    sys.modules.pop("galyleo_vscode", None)
    path = list(sys.path)
    try:
        exec(compile(settings_file(interface), str(here), "exec"), {"c": c, "__file__": str(here)})  # noqa: S102
    finally:
        sys.path[:] = path
    return c


def test_vscode_runs_code_server_on_a_private_socket_with_jupyter_s_token_as_the_only_key(
        node: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with_code_server(node)
    with_proxy(node, monkeypatch)
    monkeypatch.setenv("VSCODE_IPC_HOOK_CLI", "/tmp/vscode-ipc-login-node.sock")
    c = run("vscode", node)
    server = c.ServerProxy.servers[apps.VSCODE_NAME]
    command = server["command"]
    assert command[:8] == ["code-server", "--auth", "none", "--socket", "{unix_socket}", "--socket-mode", "600",
                           "--config"]
    assert server["unix_socket"] is True  # the proxy's own folder (mode 0700) holds the socket
    assert not {"--bind-addr", "--port", "--host"} & set(command) and "{port}" not in " ".join(command)
    assert command[-1] == os.getcwd().replace("{", "{{").replace("}", "}}")  # the notebook dir, format-safe
    assert command[-1].format(unix_socket="s") == os.getcwd()
    assert command[8] == str(node / "conf" / "code-server.yaml")
    assert command[9:11] == ["--session-socket", str(node / "conf" / "code-server-ipc.sock")]
    assert "VSCODE_IPC_HOOK_CLI" not in os.environ  # it would hand the folder to that editor and exit
    assert server["timeout"] == 77
    assert c.ServerApp.default_url == f"/galyleo/{apps.VSCODE_NAME}"  # the landing page: on to /vscode/
    assert c.ServerApp.jpserver_extensions == {"galyleo_vscode": True}
    assert (c.ServerApp.ip, c.ServerApp.port, c.ServerApp.port_retries) == ("10.0.0.5", 8123, 0)
    assert c.ServerApp.allow_origin == "https://x.y"


@pytest.mark.parametrize("has", ["nothing", "code-server", "jupyter-server-proxy"])
def test_vscode_without_code_server_or_the_proxy_exits_127(node: Path, monkeypatch: pytest.MonkeyPatch,
                                                            has: str) -> None:
    if has == "code-server":
        with_code_server(node)
    if has == "jupyter-server-proxy":
        with_proxy(node, monkeypatch)
    with pytest.raises(SystemExit) as ended:
        run("vscode", node)
    assert ended.value.code == 127  # the job's one line: a missing command, what to load


@pytest.mark.parametrize("interface", ["lab", "notebook"])
def test_a_jupyter_session_offers_vscode_only_where_both_are_there(node: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   interface: str) -> None:
    c = run(interface, node)
    assert "servers" not in c.ServerProxy and "default_url" not in c.ServerApp
    with_code_server(node)
    assert "servers" not in run(interface, node).ServerProxy
    with_proxy(node, monkeypatch)
    c = run(interface, node)
    assert c.ServerProxy.servers[apps.VSCODE_NAME]["launcher_entry"] == {"title": "VS Code"}
    assert "default_url" not in c.ServerApp  # JupyterLab stays the page the URL leads to
