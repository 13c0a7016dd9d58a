"""No import cycle among galyleo's modules, function-local and `if TYPE_CHECKING:` imports
included (issue 21): each module is read as text (ast), every import anywhere in it is an
edge, and any strongly connected component of more than one module is a cycle. A module
takes TYPE_CHECKING from `typing` or the package's root only, never from another module of
ours (that tie runs upwards).
The same checker runs on tiny packages written per test, so it is seen to fail and to pass.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "galyleo"


def modules(package: Path) -> Dict[str, Path]:
    """Dotted name -> file, for every .py under PACKAGE (a package's __init__ is the package)."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports(name: str, path: Path) -> Iterator[Tuple[ast.stmt, str, List[str]]]:
    """(node, the module imported from, the names imported) for every import anywhere in the file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node, alias.name, []
        elif isinstance(node, ast.ImportFrom):
            source = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([source] if source else []))
            yield node, source, [alias.name for alias in node.names]


def graph(found: Dict[str, Path]) -> Dict[str, Set[str]]:
    """Module -> the modules of ours it imports (`from a import b` is a.b when b is a module)."""
    def ours(dotted: str) -> str:
        while dotted and dotted not in found:
            dotted = dotted.rpartition(".")[0]
        return dotted

    edges: Dict[str, Set[str]] = {name: set() for name in found}
    for name, path in found.items():
        for _, source, names in imports(name, path):
            targets = [f"{source}.{n}" if f"{source}.{n}" in found else source for n in names] or [source]
            edges[name].update(t for t in map(ours, targets) if t and t != name)
    return edges


def cycles(edges: Dict[str, Set[str]]) -> List[List[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    result: List[List[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(edges[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return sorted(result)


def type_checking_elsewhere(found: Dict[str, Path]) -> List[str]:
    """`module: line` of every import of TYPE_CHECKING from anywhere but typing or the package's
    root (galyleo/__init__.py keeps a copy so that start-up need not import typing: the root
    is the lowest layer, which imports no module of ours, see test_the_root_imports_nothing_of_ours)."""
    return [f"{name}:{node.lineno} takes TYPE_CHECKING from {source}"
            for name, path in found.items() for node, source, names in imports(name, path)
            if "TYPE_CHECKING" in names and source not in ("typing", name.split(".")[0])]


def test_galyleo_has_no_import_cycle() -> None:
    found = cycles(graph(modules(PACKAGE)))
    assert not found, "import cycles (function-local imports count):\n" + "\n".join(" <-> ".join(c) for c in found)


def test_galyleo_takes_type_checking_from_typing_or_its_root_only() -> None:
    wrong = type_checking_elsewhere(modules(PACKAGE))
    assert not wrong, "\n".join(wrong)


def test_the_root_imports_nothing_of_ours() -> None:
    found = modules(PACKAGE)
    root = next(name for name in found if "." not in name)
    assert [source for _, source, _ in imports(root, found[root]) if source.split(".")[0] == root] == []


FAKES = {
    "a cycle through a function-local import": (
        {"__init__.py": "", "a.py": "def f():\n    from pkg import b\n    return b\n", "b.py": "from pkg.a import f\n"},
        [["pkg.a", "pkg.b"]], []),
    "a cycle through relative imports and TYPE_CHECKING": (
        {"__init__.py": "", "sub/__init__.py": "", "sub/c.py": "from typing import TYPE_CHECKING\n"
         "if TYPE_CHECKING:\n    from ..a import X\n", "a.py": "from .sub import c\nX = 1\n"},
        [["pkg.a", "pkg.sub.c"]], []),
    "no cycle: imports run one way": (
        {"__init__.py": "", "a.py": "def f():\n    from pkg import b\n    return b\n", "b.py": "import os\n"},
        [], []),
    "no cycle, but TYPE_CHECKING from a module of ours": (
        {"__init__.py": "", "top.py": "TYPE_CHECKING = False\n", "low.py": "from pkg.top import TYPE_CHECKING\n"},
        [], ["pkg.low:1 takes TYPE_CHECKING from pkg.top"]),
    "no cycle, TYPE_CHECKING from the package's root": (
        {"__init__.py": "TYPE_CHECKING = False\n", "low.py": "from pkg import TYPE_CHECKING\n"},
        [], []),
}


@pytest.mark.parametrize("files, expected_cycles, expected_wrong", FAKES.values(), ids=list(FAKES))
def test_the_checker_on_small_packages(tmp_path: Path, files: Dict[str, str], expected_cycles: List[List[str]],
                                       expected_wrong: List[str]) -> None:
    for relative, text in files.items():
        (tmp_path / "pkg" / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "pkg" / relative).write_text(text)
    found = modules(tmp_path / "pkg")
    assert cycles(graph(found)) == expected_cycles
    assert type_checking_elsewhere(found) == expected_wrong


MAX_LINES = 300  # a module that grows past this has more than one job: split it


def test_no_module_over_300_lines() -> None:
    long = {name: n for name, path in modules(PACKAGE).items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"
