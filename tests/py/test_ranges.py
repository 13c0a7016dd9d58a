"""Every numeric range, at both ends: the ends are accepted, one past each end is refused.

Derived from the tables themselves (config.RANGES for every whole-number setting; rules.RULES
for the options that take one of those settings' values), so a new range, or a new rule over
a ranged setting, is covered without touching this file. Ranges that live outside those
tables (--time-limit, --idle-timeout under a cap) are listed below, each with its ends.
Zero, negative and 5000-digit numbers are refused everywhere (0 is "not set" in ZERO_OFF).
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Callable, List, Tuple

import pytest

from galyleo import config, configfiles, idle, jobnumbers, rules, spec
from galyleo.config import RANGES, ZERO_OFF, Config, ConfigError
from galyleo.errors import UsageError

INT_SETTINGS = sorted(f.name for f in fields(Config) if config.kind_of(f.type) is int)
RANGED_RULES = sorted(key for key in rules.RULES if key in RANGES)
HUGE = "9" * 5000


def ends(key: str) -> List[Tuple[int, bool]]:
    """(value, accepted) at KEY's range: both ends in, one past each end out (0 in where it means "not set")."""
    low, high = RANGES[key]
    return [(low, True), (high, True), (low - 1, low - 1 == 0 and key in ZERO_OFF), (high + 1, False)]


def cases(keys: List[str]) -> List[Any]:
    return [pytest.param(key, value, ok, id=f"{key}={value}:{'in' if ok else 'out'}")
            for key in keys for value, ok in ends(key)]


def test_every_whole_number_setting_has_a_range() -> None:
    assert set(INT_SETTINGS) == set(RANGES)
    assert all(low <= high for low, high in RANGES.values())


def test_the_options_over_ranged_settings_are_found() -> None:
    assert {"cpus", "gpus", "memory"} <= set(RANGED_RULES)  # the table is read, not empty


def accepts(check: Callable[[], Any], error: type) -> bool:
    try:
        check()
    except error:
        return False
    return True


@pytest.mark.parametrize("key, value, ok", cases(INT_SETTINGS))
def test_setting_range_ends_in_a_config_file(key: str, value: int, ok: bool) -> None:
    assert accepts(lambda: config.from_mapping({key: value}, "config test.toml"), ConfigError) is ok


def from_environment(key: str, text: str) -> Callable[[], Config]:
    """The setting KEY given as GALYLEO_<KEY>=TEXT, read as `load` reads it."""
    def check() -> Config:
        values, names = configfiles.environment_values({f"GALYLEO_{key.upper()}": text})
        return config.from_mapping(values, "environment", None, names)
    return check


@pytest.mark.parametrize("key, value, ok", cases(INT_SETTINGS))
def test_setting_range_ends_in_the_environment(key: str, value: int, ok: bool) -> None:
    assert accepts(from_environment(key, str(value)), ConfigError) is ok


@pytest.mark.parametrize("key, value, ok", cases(INT_SETTINGS))
def test_setting_range_refusal_names_the_range(key: str, value: int, ok: bool) -> None:
    if ok:
        return
    low, high = RANGES[key]
    with pytest.raises(ConfigError) as caught:
        config.from_mapping({key: value}, "config test.toml")
    assert f"{key} = {value}: expected a whole number from {low} to {high}" in str(caught.value)


@pytest.mark.parametrize("key, value, ok", [c for c in cases(RANGED_RULES) if c.values[1] != 0])
def test_option_range_ends(key: str, value: int, ok: bool) -> None:
    """The option takes exactly the setting's range (0 aside: an option never means "not set")."""
    option = "--" + key.replace("_", "-")
    assert accepts(lambda: rules.RULES[key](option, str(value)), UsageError) is ok
    if not ok:
        low, high = RANGES[key]
        with pytest.raises(UsageError, match=f"from {low} to {high}"):
            rules.RULES[key](option, str(value))


@pytest.mark.parametrize("key, value, ok", cases(RANGED_RULES))
def test_config_set_range_ends(key: str, value: int, ok: bool) -> None:
    assert accepts(lambda: rules.setting_value(key, f"config set {key}", str(value)), UsageError) is ok


@pytest.mark.parametrize("key", INT_SETTINGS)
@pytest.mark.parametrize("text", ["0", "-1", "-0", "+1", HUGE, "1" + "0" * 4999])
def test_zero_negative_and_5000_digit_settings(key: str, text: str) -> None:
    low = RANGES[key][0]
    ok = text == "0" and (low == 0 or key in ZERO_OFF)
    check = from_environment(key, text)
    assert accepts(check, ConfigError) is ok
    if not ok:
        with pytest.raises(ConfigError) as caught:
            check()
        assert len(str(caught.value)) < 300
    assert accepts(lambda: config.from_mapping({key: -1}, "config test.toml"), ConfigError) is False


@pytest.mark.parametrize("key", RANGED_RULES)
@pytest.mark.parametrize("text", ["0", "-1", HUGE])
def test_zero_negative_and_5000_digit_options(key: str, text: str) -> None:
    with pytest.raises(UsageError) as caught:
        rules.RULES[key]("--" + key.replace("_", "-"), text)
    assert len(str(caught.value)) < 300


# --- ranges outside the tables ------------------------------------------------------------

@pytest.mark.parametrize("text, ok", [
    ("0:01", True), ("365-00:00:00", True), ("525600", True),  # one second; 365 days; 365 days in minutes
    ("0:00", False), ("0", False), ("365-00:00:01", False), ("525601", False), ("-1", False), (HUGE, False),
])
def test_time_limit_range_ends(text: str, ok: bool) -> None:
    assert accepts(lambda: rules.time_limit("--time-limit", text), UsageError) is ok


def idle_minutes(given: str, cap: int) -> int:
    return spec.idle_timeout(given, Config(idle_timeout_max=cap), "lab")


@pytest.mark.parametrize("given, cap, ok", [
    ("0", 0, True), (str(idle.MAX_MINUTES), 0, True), (str(idle.MAX_MINUTES + 1), 0, False),
    ("-1", 0, False), (HUGE, 0, False),
    ("1", 60, True), ("60", 60, True), ("0", 60, False), ("61", 60, False),  # under a site's cap
    ("1", idle.MAX_MINUTES, True), (str(idle.MAX_MINUTES), idle.MAX_MINUTES, True),
    (str(idle.MAX_MINUTES + 1), idle.MAX_MINUTES, False),
])
def test_idle_timeout_option_range_ends(given: str, cap: int, ok: bool) -> None:
    assert accepts(lambda: idle_minutes(given, cap), UsageError) is ok


@pytest.mark.parametrize("value", RANGES["stop_grace"])
def test_the_job_numbers_at_the_ends_of_stop_grace(value: int) -> None:
    numbers = jobnumbers.values(Config(stop_grace=value))
    assert numbers["GALYLEO_STOP_GRACE"] == value
    assert numbers["GALYLEO_STOP_POLLS"] == value * 1000 // jobnumbers.POLL_MS > 0
