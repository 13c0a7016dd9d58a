"""Site configuration: one TOML file a site admin edits next to the pyz.

Looked up in `$GALYLEO_CONFIG`, else `galyleo.toml` beside the zipapp (or beside
the file a symlink points to). A missing file gives the built-in defaults and one
warning; a broken one is a ConfigError naming the file (and line, when TOML says).
Output: a frozen Config, plus where each value came from (for `help`).
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field, fields, replace
from typing import Any, Dict, List, Optional, Tuple

from galyleo import contract, idle, privatecache
from galyleo.errors import ACCEPT, ConfigError

# The profile.d scripts come first: they are what a login shell runs, and only they
# set the site's MODULEPATH (the bare init files define `module` and nothing else).
DEFAULT_MODULE_INITS = (
    "/etc/profile.d/lmod.sh",
    "/etc/profile.d/modules.sh",
    "/usr/share/lmod/lmod/init/bash",
    "/usr/share/Modules/init/bash",
)


@dataclass(frozen=True)
class Config:
    """Every site setting, with the built-in default a site gets without a file."""

    satellite_domain: str = "expanse-user-content.sdsc.edu"
    satellite_url: str = ""
    ca_bundle: str = ""
    http_timeout: int = 10
    account: str = ""
    require_account: bool = True
    partition: str = ""
    cpus: int = 1
    memory: int = 0
    gpus: int = 0
    time_limit: str = "00:30:00"
    qos: str = ""
    reservation: str = ""
    constraint: str = ""
    interface: str = "lab"
    bind_address: str = ""
    node_domain_suffix: str = ""
    port_min: int = 0
    port_max: int = 0
    ready_timeout: int = 300
    stop_grace: int = 5
    module_init: List[str] = field(default_factory=lambda: list(DEFAULT_MODULE_INITS))
    module_reset: str = "reset"
    default_modules: List[str] = field(default_factory=list)
    scratch_dir: str = ""
    container_runtime: str = "auto"
    conda_cache_dir: str = ""
    conda_installer_url: str = ""
    preflight_timeout: int = 20
    output_dir: str = "~/.galyleo"
    job_name: str = "galyleo"
    signal_lead: int = 300
    idle_timeout: int = 0
    idle_timeout_max: int = 0
    time_limit_max: str = ""
    proxy_address: str = ""
    shiv_keep: int = 2
    connect: str = "satellite"
    connect_allowed: List[str] = field(default_factory=lambda: ["satellite", "ssh"])
    login_host: str = ""
    ssh_jump: str = ""
    ssh_config: str = ""
    ssh_persist: int = 30
    remote_galyleo: str = "galyleo"

    @property
    def management_url(self) -> str:
        return (self.satellite_url or f"https://manage.{self.satellite_domain}").rstrip("/")


CHOICES: Dict[str, Tuple[str, ...]] = {
    "module_reset": ("reset", "purge", "none"),
    "container_runtime": ("auto", "apptainer", "singularity"),
    "interface": ("lab", "notebook", "voila"),
    "connect": contract.CONNECT_MODES,
    "connect_allowed": contract.CONNECT_MODES,  # each item of the list
}

# Values that end up inside URLs, JSON records and the job script unquoted by design.
PATTERNS: Dict[str, Tuple[str, str]] = {
    "satellite_domain": (r"[A-Za-z0-9.-]+\Z", "a DNS domain (letters, digits, '.', '-')"),
    "satellite_url": (r"(https://[A-Za-z0-9.:-]+(/[A-Za-z0-9._~/-]*)?)?\Z", "an https:// URL"),
    "proxy_address": (r"[A-Za-z0-9.:-]*\Z", "an IP address or host name"),
    "login_host": (r"([A-Za-z0-9][A-Za-z0-9.-]*)?\Z", "a host name users ssh to (letters, digits, '.', '-')"),
    "conda_installer_url": (r"(https://\S+)?\Z", "an https:// URL of a conda installer (e.g. Miniforge's)"),
    "ssh_jump": (r"([A-Za-z0-9_][A-Za-z0-9_.@:-]*(,[A-Za-z0-9_][A-Za-z0-9_.@:-]*)*)?\Z",
                 "a jump host as ssh -J takes it: [user@]host[:port], or a comma list of them"),
    "remote_galyleo": (r"[^\s-].*\Z", "galyleo's command or path on the remote host (not empty, no leading '-')"),
}

# What every item of a list setting must be, wherever the list comes from: (pattern, accepted).
ITEMS: Dict[str, Tuple[str, str]] = {
    "connect_allowed": (r"(satellite|ssh)\Z", "a list of satellite and/or ssh, not empty"),
    "default_modules": (r"[^\s,-][^\s,]*\Z", ACCEPT["module"]),
    "module_init": (r"/[^\n\0]*\Z", "a list of absolute paths of files that set up `module`"),
}
NOT_EMPTY = ("connect_allowed",)

# Every whole-number setting has a range, checked by check_value wherever the value comes
# from (site file, user file, environment, `config set`). 0 is also allowed for ZERO_OFF:
# there it means "not set" (Slurm's default, the automatic port range, no warning).
RANGES: Dict[str, Tuple[int, int]] = {
    "http_timeout": (1, 3600),
    "cpus": (1, 100000),
    "memory": (1, 1048576),
    "gpus": (1, 100000),
    "port_min": (1024, 65535),
    "port_max": (1024, 65535),
    "ready_timeout": (1, 86400),
    "stop_grace": (1, 300),
    "preflight_timeout": (1, 3600),
    "signal_lead": (60, 65535),  # sbatch --signal's limit; below a minute the warning is useless
    "shiv_keep": (0, 100),
    "idle_timeout": (0, idle.MAX_MINUTES),
    "idle_timeout_max": (0, idle.MAX_MINUTES),
    "ssh_persist": (1, 10080),
}
# The site's limits on its users: only the site file may set them. A user file, the
# environment or `config set` that names one is refused (even to tighten it: a user who
# wants less asks for it with --idle-timeout, --time-limit or --connect, within the limit).
SITE_ONLY = ("idle_timeout_max", "time_limit_max", "connect_allowed")
ZERO_OFF = ("memory", "gpus", "port_min", "port_max", "signal_lead")
MAX_DIGITS = 12  # longer digit strings are refused before int() (which stops at 4300 digits)

TYPE_NAMES = {str: "a string", int: "a whole number", bool: "true or false", list: "a list of strings"}


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


def accepted_number(key: str) -> str:
    low, high = RANGES.get(key, (0, 10 ** MAX_DIGITS - 1))
    return f"a whole number from {low} to {high}" + (" (or 0: not set)" if key in ZERO_OFF else "")


def brief(value: Any) -> str:
    """repr(VALUE), cut short: a 5000-digit number still makes a one-line error."""
    text = repr(value)
    return text if len(text) <= 200 else f"{text[:60]}...({len(text)} characters)"


def from_text(where: str, text: str, kind: type, key: str = "") -> Any:
    """A setting given as text (environment, `config set`) converted to its type."""
    if kind is int:
        if not (text.isdigit() and text.isascii() and len(text) <= MAX_DIGITS):
            raise ConfigError(f"{where}: {key} = {brief(text)}: expected {accepted_number(key)}")
        return int(text)
    if kind is bool:
        if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise ConfigError(f"{where} {text!r}: expected true or false")
        return text.lower() in ("true", "1", "yes")
    if kind is list:
        return list_from_text(where, text, key)
    return text


def list_from_text(where: str, text: str, key: str) -> List[str]:
    """A TOML array (`["a", "b"]`, as the file would have it) or a comma list (`a,b`)."""
    if text.lstrip().startswith("["):
        try:
            value = toml_loads(f"value = {text}")["value"]
        except ValueError:
            raise ConfigError(f"{where}: {key} = {brief(text)}: expected a TOML list of strings") from None
        return check_value(where, key, value, list)
    items = [item.strip() for item in text.split(",")] if text.strip() else []
    if "" in items:
        raise ConfigError(f"{where}: {key} = {brief(text)}: expected {ITEMS.get(key, ('', ACCEPT['list']))[1]}")
    return items


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


def from_mapping(
    data: Dict[str, Any], where: str, base: Optional[Config] = None, names: Optional[Dict[str, str]] = None
) -> Config:
    """Validate keys and value types against Config's fields; return base updated."""
    kinds = {f.name: kind_of(f.type) for f in fields(Config)}
    updates: Dict[str, Any] = {}
    for key, value in data.items():
        if key not in kinds:
            raise ConfigError(f"{where}: unknown key {key!r} (known: {', '.join(sorted(kinds))})")
        label = f"{where} {names[key]}" if names and key in names else where
        updates[key] = check_value(label, key, value, kinds[key])
    return replace(base or Config(), **updates)


