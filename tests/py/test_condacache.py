"""`galyleo cache rm`: packs by key, by unique prefix or all, and the day-old
temporaries a killed build left (a job makes them with `mktemp -d`, so they are
directories). Runs the CLI in-process against a cache directory under tmp_path.
"""

import os
import time
from pathlib import Path
from typing import Callable, List

import pytest

from galyleo import condacache

KEY_A = "a" * 8 + "0" * 24
KEY_B = "a" * 8 + "1" * 24
KEY_C = "c" * 32
DAY_AND_A_BIT = condacache.STALE_SECONDS + 3600


@pytest.fixture
def cache_dir(tmp_path: Path, test_home: Path, site_toml: Callable[..., Path],
              monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache directory that the site config names as conda_cache_dir."""
    folder = tmp_path / "cache"
    folder.mkdir()
    base = (Path(__file__).parent / "data" / "site.toml").read_text(encoding="utf-8")
    monkeypatch.setenv("GALYLEO_CONFIG", str(site_toml(base + f'conda_cache_dir = "{folder}"\n')))
    return folder


def add_pack(folder: Path, key: str) -> None:
    (folder / f"{key}.tar.gz").write_bytes(b"pack")
    (folder / f"{key}.info").write_text(f"name=galyleo-conda-{key[:4]}\n", encoding="utf-8")


def age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then), follow_symlinks=False)


def names(folder: Path) -> List[str]:
    return sorted(os.listdir(folder))


def test_rm_all_removes_stale_dot_files_and_directories_keeps_fresh(cli, cache_dir: Path) -> None:
    add_pack(cache_dir, KEY_C)
    old_dir = cache_dir / f".{KEY_A}.Xy12Zq"
    (old_dir / "sub").mkdir(parents=True)
    (old_dir / "sub" / "pack.tar.gz").write_bytes(b"partial")
    (old_dir / "info").write_text("name=x\n", encoding="utf-8")
    old_file = cache_dir / ".old-file"
    old_file.write_text("x", encoding="utf-8")
    fresh_dir = cache_dir / f".{KEY_B}.Ab34Cd"
    fresh_dir.mkdir()
    (fresh_dir / "pack.tar.gz").write_bytes(b"building")
    fresh_file = cache_dir / ".fresh-file"
    fresh_file.write_text("y", encoding="utf-8")
    for path in (old_dir, old_file):
        age(path, DAY_AND_A_BIT)

    result = cli(["cache", "rm", "--all"])

    assert (result.status, result.out) == (0, f"removed {KEY_C}\n"), result.err
    assert "Traceback" not in result.err
    assert names(cache_dir) == sorted([fresh_dir.name, fresh_file.name])
    assert (fresh_dir / "pack.tar.gz").read_bytes() == b"building"
    assert f"removed the stale temporary {old_dir.name}" in result.err
    assert f"removed the stale temporary {old_file.name}" in result.err


def test_stale_symlinks_are_removed_never_followed(cli, cache_dir: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("keep", encoding="utf-8")
    link_dir = cache_dir / ".link-to-dir"
    link_dir.symlink_to(outside, target_is_directory=True)
    link_file = cache_dir / ".link-to-file"
    link_file.symlink_to(outside / "precious")
    for path in (link_dir, link_file):
        age(path, DAY_AND_A_BIT)

    result = cli(["cache", "rm", "--all"])

    assert result.status == 0, result.err
    assert names(cache_dir) == []
    assert names(outside) == ["precious"]
    assert (outside / "precious").read_text(encoding="utf-8") == "keep"


@pytest.mark.parametrize("given", [KEY_C, KEY_C[:3], KEY_C.upper()[:6]], ids=["key", "prefix", "upper-prefix"])
def test_rm_by_key_or_unique_prefix(cli, cache_dir: Path, given: str) -> None:
    for key in (KEY_A, KEY_B, KEY_C):
        add_pack(cache_dir, key)

    result = cli(["cache", "rm", given])

    assert (result.status, result.out) == (0, f"removed {KEY_C}\n"), result.err
    assert names(cache_dir) == sorted(f"{k}{s}" for k in (KEY_A, KEY_B) for s in (".tar.gz", ".info"))


def test_ambiguous_prefix_is_refused_and_nothing_is_removed(cli, cache_dir: Path) -> None:
    for key in (KEY_A, KEY_B, KEY_C):
        add_pack(cache_dir, key)
    stale = cache_dir / ".stale"
    stale.mkdir()
    age(stale, DAY_AND_A_BIT)
    before = names(cache_dir)

    result = cli(["cache", "rm", KEY_C, "aaaa"])

    assert result.status == 2
    assert result.out == ""
    assert "'aaaa': more than one cached environment" in result.err
    assert names(cache_dir) == before


def test_unknown_key_is_refused(cli, cache_dir: Path) -> None:
    add_pack(cache_dir, KEY_C)

    result = cli(["cache", "rm", "ffff"])

    assert result.status == 2
    assert "'ffff': no cached environment" in result.err
    assert names(cache_dir) == sorted([f"{KEY_C}.tar.gz", f"{KEY_C}.info"])


def test_a_stale_entry_that_cannot_be_removed_is_one_warning_and_exit_1(cli, cache_dir: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    stuck = cache_dir / ".stuck"
    stuck.mkdir()
    age(stuck, DAY_AND_A_BIT)
    add_pack(cache_dir, KEY_C)

    def refuse(path: str, *args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(condacache.shutil, "rmtree", refuse)

    result = cli(["cache", "rm", "--all"])

    assert (result.status, result.out) == (1, f"removed {KEY_C}\n")
    assert result.err_lines == ["galyleo: warning: cannot remove the stale temporary .stuck: Permission denied"]
    assert names(cache_dir) == [".stuck"]
