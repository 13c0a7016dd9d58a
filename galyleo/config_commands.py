"""`config show` and `config set`: the effective settings with their origins, and one
setting written to the user file (checked first by the rule the command line uses, rules.RULES).

config.py loads the settings; this module is the two commands on top of it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import tempfile
from dataclasses import asdict, replace
from typing import Any, List, Optional

from galyleo import config as site
from galyleo import configfiles, connect, reasons, records, rules, slurm
from galyleo.errors import UsageError


def config_show(loaded: Any, as_doc: bool) -> int:
    """Each effective setting and where it came from."""
    values = asdict(loaded.config)
    origins = dict(loaded.origins)
    if not values["satellite_url"]:  # unset means derived: show the URL galyleo really calls
        values["satellite_url"] = loaded.config.management_url
        origins["satellite_url"] = "derived from satellite_domain"
    if as_doc:
        doc = {key: {"value": value, "from": origins.get(key, "built-in")} for key, value in values.items()}
        print(json.dumps(doc, indent=2, sort_keys=True))
        return 0
    width = max(len(k) for k in values)
    for key, value in values.items():
        print(f"{key:<{width}}  {json.dumps(value):<40}  {origins.get(key, 'built-in')}")
    for name, options in sorted(getattr(loaded, "presets", {}).items()):
        print(f"preset {name}: " + " ".join(f"{k}={json.dumps(v)}" for k, v in options.items()))
    return 0


def config_set(key: str, value: str, current: Optional[site.Config] = None) -> int:
    """Set KEY in the user file, keeping its other lines (and comments) as they are.

    A setting the command line also takes is checked by the command line's own rule
    (rules.py), so a value every later launch would refuse is refused now, file untouched;
    so is a default time limit above its partition's maximum (every launch would pend for ever).
    """
    kinds = {f: site.kind_of(t) for f, t in site.Config.__annotations__.items()}
    if key not in kinds:
        raise site.ConfigError(f"config set {key!r}: unknown key (known: {', '.join(sorted(kinds))})")
    if key in site.SITE_ONLY:
        raise site.ConfigError(configfiles.limit_words("config set", key))
    where = f"config set {key}"
    if key in rules.RULES and kinds[key] is not list:
        typed = rules.setting_value(key, where, value)
    else:  # lists as the site file has them: a TOML array, or a comma list
        typed = site.from_text(where, value, kinds[key], key)
    typed = site.check_value(where, key, typed, kinds[key])
    settings = replace(current or site.Config(), **{key: typed})
    if key in ("time_limit", "partition"):
        within_partition(f"{where} {typed!r}", settings.time_limit, settings.partition)
    if key in ("connect", "connect_allowed") and settings.connect not in settings.connect_allowed:
        raise UsageError(f"{where}: connect {settings.connect!r} would not be in connect_allowed "
                         f"{settings.connect_allowed!r} (every launch would be refused)")
    path = configfiles.user_path(dict(os.environ))
    line = f"{key} = {json.dumps(typed)}"
    with user_file_lock(path):
        target = os.path.realpath(path)  # a symlinked config.toml stays a link: its target is written
        old = open(target, encoding="utf-8").read() if os.path.exists(target) else ""
        before = parsed(path, old)
        text = "\n".join(without(old.splitlines(), key) + [line]) + "\n"
        if parsed(path, text, quiet=True) != dict(before, **{key: typed}):
            raise site.ConfigError(f"config set {key}: cannot edit {path} safely (the key is inside a table,"
                                   " or written over several lines there): edit that file by hand")
        replace_private(target, text)
    print(f"{path}: {line}")
    return 0


def parsed(path: str, text: str, quiet: bool = False) -> Any:
    """TEXT (the user file PATH) as TOML; a file it cannot parse is one line naming it (QUIET: None)."""
    try:
        return site.toml_loads(text)
    except ValueError as exc:  # tomllib/tomli's TOMLDecodeError
        if quiet:
            return None
        raise site.ConfigError(f"config {path}: cannot parse it ({exc}): mend it by hand first") from None


def without(lines: List[str], key: str) -> List[str]:
    """LINES less KEY's entry: its line, and the lines of an array it opens and closes later."""
    kept: List[str] = []
    inside = False
    for entry in lines:
        name, _, value = entry.partition("=")
        if not inside and name.strip() == key:
            inside = value.strip().startswith("[") and "]" not in value
            continue
        if inside:
            inside = "]" not in entry
            continue
        kept.append(entry)
    return kept


