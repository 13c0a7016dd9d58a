"""The rules for values the command line and the settings share, and Slurm's own forms.

Each rule takes (where, text): where names the option or the setting to blame, and the
result is the typed value or a UsageError naming it. RULES is the one table: spec.build
checks options and the settings behind them with it, `config set` checks a value with it
before writing. Also here: Slurm's time forms (seconds, canonical_time), read back by the
session commands.
"""

from __future__ import annotations

import os
import re
from typing import Any, Callable, Dict, List, Optional, Tuple

from galyleo.config import ZERO_OFF
from galyleo.errors import ACCEPT, bad
from galyleo.records import user_folder

NAME = re.compile(r"[A-Za-z0-9_.-]+\Z")
PARTITION = re.compile(r"[A-Za-z0-9_.-]+(,[A-Za-z0-9_.-]+)*\Z")
CONSTRAINT = re.compile(r"[A-Za-z0-9_.\-&|,*\[\]()!:]+\Z")
GRES = re.compile(r"[A-Za-z0-9_.-]+(:[A-Za-z0-9_.-]+)*(,[A-Za-z0-9_.-]+(:[A-Za-z0-9_.-]+)*)*\Z")
MEMORY = re.compile(r"([0-9]{1,10})([MGT]B?)?\Z", re.IGNORECASE)  # as sbatch --mem takes it
MEMORY_UNITS_MB = {"M": 1, "G": 1024, "T": 1024 * 1024}  # no unit: GB
MAX_MEMORY_GB = 1048576  # 1 PiB: far above any node, far below what overflows Slurm's MB count
TIME_FORMS = (  # at most 9 digits per field: int() of a 5000-digit string would raise
    re.compile(r"(?P<m>[0-9]{1,9})\Z"),
    re.compile(r"(?P<m>[0-9]{1,9}):(?P<s>[0-9]{1,2})\Z"),
    re.compile(r"(?P<h>[0-9]{1,9}):(?P<m>[0-9]{1,2}):(?P<s>[0-9]{1,2})\Z"),
    re.compile(r"(?P<d>[0-9]{1,9})-(?P<h>[0-9]{1,2})(:(?P<m>[0-9]{1,2})(:(?P<s>[0-9]{1,2}))?)?\Z"),
)
MAX_TIME_DAYS = 365  # no partition runs a job longer; Slurm's own limit is larger but not this
MAX_COUNT = 100000
HOSTLIST = re.compile(r"[A-Za-z0-9_.\-\[\],]+\Z")  # node names and ranges: node[01-04],gpu7 (no file paths)
DIGITS = re.compile(r"[0-9]{1,9}\Z")


def matching(option: str, value: str, accepted: str, pattern: "re.Pattern[str]") -> str:
    """VALUE if empty or matched by PATTERN (a name, partition, hostlist, ...)."""
    if value and not pattern.match(value):
        raise bad(option, value, accepted)
    return value


def nonempty(option: str, value: Optional[str]) -> str:
    """VALUE, "" if not given; a given value must not be blank."""
    if value is None:
        return ""
    if not value.strip():
        raise bad(option, value, ACCEPT["nonempty"])
    return value


def has_control(value: str) -> bool:
    """Newlines, tabs, NUL and the like: no module, image or env name holds one."""
    return any(ord(c) < 32 or ord(c) == 127 for c in value)


def spaced(value: str) -> bool:
    """A space or control character: not in a module name or an image URI."""
    return " " in value or has_control(value)


def bad_module(name: str) -> bool:
    return not name.strip() or name.startswith("-") or spaced(name)


def count(option: str, value: str) -> int:
    """A count of CPUs or GPUs: 1 to MAX_COUNT."""
    if not DIGITS.match(value) or not 1 <= int(value) <= MAX_COUNT:  # ASCII only: '²'.isdigit()
        raise bad(option, value, ACCEPT["count"])
    return int(value)


def memory(option: str, value: str) -> int:
    """MB, from GB as a whole number (`4`, `4G`) or Slurm's units (`4096M`, `4g`, `1T`);
    0 means "not given": Slurm's per-CPU default applies."""
    if value == "":
        return 0
    match = MEMORY.match(value)
    unit = (match.group(2) or "G")[0].upper() if match else "G"
    total = int(match.group(1)) * MEMORY_UNITS_MB[unit] if match else 0
    if not 1 <= total <= MAX_MEMORY_GB * 1024:
        raise bad(option, value, ACCEPT["memory"])
    return total


def memory_gb(where: str, text: str) -> int:
    """The `memory` setting is whole GB: TEXT in any form --memory takes, if it is whole GB."""
    total = memory(where, text)
    if total % 1024:
        raise bad(where, text, ACCEPT["memory"] + " (as a setting: whole GB)")
    return total // 1024


