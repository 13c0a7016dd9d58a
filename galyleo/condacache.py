"""The conda-pack cache that `--cache` jobs fill: where it is, what is in it, removal.

A job writes `<key>.tar.gz` (key: conda.cache_key of the yml and `uname -sm`)
and `<key>.info` (`name=`, `yml=`, `platform=`, `created=` lines), each to a
temporary name first and renamed into place, so a listed pack is always whole.
Dot entries (a `mktemp -d` directory per build) are builds in progress, or left
by a killed job.
"""

from __future__ import annotations

import os
import shutil
import stat as stat_mode
import sys
import time
from dataclasses import dataclass
from typing import Dict, List, Sequence

from galyleo import conda
from galyleo.config import Config
from galyleo.errors import UsageError

KEY = conda.KEY
STALE_SECONDS = 86400


@dataclass(frozen=True)
class Entry:
    key: str
    size: int
    created: float
    info: Dict[str, str]


def directory(config: Config, output_dir: str = "") -> str:
    """The cache directory: `conda_cache_dir` (`~` expanded), else `<output_dir>/cache`."""
    if config.conda_cache_dir:
        return os.path.abspath(os.path.expanduser(config.conda_cache_dir))
    from galyleo import records

    return os.path.join(output_dir or records.expand(config.output_dir), "cache")


def read_info(path: str) -> Dict[str, str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return dict(line.rstrip("\n").split("=", 1) for line in handle if "=" in line)
    except OSError:
        return {}


def entries(folder: str) -> List[Entry]:
    """Whole packs only, newest first."""
    found = []
    for name in os.listdir(folder) if os.path.isdir(folder) else []:
        key = name[: -len(".tar.gz")]
        if not name.endswith(".tar.gz") or not KEY.match(key):
            continue
        stat = os.stat(os.path.join(folder, name))
        found.append(Entry(key, stat.st_size, stat.st_mtime, read_info(os.path.join(folder, key + ".info"))))
    return sorted(found, key=lambda e: -e.created)


def stale(folder: str, now: float) -> List[str]:
    """Temporary files of builds that ended without renaming (older than a day)."""
    names = os.listdir(folder) if os.path.isdir(folder) else []
    return [n for n in names if n.startswith(".") and now - os.lstat(os.path.join(folder, n)).st_mtime > STALE_SECONDS]


def human(size: int) -> str:
    value = float(size)
    for unit in ("B", "K", "M", "G"):
        if value < 1024 or unit == "G":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    return f"{value:.1f}T"


def show(config: Config) -> int:
    folder = directory(config)
    found = entries(folder)
    if not found:
        print(f"no cached environments in {folder}")
        return 0
    rows = [("KEY", "SIZE", "CREATED", "NAME", "PLATFORM", "YML")]
    for e in found:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(e.created))
        rows.append((e.key[:12], human(e.size), when, e.info.get("name", "?"), e.info.get("platform", "?"),
                     e.info.get("yml", "?")))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for row in rows:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:5])) + "  " + row[5])
    return 0


def remove(config: Config, keys: Sequence[str], everything: bool) -> int:
    """Remove packs by key (a unique prefix is enough) or all; also stale temporaries."""
    if everything == bool(keys):
        raise UsageError("cache rm: give keys (from `galyleo cache list`) or --all, not both or neither")
    folder = directory(config)
    known = [e.key for e in entries(folder)]
    chosen = known if everything else [match_key(k, known) for k in keys]
    for key in chosen:
        for suffix in (".tar.gz", ".info"):
            try:
                os.unlink(os.path.join(folder, key + suffix))
            except FileNotFoundError:
                pass
        print(f"removed {key}")
    status = 0
    for name in stale(folder, time.time()):
        problem = discard(os.path.join(folder, name))
        if problem:
            sys.stderr.write(f"galyleo: warning: cannot remove the stale temporary {name}: {problem}\n")
            status = 1
        else:
            sys.stderr.write(f"galyleo: removed the stale temporary {name}\n")
    return status


def discard(path: str) -> str:
    """Remove one temporary entry: a build directory (`mktemp -d`) with all it holds, or a
    file; a symlink is removed itself, never followed (rmtree does not follow links inside).
    Returns '' when it is gone, else the reason."""
    try:
        if stat_mode.S_ISDIR(os.lstat(path).st_mode):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    except FileNotFoundError:
        pass  # another `cache rm`, or the job that made it, got there first
    except OSError as exc:
        return exc.strerror or str(exc)
    return ""


def match_key(prefix: str, known: Sequence[str]) -> str:
    hits = [k for k in known if k.startswith(prefix.lower())] if prefix else []
    if len(hits) != 1:
        what = "no cached environment" if not hits else "more than one cached environment"
        raise UsageError(f"cache rm {prefix!r}: {what} has that key (see `galyleo cache list`)")
    return hits[0]
