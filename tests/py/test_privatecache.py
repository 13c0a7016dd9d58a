"""The private cache (compiled snippets, parsed config files): used only in a folder of
ours that nobody else can write, and it never changes what is rendered or loaded.
Also the launch warm-up thread's contract."""

from __future__ import annotations

import os
from pathlib import Path

import jinja2
import pytest
from conftest import run_galyleo

from galyleo import config, configfiles, privatecache


@pytest.fixture
def package_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(privatecache, "__file__", str(tmp_path / "privatecache.py"))
    return tmp_path


def test_no_folder_no_cache(package_dir: Path) -> None:
    assert privatecache.template_cache(jinja2) is None


def test_private_folder_is_used(package_dir: Path) -> None:
    (package_dir / privatecache.NAME).mkdir(mode=0o700)
    assert isinstance(privatecache.template_cache(jinja2), jinja2.FileSystemBytecodeCache)


@pytest.mark.parametrize("mode", [0o777, 0o775, 0o722])
def test_folder_others_can_write_is_refused(package_dir: Path, mode: int) -> None:
    folder = package_dir / privatecache.NAME
    folder.mkdir()
    os.chmod(folder, mode)
    assert privatecache.template_cache(jinja2) is None


def test_folder_of_another_owner_is_refused(package_dir: Path) -> None:
    folder = package_dir / privatecache.NAME
    folder.mkdir(mode=0o700)
    os.chown(folder, 65534, 65534)  # nobody: tests run as root here
    assert privatecache.template_cache(jinja2) is None


def test_symlinked_folder_is_refused(package_dir: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (package_dir / privatecache.NAME).symlink_to(elsewhere)
    assert privatecache.folder() is None and privatecache.template_cache(jinja2) is None


def test_store_and_load(package_dir: Path) -> None:
    privatecache.create()
    privatecache.store("x", ("k", 1), {"a": [1, "b"], "c": True})
    assert privatecache.load("x", ("k", 1)) == {"a": [1, "b"], "c": True}
    assert privatecache.load("x", ("k", 2)) is None, "a different key must miss"
    assert privatecache.load("missing", ("k", 1)) is None
    entries = list((package_dir / privatecache.NAME).iterdir())
    assert [e.name for e in entries] == ["x"] and oct(entries[0].stat().st_mode & 0o777) == "0o600"


def test_no_folder_stores_nothing(package_dir: Path) -> None:
    privatecache.store("x", "k", 1)
    assert privatecache.load("x", "k") is None and list(package_dir.iterdir()) == []


def test_values_that_are_not_plain_data_are_not_stored(package_dir: Path) -> None:
    import datetime

    privatecache.create()
    privatecache.store("x", "k", {"when": datetime.date(2026, 1, 1)})
    assert list((package_dir / privatecache.NAME).iterdir()) == []


def test_a_damaged_entry_is_a_miss(package_dir: Path) -> None:
    privatecache.create()
    (package_dir / privatecache.NAME / "x").write_bytes(b"\x00not marshal")
    assert privatecache.load("x", "k") is None


@pytest.fixture
def cached_config(package_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private cache, and a site file old enough to be cached."""
    privatecache.create()
    monkeypatch.setattr(privatecache, "RACY_SECONDS", -1.0)
    site = tmp_path / "site.toml"
    site.write_text('cpus = 3\naccount = "abc"\n')
    return site


def no_parser(text: str) -> None:
    raise AssertionError("parsed again although unchanged")


def test_config_file_is_parsed_once_then_read_from_the_cache(cached_config: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    assert configfiles.read_file(str(cached_config)) == {"cpus": 3, "account": "abc"}
    monkeypatch.setattr(configfiles, "toml_loads", no_parser)
    assert configfiles.read_file(str(cached_config)) == {"cpus": 3, "account": "abc"}


@pytest.mark.parametrize("change", ["rewrite", "replace"])
def test_a_changed_config_file_is_parsed_again(cached_config: Path, change: str) -> None:
    assert configfiles.read_file(str(cached_config)) == {"cpus": 3, "account": "abc"}
    if change == "rewrite":
        cached_config.write_text('cpus = 4\naccount = "xyz"\n')  # same size
        os.utime(cached_config, ns=(1, 1))  # a tool that restores mtimes still moves it
    else:
        (cached_config.parent / "new.toml").write_text('cpus = 4\naccount = "xyz"\n')
        os.replace(cached_config.parent / "new.toml", cached_config)
    assert configfiles.read_file(str(cached_config)) == {"cpus": 4, "account": "xyz"}
    cached_config.write_text("cpus = [\n")
    with pytest.raises(config.ConfigError):
        configfiles.read_file(str(cached_config))


def test_a_config_file_changed_just_now_is_not_cached(package_dir: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    privatecache.create()
    site = tmp_path / "site.toml"
    site.write_text("cpus = 3\n")
    assert configfiles.read_file(str(site)) == {"cpus": 3}
    assert list((package_dir / privatecache.NAME).iterdir()) == []


WARM_UP = """
import sys
from galyleo import render, startup
before = ("requests" in sys.modules, "galyleo.satellite" in sys.modules, render._ENV is not None)
assert before == (False, False, False), f"already warm before the warm-up: {before}"
thread = startup.warm_up()
thread.join(timeout=30)
assert not thread.is_alive(), "warm-up still running"
print("requests" in sys.modules, "galyleo.satellite" in sys.modules, render._ENV is not None)
"""


def test_warm_up_compiles_and_imports() -> None:
    # A fresh interpreter: in this one, other tests have already imported requests and built the environment.
    result = run_galyleo([], python_code=WARM_UP)
    assert result.status == 0, result.err
    assert result.out.split() == ["True", "True", "True"]
