"""The compiled-snippet cache: used only in a private folder of ours, and it never
changes what is rendered. Also the launch warm-up thread's contract."""

from __future__ import annotations

import os
from pathlib import Path

import jinja2
import pytest

from galyleo import launch, render


@pytest.fixture
def package_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(render, "__file__", str(tmp_path / "render.py"))
    return tmp_path


def test_no_folder_no_cache(package_dir: Path) -> None:
    assert render.bytecode_cache(jinja2) is None


def test_private_folder_is_used(package_dir: Path) -> None:
    (package_dir / render.CACHE_DIR).mkdir(mode=0o700)
    assert isinstance(render.bytecode_cache(jinja2), jinja2.FileSystemBytecodeCache)


@pytest.mark.parametrize("mode", [0o777, 0o775, 0o722])
def test_folder_others_can_write_is_refused(package_dir: Path, mode: int) -> None:
    folder = package_dir / render.CACHE_DIR
    folder.mkdir()
    os.chmod(folder, mode)
    assert render.bytecode_cache(jinja2) is None


def test_folder_of_another_owner_is_refused(package_dir: Path) -> None:
    folder = package_dir / render.CACHE_DIR
    folder.mkdir(mode=0o700)
    os.chown(folder, 65534, 65534)  # nobody: tests run as root here
    assert render.bytecode_cache(jinja2) is None


def test_cached_render_is_identical(package_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from galyleo import cli, config, spec

    (package_dir / render.CACHE_DIR).mkdir(mode=0o700)
    site = config.Config()
    args = cli.make_parser(site).parse_args(["generate", "-A", "abc", "-d", str(tmp_path), "-e", "a/1,b/2"])
    launch_spec = spec.build(args, site)
    monkeypatch.setattr(render, "_ENV", None)
    plain = render.make_environment()
    plain.bytecode_cache = None
    monkeypatch.setattr(render, "_ENV", plain)
    expected = render.render(launch_spec, site)
    for _ in range(2):  # the first fills the cache, the second loads from it
        monkeypatch.setattr(render, "_ENV", render.make_environment())
        assert render.render(launch_spec, site) == expected
    assert len(os.listdir(package_dir / render.CACHE_DIR)) >= 5


def test_warm_up_compiles_and_imports() -> None:
    thread = launch.warm_up()
    thread.join(timeout=30)
    assert not thread.is_alive()
    import sys

    assert "requests" in sys.modules
    assert render._ENV is not None
