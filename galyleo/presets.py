"""`--preset NAME`: fill in the options of a `[presets.NAME]` table (site or user config file).

Input: the parsed command line and the loaded presets; output: the same namespace with the
preset's options set where the command line gave none. Each value is checked as argparse
would have stored the option; spec.build then checks it like a typed one.
"""

from __future__ import annotations

import argparse
from typing import Any, Dict, Mapping

from galyleo.errors import UsageError


def apply(args: argparse.Namespace, presets: Mapping[str, Dict[str, Any]], launch_parser: argparse.ArgumentParser
          ) -> argparse.Namespace:
    """ARGS with the options of --preset NAME filled in where the command line gave none."""
    name = getattr(args, "preset", None)
    if name is None:
        return args
    if name not in presets:
        raise UsageError(f"--preset {name!r}: no such preset (known: {', '.join(sorted(presets)) or 'none'})")
    actions = {a.dest: a for a in launch_parser._actions if a.option_strings}
    for key, value in presets[name].items():
        dest = str(key).replace("-", "_")
        action = actions.get(dest)
        if action is None or dest in ("help", "preset"):
            raise UsageError(f"preset {name}: {key!r} is not a launch option")
        if getattr(args, dest) not in (None, False, []):
            continue  # given on the command line: it wins
        setattr(args, dest, value_of(name, key, value, action))
    return args


def value_of(name: str, key: str, value: Any, action: argparse.Action) -> Any:
    """A preset's VALUE as argparse would have stored the option (flag, repeatable, or text)."""
    if isinstance(action, argparse._StoreTrueAction):
        if not isinstance(value, bool):
            raise UsageError(f"preset {name}: {key} = {value!r}: expected true or false")
        return value
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in items):
        raise UsageError(f"preset {name}: {key} = {value!r}: expected text, a number, or a list of them")
    if isinstance(action, argparse._AppendAction):
        return [str(v) for v in items]
    return ",".join(str(v) for v in items)
