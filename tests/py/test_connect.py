"""galyleo/connect/: the connection modes behind one interface, and the only place that names one."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import List

import pytest
from test_apps import enums, strings

from galyleo import cli, connect, render, spec
from galyleo.config import Config
from galyleo.connect.base import Connection
from galyleo.errors import UsageError

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "galyleo"
MUST = ("job_values", "record_fields", "standalone_record", "ready", "report", "plan", "withdraw", "open")


def compared(path: Path) -> List[str]:
    """The string constants a module compares anything with (==, !=, in, not in a literal)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Compare):
            for side in [node.left, *node.comparators]:
                items = side.elts if isinstance(side, (ast.Tuple, ast.List, ast.Set)) else [side]
                found += [item.value for item in items
                          if isinstance(item, ast.Constant) and isinstance(item.value, str)]
    return found


def test_no_module_outside_connect_compares_a_mode_name() -> None:
    found = [(str(path.relative_to(PACKAGE)), text) for path in PACKAGE.rglob("*.py")
             if path.parent.name != "connect" for text in compared(path) if text in connect.MODES]
    assert found == []


def test_the_mode_names_are_spelt_in_the_package_only() -> None:
    """Outside galyleo/connect/, a mode's name is a plain word only where it names something else
    (the ssh client in sshmaster.py), never a value set or read as a mode."""
    found = [(str(path.relative_to(PACKAGE)), text) for path in PACKAGE.rglob("*.py")
             if path.parent.name != "connect" and path.name != "sshmaster.py"
             for text in strings(path) if text in connect.MODES]
    assert found == []


@pytest.mark.parametrize("name", connect.MODES)
def test_each_mode_is_one_module_with_the_whole_interface(name: str) -> None:
    mode = connect.of(name, Config())
    assert isinstance(mode, Connection) and mode.name == name
    assert (PACKAGE / "snippets" / mode.snippet).is_file()
    missing = [m for m in MUST if getattr(type(mode), m) is getattr(Connection, m)]
    assert missing == []
    with pytest.raises(ValueError):
        connect.of("nosuchmode", Config())


@pytest.mark.parametrize("name", connect.MODES)
def test_the_rendered_script_has_its_mode_s_hooks_only(name: str) -> None:
    conf = Config(account="a", login_host="login.example.org")
    text = render.render(spec.build(cli.make_parser(conf).parse_args(["generate", "--connect", name]), conf,
                                    home="/"), conf)
    for other in connect.MODES:
        snippet = (PACKAGE / "snippets" / connect.of(other, conf).snippet).read_text()
        marker = next(line for line in snippet.splitlines() if line.startswith("# --- galyleo: "))
        assert (marker in text.splitlines()) is (other == name)


def test_choose_keeps_to_the_site_s_modes() -> None:
    assert connect.choose(None, Config()) == connect.MODES[0]
    with pytest.raises(UsageError, match="not allowed at this site"):
        connect.choose(connect.MODES[1], Config(connect_allowed=[connect.MODES[0]]))
    with pytest.raises(UsageError, match="--connect 'carrier-pigeon': expected one of " + ", ".join(connect.MODES)):
        connect.choose("carrier-pigeon", Config())


def test_the_json_schema_lists_the_modes() -> None:
    schema = json.loads((ROOT / "docs" / "session.schema.json").read_text())
    found = {name for names in enums(schema, "connect") for name in names}
    assert found == set(connect.MODES)
