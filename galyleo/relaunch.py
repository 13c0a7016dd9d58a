"""`galyleo relaunch [ID] [options]`: a new session with the options of an earlier one.

The earlier session's record keeps what the user asked for (`asked`: the launch options as
words, written by `launch`); they are parsed again by launch's own parser and every option
given now overrides its recorded value. A record from before `asked` gives its validated
options instead; a plain-`sbatch` session without a record, the partition Slurm shows.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Dict, List, Optional, Tuple

from galyleo import sessions
from galyleo.config import Config
from galyleo.contract import Record
from galyleo.errors import GalyleoError
from galyleo.slurm import JobInfo

NOT_ASKED: Tuple[Any, ...] = (None, False, [])
# Output options: how this run reports, never carried over to the next one.
ONE_RUN = ("quiet", "json", "wait", "dry_run", "no_preflight", "id", "preset", "help", "version")
# Options of records from before `asked`, by LaunchSpec field: the option and the value's spelling.
FIELDS = ("account", "partition", "cpus", "gpus", "gres", "time_limit", "reservation", "qos", "constraint",
          "interface", "notebook_dir", "conda_env", "conda_yml", "conda_init", "sif", "idle_timeout", "connect",
          "nodelist", "exclude")


def earlier(config: Config, ident: Optional[str]) -> Tuple[Record, JobInfo]:
    """The session IDENT names; none: the newest one galyleo knows (ended or live); and Slurm's view."""
    from galyleo.session_commands import sessions_of

    found, infos = sessions_of(config)
    if ident:
        session = sessions.resolve(found, ident, infos)
    elif found:
        session = max(found, key=lambda s: (s.created, int(s.job_id) if s.job_id.isdigit() else 0))
    else:
        raise GalyleoError("no earlier session to relaunch (`galyleo launch` starts one)")
    return session, infos.get(session.job_id, JobInfo("UNKNOWN"))


def words(args: argparse.Namespace, parser: argparse.ArgumentParser) -> List[str]:
    """ARGS' launch options that were given, as `--option=value` words (what `asked` keeps)."""
    found: List[str] = []
    for action in parser._actions:
        value = getattr(args, action.dest, None)
        if not action.option_strings or action.dest in ONE_RUN or value in NOT_ASKED:
            continue
        name = max(action.option_strings, key=len)
        if isinstance(action, argparse._StoreTrueAction):
            found.append(name)
        else:
            found.extend(f"{name}={item}" for item in (value if isinstance(value, list) else [value]))
    return found


def recorded(session: Record, config: Config, partition: str = "") -> List[str]:
    """The words to launch SESSION again: `asked` if the record has it, else what it shows."""
    options: Dict[str, Any] = session.options or {}
    asked = options.get("asked")
    if isinstance(asked, list) and all(isinstance(w, str) for w in asked):
        return list(asked)
    if not options:
        sys.stderr.write(f"galyleo: warning: job {session.job_id} has no recorded options (a plain sbatch):"
                         " relaunching with your defaults and the options given\n")
        return [f"--partition={partition}"] if partition else []
    found = [f"--{key.replace('_', '-')}={options[key]}" for key in FIELDS
             if options.get(key) not in (None, "", 0, [])]
    mb = options.get("memory_mb") or int(options.get("memory_gb") or 0) * 1024
    found += [f"--memory={mb}M"] if mb else []
    own = [m for m in options.get("modules") or [] if m not in config.default_modules]
    found += [f"--env-modules={','.join(own)}"] if own else []
    found += [f"--append-modulepath={p}" for p in options.get("module_paths") or []]
    found += [f"--bind={','.join(options['binds'])}"] if options.get("binds") else []
    found += [f"--{flag}" for flag in ("mamba", "cache", "nv", "rocm", "exclusive") if options.get(flag)]
    return found + [f"--sbatch={o}" for o in options.get("sbatch") or []]


def fill(args: argparse.Namespace, config: Config, parser: argparse.ArgumentParser) -> argparse.Namespace:
    """ARGS with every option not given now taken from the earlier session's."""
    session, info = earlier(config, args.id)
    before = parser.parse_args(recorded(session, config, info.partition))
    for action in parser._actions:
        if action.option_strings and action.dest not in ONE_RUN and getattr(args, action.dest) in NOT_ASKED:
            setattr(args, action.dest, getattr(before, action.dest))
    sys.stderr.write(f"galyleo: relaunching job {session.job_id}'s options: "
                     f"{' '.join(words(args, parser)) or '(the defaults)'}\n")
    return args