def time_limit(option: str, value: str) -> str:
    """Accept Slurm's forms and return one canonical `[D-]HH:MM:SS` (never ambiguous)."""
    total = seconds(value)
    if not total or total > MAX_TIME_DAYS * 86400:
        raise bad(option, value, ACCEPT["time"])
    return canonical_time(total)


def seconds(value: str) -> Optional[int]:
    """A time in one of Slurm's forms (also as sinfo prints a partition's MaxTime) in
    seconds; None if it is not one, or a field is out of range."""
    for form in TIME_FORMS:
        match = form.match(value)
        if match:
            parts = {k: int(v) for k, v in match.groupdict(default="0").items()}
            minutes_free = form in TIME_FORMS[:2]  # bare minutes and MM:SS may exceed 59 minutes
            bounded = parts.get("s", 0) < 60 and (minutes_free or parts.get("m", 0) < 60)
            if "d" in match.groupdict() and parts["h"] > 23:
                bounded = False
            total = ((parts.get("d", 0) * 24 + parts.get("h", 0)) * 60 + parts.get("m", 0)) * 60 + parts.get("s", 0)
            return total if bounded else None
    return None


def canonical_time(seconds: int) -> str:
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    text = f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"
    return f"{days}-{text}" if days else text


def split_list(option: str, value: Optional[str], accepted: str) -> Tuple[str, ...]:
    if value is None:
        return ()
    items = tuple(value.split(","))
    if not value or any(not item.strip() for item in items):
        raise bad(option, value, accepted)
    return items


def modules(defaults: Tuple[str, ...], value: Optional[str]) -> Tuple[str, ...]:
    """Site default modules first, then the user's, in the order given."""
    if any(bad_module(m) for m in defaults):
        raise bad("setting default_modules", ",".join(defaults), ACCEPT["module"])
    given = split_list("--env-modules", value, ACCEPT["module"])
    if any(bad_module(m) for m in given):
        raise bad("--env-modules", value, ACCEPT["module"])
    return defaults + given


def output_dir(value: str, home: str) -> str:
    """Job output goes in `#SBATCH --output`, which sbatch (not bash) parses: keep it plain."""
    value = user_folder(value)
    if value == "~" or value.startswith("~/"):
        value = home + value[1:]
    path = os.path.abspath(os.path.expanduser(value))
    if re.search(r"[\s\"'\\`$;]", path):  # what render.SBATCH_SAFE refuses
        accepted = "a path without spaces, quotes, backslashes, '`', '$' or ';' (sbatch reads it)"
        raise bad("setting output_dir", path, accepted)
    return path


def named(accepted: str, pattern: "re.Pattern[str]") -> Callable[[str, str], str]:
    return lambda where, text: matching(where, text, accepted, pattern)


def default_modules(where: str, text: str) -> List[str]:
    """Comma-separated modules, each as --env-modules takes it (the error names the setting)."""
    return list(modules(tuple(text.split(",")) if text else (), None))


def plain_output_dir(where: str, text: str) -> str:
    """Kept as typed (`~` too), but refused if sbatch could not read it as `--output`."""
    output_dir(text, os.path.expanduser("~"))
    return text


def setting_value(key: str, where: str, text: str) -> Any:
    """What `config set KEY TEXT` stores: TEXT through KEY's rule, with 0 where it means "not asked for"."""
    if key in UNSET_BY_ZERO and text == "0":
        return 0
    return memory_gb(where, text) if key == "memory" else RULES[key](where, text)


# Each setting the command line also takes, and its one rule: (where, text) -> the typed value,
# or UsageError naming WHERE (the option or the setting). build checks the options and the
# settings behind them with these; `config set` checks a value with them before writing it.
RULES: Dict[str, Callable[[str, str], Any]] = {
    "account": named(ACCEPT["account"], NAME),
    "partition": named(ACCEPT["partition"], PARTITION),
    "qos": named(ACCEPT["name"], NAME),
    "reservation": named(ACCEPT["name"], NAME),
    "job_name": named(ACCEPT["name"], NAME),
    "constraint": named(ACCEPT["constraint"], CONSTRAINT),
    "cpus": count,
    "gpus": count,
    "memory": memory,
    "time_limit": time_limit,
    "time_limit_max": lambda where, text: time_limit(where, text) if text else "",
    "default_modules": default_modules,
    "output_dir": plain_output_dir,
}
# As a setting, 0 means "not asked for" (config.ZERO_OFF); as an option, it is refused.
UNSET_BY_ZERO = tuple(key for key in RULES if key in ZERO_OFF)
