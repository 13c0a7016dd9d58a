"""`galyleo completion bash|zsh`: the shell completion script, from this parser and this site.

Python decides every word the script offers (commands, their options, `-i`/`--connect`/`--preset`
values, `config set` keys, where records live, what Slurm is asked); snippets/completion.bash.j2
spells it out, each value shell-quoted where it is used, through the job script's Jinja
environment (render.environment).
"""

from __future__ import annotations

import argparse
from dataclasses import fields
from typing import Any, Dict, Mapping

from galyleo import apps, connect, contract, records, slurm
from galyleo.config import Config

MODULE_TIMEOUT = 2  # seconds `module avail` may take before `-e` offers no module names


def script(parser: argparse.ArgumentParser, shell: str, config: Config, presets: Mapping[str, Any]) -> str:
    """The completion script for SHELL (bash or zsh): commands, options, `-i` values, `config set`
    keys, session job ids (records, and this user's jobs by galyleo's job name), partitions (sinfo),
    and modules for `-e` from Lmod or Environment Modules when they answer within MODULE_TIMEOUT."""
    from galyleo import render

    template = render.environment().get_template("completion.bash.j2")
    return str(template.render(context(parser, shell, config, presets)))


def context(parser: argparse.ArgumentParser, shell: str, config: Config, presets: Mapping[str, Any]) -> Dict[str, Any]:

    commands = subcommands(parser)
    folder = records.user_folder(config.output_dir)
    under_home = folder == "~" or folder.startswith("~/")
    record_head, _, record_tail = contract.RECORD_NAMES.partition("*")
    return {
        "shell": shell,
        "zsh": shell == "zsh",
        "job_name": config.job_name,
        "folder_under_home": under_home,
        "folder": folder[1:] if under_home else folder,
        "record_head": record_head,
        "record_tail": record_tail,
        "job_ids_argv": slurm.job_ids_argv(config.job_name),
        "live_ids_argv": slurm.my_job_ids_argv(),
        "partitions_argv": slurm.PARTITIONS_ARGV,
        "module_timeout": MODULE_TIMEOUT,
        "commands": " ".join(commands),
        "cases": [(name, options(sub)) for name, sub in commands.items()],
        "interfaces": " ".join(apps.NAMES),
        "connects": " ".join(m for m in config.connect_allowed if m in connect.MODES),  # compgen -W expands it
        "presets": " ".join(sorted(presets)),  # names are plain (configfiles.preset_tables)
        "keys": " ".join(f.name for f in fields(config)),
    }


def subcommands(parser: argparse.ArgumentParser) -> Dict[str, argparse.ArgumentParser]:
    """The command tree's commands, in `galyleo help`'s order."""
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def options(parser: argparse.ArgumentParser) -> str:
    """Every option string of one command, sorted, as one word list."""
    return " ".join(sorted(o for a in parser._actions for o in a.option_strings))
