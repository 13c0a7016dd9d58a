"""Validate command-line values against the site config; return a frozen LaunchSpec.

Input: the argparse namespace (strings as typed) and a Config. Output: a LaunchSpec
whose values are safe to render: `#SBATCH` values match Slurm's own grammar (shell
quoting does not protect them), paths are absolute and checked to exist. Any bad
value raises UsageError naming the option, before anything else happens. The rules an
option shares with its setting (names, memory, time, counts) are rules.py's.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, Optional, Tuple

from galyleo import apps, connect, idle
from galyleo.config import Config
from galyleo.errors import ACCEPT, UsageError, bad, show
from galyleo.rules import (
    DIGITS,
    GRES,
    HOSTLIST,
    RULES,
    UNSET_BY_ZERO,
    has_control,
    matching,
    modules,
    nonempty,
    output_dir,
    seconds,
    spaced,
    split_list,
)

SIF_SCHEMES = ("docker://", "library://", "oras://", "shub://")
SBATCH_OPTION = re.compile(r"--(?P<name>[a-z][a-z0-9-]*)(=(?P<value>[A-Za-z0-9_.,:@%+=/\-\[\]]+))?\Z")
# sbatch options galyleo sets itself or that would break the session (where it writes, how it is
# named, signalled, run, which environment it gets): refused in --sbatch, with the option to use if
# there is one. getopt takes unique prefixes (`--out=` is --output), so a prefix of one is refused too.
SBATCH_OWNED = {
    "output": "", "error": "", "input": "", "open-mode": "", "job-name": "", "signal": "", "parsable": "",
    "wrap": "", "chdir": "", "export": "", "export-file": "", "get-user-env": "", "array": "", "wait": "",
    "test-only": "", "nodes": "", "ntasks": "", "uid": "", "gid": "", "help": "", "usage": "", "version": "",
    "no-requeue": "", "requeue": "", "account": "-A", "partition": "-p", "cpus-per-task": "-c", "mem": "-m",
    "gpus": "-g", "gres": "--gres", "time": "-t", "reservation": "-R", "qos": "-q", "constraint": "-C",
    "nodelist": "-w", "exclude": "-x", "exclusive": "--exclusive",
}


@dataclass(frozen=True)
class LaunchSpec:
    """Everything a job script needs, validated. Tuples keep it immutable."""

    account: str
    partition: str
    cpus: int
    memory_mb: int  # 0: Slurm's default
    gpus: int
    gres: str
    time_limit: str
    reservation: str
    qos: str
    constraint: str
    interface: str
    notebook_dir: str
    conda_env: str
    conda_yml: str
    conda_init: str
    mamba: bool
    cache: bool
    modules: Tuple[str, ...]
    module_paths: Tuple[str, ...]
    sif: str
    binds: Tuple[str, ...]
    nv: bool
    rocm: bool
    output_dir: str
    job_name: str
    idle_timeout: int = 0  # minutes without a running kernel or a request that end the session
    connect: str = connect.MODES[0]  # how the browser reaches the session (galyleo/connect/)
    nodelist: str = ""  # hostlists, as sbatch --nodelist / --exclude take them
    exclude: str = ""
    exclusive: bool = False
    sbatch: Tuple[str, ...] = ()  # other sbatch options, each `--name[=value]` (sbatch_option)
    asked: Tuple[str, ...] = ()  # the launch options as the user gave them (relaunch reads them from the record)


def build(args: Any, config: Config, home: Optional[str] = None) -> LaunchSpec:
    """Check every option (and its conflicts) and return the spec, or raise UsageError.

    A value that came from a setting (site file, user file, environment) is checked
    just as strictly, and the error names the setting rather than the option.
    """
    home = home if home is not None else os.path.expanduser("~")
    check_conflicts(args)
    account = option_or_setting("account", args, config)
    if not account and config.require_account:
        raise UsageError("--account: required (no default account is configured at this site)")
    gpus = ("--gpus", args.gpus) if args.gpus is not None else ("setting gpus", str(config.gpus) if config.gpus else "")
    chosen_interface = interface(_pick(args.interface, config.interface))
    return LaunchSpec(
        account=account,
        partition=option_or_setting("partition", args, config),
        cpus=option_or_setting("cpus", args, config),
        memory_mb=option_or_setting("memory", args, config),
        gpus=0 if args.gres or not gpus[1] else RULES["gpus"](*gpus),
        gres=matching("--gres", args.gres or "", ACCEPT["gres"], GRES),
        time_limit=capped_time(option_or_setting("time_limit", args, config), args.time_limit, config),
        reservation=option_or_setting("reservation", args, config),
        qos=option_or_setting("qos", args, config),
        constraint=option_or_setting("constraint", args, config),
        interface=chosen_interface,
        notebook_dir=directory(*choose("--notebook-dir", args.notebook_dir, "$HOME (default --notebook-dir)", home)),
        conda_env=one_line("--conda-env", args.conda_env),
        conda_yml=existing_file("--conda-yml", args.conda_yml),
        conda_init=existing_file("--conda-init", args.conda_init),
        mamba=bool(args.mamba),
        cache=bool(args.cache),
        modules=modules(tuple(config.default_modules), args.env_modules),
        module_paths=tuple(nonempty("--append-modulepath", p) for p in (args.append_modulepath or [])),
        sif=sif(args.sif),
        binds=binds(args.bind),
        nv=bool(args.nv),
        rocm=bool(args.rocm),
        output_dir=output_dir(config.output_dir, home),
        job_name=RULES["job_name"]("setting job_name", config.job_name),
        idle_timeout=idle_timeout(args.idle_timeout, config, chosen_interface),
        connect=connect.choose(getattr(args, "connect", None), config),
        nodelist=matching("--nodelist", getattr(args, "nodelist", None) or "", ACCEPT["hostlist"], HOSTLIST),
        exclude=matching("--exclude", getattr(args, "exclude", None) or "", ACCEPT["hostlist"], HOSTLIST),
        exclusive=bool(getattr(args, "exclusive", False)),
        sbatch=tuple(sbatch_option(text) for text in (getattr(args, "sbatch", None) or [])),
    )


def option_or_setting(key: str, args: Any, config: Config) -> Any:
    """KEY's rule (RULES) on its option (`--time-limit` for time_limit) if typed, else on the setting."""
    value = getattr(config, key)
    default = "" if key in UNSET_BY_ZERO and not value else str(value)
    return RULES[key](*choose("--" + key.replace("_", "-"), getattr(args, key), key, default))