def config_check(path: Optional[str]) -> int:
    """`config check [FILE]` (default: the site file): one line per problem and exit 2, or exit 0.
    Beyond what loading refuses, the values a launch would refuse (rules.RULES, connect)."""
    if path is None:
        paths = configfiles.candidate_paths(dict(os.environ), sys.argv[0])
        path = next((p for p in paths if os.path.exists(p)), None)
        if path is None:
            raise site.ConfigError(f"config check: no site config found (looked for {', '.join(paths)})")
    found = configfiles.problems(path)
    try:
        data = configfiles.read_file(path)
    except site.ConfigError:
        data = {}  # unreadable or not TOML: already the one problem found
    for key, value in data.items():
        if key in rules.RULES and not any(f": {key} " in p for p in found) and not isinstance(value, list):
            found += launch_refusal("", rules.setting_value, key, f"config {path}: {key}", str(value))
    if not found:
        found += launch_refusal(f"config {path}: ", connect.choose, None, configfiles.parse_file(path))
    for problem in found:
        sys.stderr.write(f"galyleo: error: {problem}\n")
    if found:
        return 2
    print(f"{path}: ok")
    return 0


def launch_refusal(where: str, check: Any, *args: Any) -> List[str]:
    """The message of the UsageError CHECK(*ARGS) raises (after WHERE), as a list of zero or one."""
    try:
        check(*args)
    except UsageError as exc:
        return [where + str(exc)]
    return []


def config_unset(key: str) -> int:
    """Remove KEY's line from the user file: the site's value (or the built-in one) applies again."""
    kinds = site.Config.__annotations__
    if key not in kinds:
        raise site.ConfigError(f"config unset {key!r}: unknown key (known: {', '.join(sorted(kinds))})")
    path = configfiles.user_path(dict(os.environ))
    if not os.path.exists(path):
        print(f"{path}: no {key} set")
        return 0
    with user_file_lock(path):
        lines = open(path, encoding="utf-8").read().splitlines()
        kept = without(lines, key)
        if len(kept) != len(lines):
            replace_private(path, "\n".join(kept) + "\n" if kept else "")
    print(f"{path}: " + (f"{key} removed" if len(kept) != len(lines) else f"no {key} set"))
    return 0


def within_partition(where: str, time_limit: str, partition: str) -> None:
    """UsageError if TIME_LIMIT is above PARTITION's MaxTime (sinfo's; no answer, no check)."""
    found = slurm.partition(partition)
    most = rules.seconds(found.max_time) if found else None
    if found and most and (rules.seconds(time_limit) or 0) > most:
        raise UsageError(f"{where}: time_limit {time_limit} is above the maximum: "
                         f"{reasons.limit('PartitionTimeLimit', found)} (a launch would never start)")


def user_file_lock(path: str) -> Any:
    """The user config's folder (made 0700 if new) and an exclusive lock on that folder:
    concurrent `config set`s each read the others' keys, and no lock file is left behind."""
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        made = folder
        while not os.path.isdir(os.path.dirname(made)):
            made = os.path.dirname(made)
        os.makedirs(folder, mode=0o700, exist_ok=True)
        os.chmod(made, 0o700)  # makedirs gives the intermediate folders the umask's mode
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))

    @contextlib.contextmanager
    def held() -> Any:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    return held()


def replace_private(path: str, text: str) -> None:
    """Write PATH (0600, whoever's umask) through a unique temporary file, then rename it into place."""
    fd, tmp = tempfile.mkstemp(prefix=".config.", dir=os.path.dirname(path))  # mkstemp: 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        records.remove(tmp)
        raise
