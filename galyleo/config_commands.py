"""`config show` and `config set`: the effective settings with their origins, and one
setting written to the user file (checked first by the rule the command line uses, spec.RULES).

config.py loads the settings; this module is the two commands on top of it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from dataclasses import asdict, replace
from typing import Any, Optional

from galyleo import config as site
from galyleo import reasons, records, slurm, spec
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
    (spec.py), so a value every later launch would refuse is refused now, file untouched;
    so is a default time limit above its partition's maximum (every launch would pend for ever).
    """
    kinds = {f: site.kind_of(t) for f, t in site.Config.__annotations__.items()}
    if key not in kinds:
        raise site.ConfigError(f"config set {key!r}: unknown key (known: {', '.join(sorted(kinds))})")
    where = f"config set {key}"
    if key in spec.RULES:
        typed = spec.setting_value(key, where, value)
    else:
        typed = site.from_text("config set", value, kinds[key], key)
    typed = site.check_value("config set", key, typed, kinds[key])
    if key in ("time_limit", "partition"):
        settings = replace(current or site.Config(), **{key: typed})
        within_partition(f"{where} {typed!r}", settings.time_limit, settings.partition)
    path = site.user_path(dict(os.environ))
    line = f"{key} = {json.dumps(typed)}"
    with user_file_lock(path):
        lines = open(path, encoding="utf-8").read().splitlines() if os.path.exists(path) else []
        kept = [entry for entry in lines if entry.split("=", 1)[0].strip() != key]
        text = "\n".join(kept + [line]) + "\n"
        site.toml_loads(text)
        replace_private(path, text)
    print(f"{path}: {line}")
    return 0


def config_unset(key: str) -> int:
    """Remove KEY's line from the user file: the site's value (or the built-in one) applies again."""
    kinds = site.Config.__annotations__
    if key not in kinds:
        raise site.ConfigError(f"config unset {key!r}: unknown key (known: {', '.join(sorted(kinds))})")
    path = site.user_path(dict(os.environ))
    if not os.path.exists(path):
        print(f"{path}: no {key} set")
        return 0
    with user_file_lock(path):
        lines = open(path, encoding="utf-8").read().splitlines()
        kept = [entry for entry in lines if entry.split("=", 1)[0].strip() != key]
        if len(kept) != len(lines):
            replace_private(path, "\n".join(kept) + "\n" if kept else "")
    print(f"{path}: " + (f"{key} removed" if len(kept) != len(lines) else f"no {key} set"))
    return 0


def within_partition(where: str, time_limit: str, partition: str) -> None:
    """UsageError if TIME_LIMIT is above PARTITION's MaxTime (sinfo's; no answer, no check)."""
    found = slurm.partition(partition)
    most = spec.seconds(found.max_time) if found else None
    if found and most and (spec.seconds(time_limit) or 0) > most:
        raise UsageError(f"{where}: time_limit {time_limit} is above the maximum: "
                         f"{reasons.limit('PartitionTimeLimit', found)} (a launch would never start)")


def user_file_lock(path: str) -> Any:
    """The user config's folder (made 0700 if new) and an exclusive lock beside the file:
    concurrent `config set`s each read the others' keys."""
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        made = folder
        while not os.path.isdir(os.path.dirname(made)):
            made = os.path.dirname(made)
        os.makedirs(folder, mode=0o700, exist_ok=True)
        os.chmod(made, 0o700)  # makedirs gives the intermediate folders the umask's mode
    fd = os.open(path + ".lock", os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)

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