def choose(option: str, given: Optional[str], key: str, default: str) -> Tuple[str, str]:
    """The value to check and the name to blame: the option if typed, else the setting."""
    if given is not None:
        return option, given
    return (key if key.startswith("$") else f"setting {key}"), default


def check_conflicts(args: Any) -> None:
    """Options that cannot be combined are errors, never silently dropped."""
    pairs = (
        ("--conda-env", args.conda_env, "--conda-yml", args.conda_yml),
        ("--gpus", args.gpus, "--gres", args.gres),
        ("--nv", args.nv, "--rocm", args.rocm),
    )
    for first, a, second, b in pairs:
        if a not in (None, False) and b not in (None, False):
            raise UsageError(f"{first} and {second} cannot be used together: choose one")
    for flag, value in (("--mamba", args.mamba), ("--cache", args.cache)):
        if value and args.conda_yml is None:
            raise UsageError(f"{flag}: only with --conda-yml (it applies to building an env from a yml file)")
    if args.conda_init is not None and args.conda_env is None and args.conda_yml is None:
        raise UsageError("--conda-init: only with --conda-env or --conda-yml")
    for flag, value in (("--bind", args.bind), ("--nv", args.nv), ("--rocm", args.rocm)):
        if value and args.sif is None:
            raise UsageError(f"{flag}: only with --sif (it configures the container)")


