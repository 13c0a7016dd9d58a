"""build/fast_start.py (the pyz's __main__.py) against shiv's own bootstrap: the same
unpack directory for every root setting, the same sys.path order, the same entry point,
and shiv's bootstrap whenever the build is not unpacked or a SHIV_* setting asks for it.
The built pyz itself is exercised in test_pyz.py."""

from __future__ import annotations

import importlib.util
import os
import sys
import zipfile
from pathlib import Path
from types import ModuleType
from typing import List, Optional

import pytest
from shiv import bootstrap as shiv_bootstrap

REPO = Path(__file__).resolve().parents[2]
BUILD_ID = "ab" * 32


def load_fast_start(root: Optional[str], entry: str = "probe_entry:main") -> ModuleType:
    spec = importlib.util.spec_from_file_location("fast_start_under_test", REPO / "build" / "fast_start.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.BUILD_ID, module.ROOT, module.ENTRY = BUILD_ID, root, entry  # type: ignore[attr-defined]
    return module


@pytest.fixture
def pyz(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An archive path in argv[0], reached through a symlink as sites install it."""
    real = tmp_path / "apps" / "galyleo.pyz"
    real.parent.mkdir()
    with zipfile.ZipFile(real, "w") as archive:
        archive.writestr("environment.json", "{}")
    link = tmp_path / "galyleo"
    link.symlink_to(real)
    monkeypatch.setattr(sys, "argv", [str(link), "generate"])
    for key in [k for k in os.environ if k.startswith("SHIV_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return real


def shiv_site_packages(pyz: Path, root: Optional[str]) -> Path:
    """Where shiv's bootstrap looks, given the build's --root and the environment."""
    with zipfile.ZipFile(pyz) as archive:
        archive.filename = sys.argv[0]  # shiv resolves the name from argv[0]'s archive
        return shiv_bootstrap.cache_path(archive, os.environ.get("SHIV_ROOT", root), BUILD_ID) / "site-packages"


ROOTS = [None, "~/.cache/galyleo", "$GALYLEO_TEST_ROOT", "$UNSET_VARIABLE", "relative/root"]


@pytest.mark.parametrize("root", ROOTS)
@pytest.mark.parametrize("shiv_root_env", [None, "/tmp/elsewhere"])
def test_same_directory_as_shiv(root: Optional[str], shiv_root_env: Optional[str], pyz: Path, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GALYLEO_TEST_ROOT", str(tmp_path / "from-variable"))
    if shiv_root_env:
        monkeypatch.setenv("SHIV_ROOT", str(tmp_path / shiv_root_env.strip("/")))
    expected = shiv_site_packages(pyz, root).resolve()
    fast = load_fast_start(root)
    assert fast.unpacked_site_packages() is None, "not unpacked yet: shiv's bootstrap must run"
    expected.mkdir(parents=True)
    assert Path(fast.unpacked_site_packages()) == expected
    assert expected.parent.name == f"galyleo.pyz_{BUILD_ID}"


@pytest.mark.parametrize("variable", ["SHIV_FORCE_EXTRACT", "SHIV_INTERPRETER", "SHIV_ENTRY_POINT", "SHIV_MODULE",
                                      "SHIV_CONSOLE_SCRIPT", "SHIV_PREPEND_PYTHONPATH", "SHIV_EXTEND_PYTHONPATH"])
def test_shiv_settings_hand_over_to_shiv(variable: str, pyz: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shiv_site_packages(pyz, None).mkdir(parents=True)
    fast = load_fast_start(None)
    assert fast.unpacked_site_packages() is not None
    monkeypatch.setenv(variable, "1")
    assert fast.unpacked_site_packages() is None


def shiv_order(path: List[str], site_packages: str) -> List[str]:
    """shiv's bootstrap() sys.path steps, on a copy."""
    import site

    saved = sys.path
    try:
        sys.path = list(path)
        length = len(sys.path)
        index = shiv_bootstrap.get_first_sitedir_index() or length
        site.addsitedir(site_packages)
        return sys.path[:index] + sys.path[length:] + sys.path[index:length]
    finally:
        sys.path = saved


@pytest.mark.parametrize("path", [
    ["/app.pyz", "/usr/lib/python311.zip", "/usr/lib/python3.11", "/usr/lib/python3/dist-packages"],
    ["/app.pyz", "/usr/lib/python3.11", "/venv/lib/python3.11/site-packages", "/other"],
    ["/app.pyz", "/usr/lib/python3.11"],
    ["site-packages", "/usr/lib/python3.11"],
])
def test_same_sys_path_order_and_entry_point(path: List[str], pyz: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    site_packages = shiv_site_packages(pyz, None)
    site_packages.mkdir(parents=True)
    (site_packages / "probe_entry.py").write_text("import sys\nCALLS = []\n"
                                                  "def main():\n    CALLS.append(list(sys.path))\n    return 7\n")
    expected = shiv_order(path, str(site_packages))
    monkeypatch.setattr(sys, "path", list(path))
    monkeypatch.delitem(sys.modules, "probe_entry", raising=False)
    fast = load_fast_start(None)
    with pytest.raises(SystemExit) as exited:
        fast.run_warm(fast.unpacked_site_packages())
    assert exited.value.code == 7
    assert sys.modules["probe_entry"].CALLS == [expected]


@pytest.mark.parametrize("content", [b"", b"#!/usr/bin/env python3\nPK\x03\x04 half a copy"], ids=["empty", "half"])
def test_a_half_copied_pyz_is_one_line_on_a_first_start(content: bytes, pyz: Path, capsys) -> None:
    """A first start reads the pyz through one open file; one that is no zip (a `cp` over it
    caught mid-copy) is one line and exit 1, not a BadZipFile traceback."""
    pyz.write_bytes(content)
    fast = load_fast_start(None)
    with pytest.raises(SystemExit) as stopped:
        fast.main()
    err = capsys.readouterr().err
    assert stopped.value.code == 1 and err.count("\n") == 1
    assert err.startswith(f"galyleo: error: {sys.argv[0]}: cannot read this program (")
