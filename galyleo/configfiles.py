"""Where the settings come from, in layers: built-in < site file < user file < environment.

The site file is `$GALYLEO_CONFIG`, else `galyleo.toml` beside the zipapp (or beside the
file a symlink points to); the user file `~/.config/galyleo/config.toml`. A missing site
file gives the built-in defaults and one warning; a broken file is a ConfigError naming it
(and the line, when TOML says). Output: a LoadedConfig, the Config and where each value
came from. What a setting may hold is config.py's; the command line comes later (spec.py).
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field, fields
from typing import Any, Dict, List, Optional, Tuple

from galyleo import privatecache
from galyleo.config import SITE_ONLY, Config, brief, check_ports, from_mapping, from_text, kind_of, toml_loads
from galyleo.errors import ConfigError


@dataclass(frozen=True)
class LoadedConfig:
    """The effective Config, the site file it came from (None: built-in), where each
    value came from (for `config show`), and a warning to print."""

    config: Config
    path: Optional[str]
    warning: str = ""
    origins: Dict[str, str] = field(default_factory=dict)
    presets: Dict[str, Dict[str, Any]] = field(default_factory=dict)  # `[presets.NAME]`: launch options by name


# sbatch's own input variables that name a galyleo setting: folded into it (below the
# GALYLEO_* variable and the command line); slurm.submit keeps them all from sbatch.
SBATCH_ENV = {"SBATCH_ACCOUNT": "account", "SBATCH_PARTITION": "partition", "SBATCH_TIMELIMIT": "time_limit",
              "SBATCH_QOS": "qos", "SBATCH_RESERVATION": "reservation", "SBATCH_CONSTRAINT": "constraint",
              "SBATCH_JOB_NAME": "job_name"}


def candidate_paths(environ: Dict[str, str], argv0: str) -> List[str]:
    """Where a site config may live, in order; `$GALYLEO_CONFIG` alone when set."""
    explicit = environ.get("GALYLEO_CONFIG")
    if explicit:
        return [explicit]
    dirs: List[str] = []
    for path in (argv0, os.path.realpath(argv0)):
        folder = os.path.dirname(os.path.abspath(path))
        if folder not in dirs:
            dirs.append(folder)
    return [os.path.join(d, "galyleo.toml") for d in dirs]


def user_path(environ: Dict[str, str]) -> str:
    """Per-user defaults: `$XDG_CONFIG_HOME/galyleo/config.toml` (~/.config by default)."""
    base = environ.get("XDG_CONFIG_HOME") or os.path.join(environ.get("HOME") or os.path.expanduser("~"), ".config")
    return os.path.join(base, "galyleo", "config.toml")


def load(environ: Optional[Dict[str, str]] = None, argv0: Optional[str] = None) -> LoadedConfig:
    """Built-in < site file < user file < environment; the command line comes later (spec.py)."""
    environ = dict(os.environ if environ is None else environ)
    paths = candidate_paths(environ, argv0 if argv0 is not None else sys.argv[0])
    site = next((p for p in paths if os.path.exists(p)), None)
    if site is None and environ.get("GALYLEO_CONFIG"):
        raise ConfigError(f"GALYLEO_CONFIG {paths[0]!r}: no such file")
    config, origins = Config(), {f.name: "built-in" for f in fields(Config)}
    warning = "" if site else f"no site config found (looked for {', '.join(paths)}); using built-in defaults"
    layers = [(site, "site file"), (user_path(environ), "user file")]
    presets: Dict[str, Dict[str, Any]] = {}
    for path, kind in layers:
        if path and os.path.exists(path):
            data = dict(read_file(path))
            presets.update(preset_tables(data.pop("presets", {}), f"config {path}"))  # the user's override the site's
            if path != site:
                refuse_limits(data, f"config {path}")
            config = from_mapping(data, f"config {path}", config)
            origins.update({key: f"{kind} {path}" for key in data})
    data, names = environment_values(environ)
    refuse_limits(data, "environment", names)
    config = from_mapping(data, "environment", config, names)
    origins.update({key: f"environment {names[key]}" for key in data})
    check_ports(config, origins)
    return LoadedConfig(config, site, warning, origins, presets)


def preset_tables(tables: Any, where: str) -> Dict[str, Dict[str, Any]]:
    """`[presets.NAME]` tables: each a table of launch options (checked when a launch uses it)."""
    if not isinstance(tables, dict) or not all(isinstance(t, dict) for t in tables.values()):
        raise ConfigError(f"{where}: presets: expected tables [presets.NAME] of launch options")
    for name in tables:
        if not re.match(r"[A-Za-z0-9_.-]{1,64}\Z", name):
            raise ConfigError(f"{where}: presets.{brief(name)}: a name of letters, digits, '_', '.' or '-'")
    return {str(name): dict(table) for name, table in tables.items()}


def environment_values(environ: Dict[str, str]) -> Tuple[Dict[str, Any], Dict[str, str]]:
    """`GALYLEO_<KEY>` for any key, and sbatch's own input variables in SBATCH_ENV."""
    kinds = {f.name: kind_of(f.type) for f in fields(Config)}
    values: Dict[str, Any] = {}
    names: Dict[str, str] = {}
    wanted = dict(SBATCH_ENV)
    wanted.update({f"GALYLEO_{key.upper()}": key for key in kinds})
    for variable, key in wanted.items():
        if environ.get(variable, "") == "":
            continue
        values[key] = from_text(f"environment {variable}", environ[variable], kinds[key], key)
        names[key] = variable
    return values, names


def refuse_limits(data: Dict[str, Any], where: str, names: Optional[Dict[str, str]] = None) -> None:
    """ConfigError for the first site limit (SITE_ONLY) DATA sets: only the site file may."""
    for key in (k for k in SITE_ONLY if k in data):
        label = f"{where} {names[key]}" if names and key in names else where
        raise ConfigError(limit_words(label, key))


def limit_words(where: str, key: str) -> str:
    return f"{where}: {key} is a site limit: only the site file may set it"


def read_file(path: str) -> Dict[str, Any]:
    """One TOML file as a dict; errors name the file (and the line, from TOML).
    In a pyz, an unchanged file is parsed only once (privatecache.parsed)."""
    try:
        data: Dict[str, Any] = privatecache.parsed(path, lambda raw: toml_loads(raw.decode("utf-8")))
    except OSError as exc:
        raise ConfigError(f"config {path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config {path}: not UTF-8 text") from None
    except ValueError as exc:  # tomllib/tomli TOMLDecodeError is a ValueError; so is int()'s digit limit
        if "integer string conversion" in str(exc):
            raise ConfigError(f"config {path}: a number with thousands of digits: expected a whole number "
                              "in the setting's range") from None
        raise ConfigError(f"config {path}: {exc}") from None
    return data


def problems(path: str) -> List[str]:
    """Every problem of one config file, one message each (loading stops at the first)."""
    try:
        data = read_file(path)
    except ConfigError as exc:
        return [str(exc)]
    found = []
    for key, value in data.items():
        try:
            from_mapping({key: value}, f"config {path}")
        except ConfigError as exc:
            found.append(str(exc))
    if not found:
        try:
            check_ports(from_mapping(data, f"config {path}"), {key: f"config {path}" for key in data})
        except ConfigError as exc:
            found.append(str(exc))
    return found


def parse_file(path: str) -> Config:
    """Read one TOML file into a Config, rejecting unknown keys and wrong types."""
    return from_mapping(read_file(path), f"config {path}")