def sbatch_option(text: str) -> str:
    """One `--sbatch` value: a long sbatch option, `--name` or `--name=value`, that galyleo does not own."""
    match = SBATCH_OPTION.match(text)
    if not match:
        raise bad("--sbatch", text, ACCEPT["sbatch"])
    name = match.group("name")
    owned = next((key for key in SBATCH_OWNED if key.startswith(name)), None)
    if owned is not None:
        use = SBATCH_OWNED[owned]
        instead = f"use galyleo's {use}" if use else "galyleo sets it itself"
        raise UsageError(f"--sbatch {show(text)}: --{owned} is not for --sbatch ({instead})")
    return text


def _pick(given: Optional[str], default: str) -> str:
    return default if given is None else given


def one_line(option: str, value: Optional[str]) -> str:
    """A name or path of a thing that cannot have control characters in it (a conda env)."""
    text = nonempty(option, value)
    if has_control(text):
        raise bad(option, value, ACCEPT["line"])
    return text


def capped_time(value: str, given: Optional[str], config: Config) -> str:
    """VALUE, refused above the site's time_limit_max (a guard rail for honest users: Slurm's
    partition and QOS limits are what binds a job submitted by hand)."""
    cap = RULES["time_limit_max"]("setting time_limit_max", config.time_limit_max)
    if cap and (seconds(value) or 0) > (seconds(cap) or 0):
        where = "--time-limit" if given is not None else "setting time_limit"
        raise UsageError(f"{where} {value!r}: above this site's maximum (time_limit_max {cap})")
    return value


def interface(value: str) -> str:
    if value not in apps.APPS:
        raise bad("--interface", value, ACCEPT["interface"])
    return value


def idle_timeout(given: Optional[str], config: Config, chosen_interface: str) -> int:
    """Minutes of idleness that end the session (0: never), within the site's cap.

    Voila cannot shut itself down when idle: asking for it is an error, and a default
    from the settings does not apply to it. Under a cap, "never" is not for users to
    choose: a typed 0 is refused and a default of 0 becomes the cap."""
    cap = config.idle_timeout_max
    option, text = choose("--idle-timeout", given, "idle_timeout", str(config.idle_timeout))
    accepted = f"whole minutes from 1 to {cap} (this site's idle_timeout_max)" if cap else ACCEPT["idle"]
    if not DIGITS.match(text) or len(text) > 6 or int(text) > idle.MAX_MINUTES:
        raise bad(option, text, accepted)
    minutes = int(text)
    if not apps.of(chosen_interface).culls:
        if given is not None and minutes:
            raise UsageError(f"--idle-timeout: not available with --interface {chosen_interface} (it cannot shut"
                             f" itself down when idle); use {apps.choices(last='or', names=apps.CULLING)},"
                             " or --idle-timeout 0")
        return 0
    if cap and given is None and minutes == 0:
        return cap
    if cap and not 1 <= minutes <= cap:
        raise bad(option, text, accepted)
    return minutes


def directory(option: str, value: str) -> str:
    path = os.path.abspath(os.path.expanduser(value)) if value else ""
    if not path or not os.path.isdir(path):
        raise bad(option, value, ACCEPT["directory"])
    return path


def existing_file(option: str, value: Optional[str]) -> str:
    if value is None:
        return ""
    path = os.path.abspath(os.path.expanduser(value)) if value else ""
    if not path or not os.path.isfile(path) or not os.access(path, os.R_OK):
        raise bad(option, value, ACCEPT["file"])
    return path


def binds(value: Optional[str]) -> Tuple[str, ...]:
    return split_list("--bind", value, ACCEPT["bind"])


def sif(value: Optional[str]) -> str:
    """A registry URI as given, or an existing local image made absolute."""
    if value is None:
        return ""
    if value.startswith(SIF_SCHEMES) and len(value) > value.index("://") + 3:
        if spaced(value):
            raise bad("--sif", value, ACCEPT["sif"])
        return value
    if "://" in value:
        raise bad("--sif", value, ACCEPT["sif"])
    path = os.path.abspath(os.path.expanduser(value)) if value else ""
    if not path or not os.path.isfile(path):
        raise bad("--sif", value, ACCEPT["sif"])
    return path