def kind_of(annotation: object) -> type:
    text = str(annotation)
    return {"str": str, "int": int, "bool": bool}.get(text, list)


def check_value(where: str, key: str, value: Any, kind: type) -> Any:
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if kind is list:
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    if not ok:
        raise ConfigError(f"{where}: {key} = {value!r}: expected {TYPE_NAMES[kind]}")
    texts = value if kind is list else [value] if kind is str else []
    if any("\n" in text or "\0" in text for text in texts):
        raise ConfigError(f"{where}: {key}: expected a single line of text")
    if key in ITEMS and (any(not re.match(ITEMS[key][0], v) for v in value) or (key in NOT_EMPTY and not value)):
        raise ConfigError(f"{where}: {key} = {value!r}: expected {ITEMS[key][1]}")
    if key in PATTERNS and not re.match(PATTERNS[key][0], value):
        raise ConfigError(f"{where}: {key} = {value!r}: expected {PATTERNS[key][1]}")
    if key in CHOICES and any(text not in CHOICES[key] for text in texts):
        many = "a list of " if kind is list else ""
        raise ConfigError(f"{where}: {key} = {brief(value)}: expected {many}one of {', '.join(CHOICES[key])}")
    if kind is int:
        low, high = RANGES.get(key, (0, 10 ** MAX_DIGITS - 1))
        if not (low <= value <= high or (value == 0 and key in ZERO_OFF)):
            raise ConfigError(f"{where}: {key} = {brief(value)}: expected {accepted_number(key)}")
    return list(value) if kind is list else value


def check_ports(config: Config, origins: Dict[str, str]) -> None:
    """port_min and port_max: both 0 (automatic), or a range low to high."""
    low, high = config.port_min, config.port_max
    if (low == 0) != (high == 0) or low > high:
        where = ", ".join(sorted({origins.get("port_min", "built-in"), origins.get("port_max", "built-in")}))
        raise ConfigError(f"{where}: port_min = {low}, port_max = {high}: expected both 0 (automatic), "
                          "or 1024 <= port_min <= port_max <= 65535")


def toml_loads(text: str) -> Dict[str, Any]:
    """tomllib on 3.11+, the bundled pure-Python tomli before that."""
    try:
        import tomllib  # type: ignore[import-not-found]
    except ImportError:  # Python < 3.11
        import tomli as tomllib  # type: ignore[no-redef]
    return tomllib.loads(text)
