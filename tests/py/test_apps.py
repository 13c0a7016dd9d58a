"""apps.py: the one table of what a session can serve, and the only place that names an app."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any, Iterator, List

import pytest

from galyleo import apps, cli, render, spec
from galyleo.config import Config
from galyleo.errors import ACCEPT

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "galyleo"
SNIPPETS = PACKAGE / "snippets"


def strings(path: Path) -> Iterator[str]:
    """Every string constant in a module (docstrings too: a name there is prose, checked apart)."""
    tree = ast.parse(path.read_text())
    docs = {id(node.body[0].value) for node in ast.walk(tree)  # type: ignore[attr-defined]
            if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)) and node.body
            and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            yield node.value


def test_no_module_but_apps_spells_an_app_name() -> None:
    found = [(path.name, text) for path in PACKAGE.rglob("*.py") if path.name != "apps.py"
             for text in strings(path) if text in apps.NAMES]
    assert found == []


@pytest.mark.parametrize("name", sorted(p.name for p in SNIPPETS.glob("*.j2") if not p.name.startswith("app_")))
def test_no_generic_snippet_decides_by_app(name: str) -> None:
    text = (SNIPPETS / name).read_text()
    assert not re.search(r"\binterface\s*==|\bvoila\b|jupyter (lab|notebook)\b", text)


@pytest.mark.parametrize("app", apps.APPS.values(), ids=list(apps.APPS))
def test_each_app_has_its_snippet_and_it_is_rendered(app: apps.App) -> None:
    snippet = (SNIPPETS / app.snippet).read_text()
    assert re.search(r"^galyleo_app_configure\(\) \{", snippet, re.M)
    conf = Config(account="a")
    text = render.render(spec.build(cli.make_parser(conf).parse_args(["generate", "-i", app.name]), conf, home="/"),
                         conf)
    marker = re.search(r"^# --- galyleo: app \(.*\) ---$", snippet, re.M)
    assert marker and text.splitlines().count(marker.group(0)) == 1
    assert f"GALYLEO_APP_COMMANDS=({' '.join(app.commands)})" in text.splitlines()
    assert text.index(marker.group(0)) < text.index("# --- galyleo: server ---")


def test_choices_everywhere_follow_the_table() -> None:
    conf = Config(account="a")
    assert ACCEPT["interface"] == "one of " + ", ".join(apps.NAMES)
    helped = cli.make_parser(conf).format_help() + cli.command_parser("launch", conf).format_help()
    assert apps.choices() in " ".join(helped.split())
    for name in apps.NAMES:
        assert spec.interface(name) == name


def test_culling_only_where_the_table_allows() -> None:
    conf = Config(account="a")
    for name, app in apps.APPS.items():
        args = cli.make_parser(conf).parse_args(["generate", "-i", name, "--idle-timeout", "10"])
        if app.culls:
            assert spec.build(args, conf, home="/").idle_timeout == 10
        else:
            with pytest.raises(Exception, match="--idle-timeout: not available"):
                spec.build(args, conf, home="/")


def enums(node: Any, key: str) -> List[List[str]]:
    """Every enum (or const) the schema gives for KEY, anywhere in it."""
    found: List[List[str]] = []
    if isinstance(node, dict):
        for name, value in node.items():
            if name == key and isinstance(value, dict) and ("enum" in value or "const" in value):
                found.append(value.get("enum") or [value["const"]])
            found += enums(value, key)
    elif isinstance(node, list):
        for item in node:
            found += enums(item, key)
    return found


def test_the_json_schema_lists_the_apps() -> None:
    schema = json.loads((ROOT / "docs" / "session.schema.json").read_text())
    lists = [sorted(set(e) - {""}) for e in enums(schema, "interface")]
    assert lists and all(found == sorted(apps.NAMES) for found in lists)
