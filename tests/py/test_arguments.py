"""The help is the whole manual on a login node: every form of it (`galyleo help`, `help CMD`,
`CMD -h`, and each config/cache action's `-h`) explains itself and never sends the user to a
README they do not have."""

import argparse
import re
from pathlib import Path
from typing import List

import pytest

from galyleo import arguments
from galyleo.config import Config

COMMANDS = list(arguments.COMMANDS)
ACTIONS = {"config": ["show", "set", "check", "unset"], "cache": ["list", "rm"]}
HELP_FORMS = ([["help"], ["-h"]] + [["help", c] for c in COMMANDS] + [[c, "-h"] for c in COMMANDS]
              + [[c, a, "-h"] for c, actions in ACTIONS.items() for a in actions])
ELSEWHERE = re.compile(r"readme|see the docs|documentation", re.IGNORECASE)


def outside_references(text: str) -> List[str]:
    """The lines of a help text that point the user elsewhere instead of explaining."""
    return [line for line in text.splitlines() if ELSEWHERE.search(line)]


def test_the_check_sees_a_reference_to_the_readme() -> None:
    assert outside_references("--json  print one JSON document (see README)\nfine") == [
        "--json  print one JSON document (see README)"]
    assert outside_references("--json  print one JSON document: {name, url}") == []


@pytest.mark.parametrize("argv", HELP_FORMS, ids=[" ".join(a) for a in HELP_FORMS])
def test_help_is_complete_on_its_own(argv: List[str], test_home: Path, cli) -> None:
    result = cli(argv)
    assert (result.status, result.err) == (0, "")
    assert result.out.startswith("usage: galyleo")
    assert outside_references(result.out) == []


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_and_argument_says_what_it_is(command: str, test_home: Path, cli) -> None:
    """`help CMD` has a description beyond the usage line, and every argument its own help."""
    parsers = [arguments.command_parser(command, Config())]
    for parser in list(parsers):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                parsers += action.choices.values()
    for parser in parsers:
        assert parser.description, parser.prog
        for action in parser._actions:
            if not isinstance(action, argparse._SubParsersAction):
                assert action.help, f"{parser.prog}: {action.option_strings or action.dest} has no help"
