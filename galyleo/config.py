"""What a setting is: the Config dataclass (every setting and its built-in default) and what
each setting may hold (types, choices, patterns, ranges), checked wherever a value comes from.

Input: a mapping of settings (a TOML file's, the environment's as text); output: a frozen
Config, or a ConfigError naming where the bad value came from. Where the values come from,
in layers, is configfiles.py's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, replace
from typing import Any, Dict, List, Optional, Tuple

from galyleo import apps, idle
from galyleo.connect import MODES as CONNECT_MODES
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
    interface: str = apps.NAMES[0]
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
    connect: str = CONNECT_MODES[0]
    connect_allowed: List[str] = field(default_factory=lambda: list(CONNECT_MODES))
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
    "interface": apps.NAMES,
    "connect": CONNECT_MODES,
    "connect_allowed": CONNECT_MODES,  # each item of the list
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
    "connect_allowed": (f"({'|'.join(CONNECT_MODES)})\\Z", f"a list of {' and/or '.join(CONNECT_MODES)}, not empty"),
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
