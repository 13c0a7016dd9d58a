"""rules.RULES is the one table of option rules: the command line and `config set` refuse a bad
value in the same words, naming only a different place (the option, or `config set KEY`)."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest
import sessionkit
from sessionkit import run

from galyleo import rules
from galyleo.config import Config

user_file = sessionkit.user_file  # the shared fixture


def test_every_rule_is_a_setting() -> None:
    assert set(rules.RULES) <= {f.name for f in fields(Config)}
    assert set(rules.UNSET_BY_ZERO) <= set(rules.RULES)


@pytest.mark.parametrize("key, value", [
    ("account", "abc;rm"), ("partition", "a b"), ("qos", "x y"), ("reservation", "r\tx"), ("constraint", "a b"),
    ("cpus", "0"), ("gpus", "-1"), ("memory", "4X"), ("time_limit", "1-25"),
])
def test_the_command_line_and_config_set_refuse_alike(user_file: Path, capsys, key: str, value: str) -> None:
    option = "--" + key.replace("_", "-")
    account = [] if key == "account" else ["-A", "a"]
    _, _, typed = run(capsys, "generate", *account, f"{option}={value}")
    _, _, stored = run(capsys, "config", "set", key, value)
    by_option, by_setting = typed.splitlines()[-1], stored.splitlines()[-1]
    assert by_option.startswith(f"galyleo: error: {option} '")
    assert by_setting.startswith(f"galyleo: error: config set {key} '")
    assert by_option.split(" ", 3)[3] == by_setting.split(" ", 5)[5]


@pytest.mark.parametrize("key", rules.UNSET_BY_ZERO)
def test_zero_is_a_setting_not_an_option(user_file: Path, capsys, key: str) -> None:
    assert run(capsys, "config", "set", key, "0")[0] == 0
    assert run(capsys, "generate", "-A", "a", f"--{key}=0")[0] == 2
