"""The site kit: the sample galyleo.toml (every key, its type and default, so it cannot drift
from config.py), `galyleo config check`, and the wrapper and modulefile templates in site/."""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import fields
from pathlib import Path

import pytest
from conftest import run_galyleo, shellcheck

from galyleo import config

SITE = Path(__file__).resolve().parents[2] / "site"
SAMPLE = SITE / "galyleo.toml"
TYPES = {str: "string", int: "whole number", bool: "true or false", list: "list of strings"}


def uncommented(text: str) -> str:
    """The sample with every `# key = value` line made live."""
    return "\n".join(re.sub(r"^# (?=[a-z_]+ = )", "", line) for line in text.splitlines()) + "\n"


def test_the_sample_names_every_key_with_its_type_and_default() -> None:
    text = SAMPLE.read_text()
    data = config.toml_loads(uncommented(text))
    assert list(data) == [f.name for f in fields(config.Config)]
    assert config.from_mapping(data, "sample") == config.Config()
    for field in fields(config.Config):
        assert f"# {field.name} ({TYPES[config.kind_of(field.type)]}" in text, field.name
    assert config.toml_loads(text) == {}, "as shipped, it changes nothing"


def test_config_check_passes_the_sample(tmp_path: Path) -> None:
    live = tmp_path / "galyleo.toml"
    live.write_text(uncommented(SAMPLE.read_text()))
    for path in (SAMPLE, live):
        result = run_galyleo(["config", "check", str(path)], env={"HOME": str(tmp_path)})
        assert result == (0, f"{path}: ok\n", ""), result


BAD = {  # a line of a site file, and what its problem line must say
    "cpus = 0": "cpus = 0: expected a whole number from 1 to 100000",
    "bogus = 1": "unknown key 'bogus'",
    'connect_allowed = ["x"]': "connect_allowed = ['x']: expected a list of satellite and/or ssh",
    'time_limit = "banana"': "time_limit 'banana': expected minutes",
    'account = "a b"': "account 'a b': expected a Slurm account name",
    'module_init = ["lmod.sh"]': "module_init = ['lmod.sh']: expected a list of absolute paths",
}


def test_config_check_names_every_problem_on_a_line_of_its_own(tmp_path: Path) -> None:
    bad = tmp_path / "galyleo.toml"
    bad.write_text("\n".join(BAD) + "\n")
    result = run_galyleo(["config", "check", str(bad)], env={"HOME": str(tmp_path), "GALYLEO_CONFIG": str(bad)})
    lines = result.err.splitlines()
    assert (result.status, result.out, len(lines)) == (2, "", len(BAD)), result.err
    for line, expected in zip(sorted(lines), sorted(f"galyleo: error: config {bad}: {m}" for m in BAD.values())):
        assert line.startswith(expected), (line, expected)


@pytest.mark.parametrize("text, expected", [
    ("cpus = [", "config {path}: "),
    ('connect = "ssh"\nconnect_allowed = ["satellite"]\n', "setting connect 'ssh': not allowed at this site"),
])
def test_config_check_one_line_problems(text: str, expected: str, tmp_path: Path) -> None:
    path = tmp_path / "galyleo.toml"
    path.write_text(text)
    result = run_galyleo(["config", "check", str(path)], env={"HOME": str(tmp_path)})
    assert (result.status, result.out, result.err.count("\n")) == (2, "", 1), result
    assert expected.format(path=path) in result.err


def test_config_check_without_a_file_or_a_site_file(tmp_path: Path) -> None:
    missing = run_galyleo(["config", "check", str(tmp_path / "nope.toml")], env={"HOME": str(tmp_path)})
    assert missing.status == 2 and missing.err == f"galyleo: error: config {tmp_path / 'nope.toml'}: cannot read: " \
                                                  "No such file or directory\n"
    none = run_galyleo(["config", "check", "--json"], env={"HOME": str(tmp_path)})
    assert none.status == 2 and json.loads(none.out)["exit"] == 2


def test_the_wrapper_runs_the_pyz_with_the_fixed_python_and_every_argument(tmp_path: Path) -> None:
    assert shellcheck([SITE / "galyleo"]) == {str(SITE / "galyleo"): []}
    apps = tmp_path / "apps"
    apps.mkdir()
    log = tmp_path / "argv"
    python = tmp_path / "python"
    python.write_text(f'#!/bin/sh\nfor a in "$@"; do echo "$a"; done > {log}\n')
    python.chmod(0o755)
    wrapper = tmp_path / "galyleo"
    wrapper.write_text((SITE / "galyleo").read_text().replace("APPS=/cm/shared/apps/galyleo", f"APPS={apps}")
                       .replace("PYTHON=/usr/bin/python3", f"PYTHON={python}"))
    wrapper.chmod(0o755)
    subprocess.run([str(wrapper), "launch", "-d", "a dir", ""], check=True, timeout=30)
    assert log.read_text() == f"{apps}/galyleo.pyz\nlaunch\n-d\na dir\n\n"


def test_the_modulefile_puts_the_apps_folder_on_path() -> None:
    text = (SITE / "galyleo.lua").read_text()
    assert re.search(r'^local apps = "/[^"]+"$', text, re.M) and 'prepend_path("PATH", apps)' in text
