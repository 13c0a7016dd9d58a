"""Settings on a shared cluster (issue 24): site limits only the site file sets; the completion
script shell-quotes every value and `connect_allowed` is validated; `config set` keeps a
symlinked config.toml a link and says one line for a file it cannot edit.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import subprocess
from pathlib import Path
from typing import Callable

import pytest
from conftest import DATA

from galyleo import cli as galyleo_cli
from galyleo.config import Config

SITE = (DATA / "site.toml").read_text() + 'idle_timeout_max = 60\nconnect_allowed = ["satellite"]\n'
LIMIT = "is a site limit: only the site file may set it"


@pytest.fixture
def limited(test_home: Path, site_toml, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A site file with both limits; the user's config.toml (not yet written)."""
    monkeypatch.setenv("GALYLEO_CONFIG", str(site_toml(SITE)))
    user = test_home / ".config" / "galyleo" / "config.toml"
    user.parent.mkdir(parents=True)
    return user


@pytest.mark.parametrize("variable, value, key", [
    ("GALYLEO_IDLE_TIMEOUT_MAX", "0", "idle_timeout_max"),
    ("GALYLEO_IDLE_TIMEOUT_MAX", "30", "idle_timeout_max"),  # tightening is refused too: ask with --idle-timeout
    ("GALYLEO_CONNECT_ALLOWED", "satellite,ssh", "connect_allowed"),
])
def test_the_environment_cannot_set_a_site_limit(limited: Path, cli, monkeypatch: pytest.MonkeyPatch,
                                                 variable: str, value: str, key: str) -> None:
    monkeypatch.setenv(variable, value)
    for argv in (["generate", "--idle-timeout", "0"], ["generate", "--connect", "ssh"], ["config", "show"]):
        result = cli(argv)
        assert result.status == 2 and result.out == ""
        assert result.err_lines == [f"galyleo: error: environment {variable}: {key} {LIMIT}"]


@pytest.mark.parametrize("text, key", [("idle_timeout_max = 0\n", "idle_timeout_max"),
                                       ('connect_allowed = ["satellite", "ssh"]\n', "connect_allowed")])
def test_the_user_file_cannot_set_a_site_limit(limited: Path, cli, text: str, key: str) -> None:
    limited.write_text(text)
    result = cli(["generate", "--idle-timeout", "0"])
    assert result.status == 2 and result.err_lines == [f"galyleo: error: config {limited}: {key} {LIMIT}"]


@pytest.mark.parametrize("key, value", [("idle_timeout_max", "0"), ("connect_allowed", "satellite,ssh")])
def test_config_set_cannot_set_a_site_limit(limited: Path, cli, key: str, value: str) -> None:
    result = cli(["config", "set", key, value])
    assert result.status == 2 and result.err_lines == [f"galyleo: error: config set: {key} {LIMIT}"]
    assert not limited.exists()
    result = cli(["generate", "--idle-timeout", "0"])  # the limit still holds
    assert result.status == 2 and "this site's idle_timeout_max" in result.err


def test_the_site_files_limits_still_apply(limited: Path, cli) -> None:
    assert cli(["generate", "--connect", "ssh"]).status == 2
    assert cli(["generate", "--idle-timeout", "30"]).status == 0


# --- the completion script -------------------------------------------------------------

@pytest.mark.parametrize("value", ["satellite,it's$(touch pwned)", "satellite,ssh\n$(touch pwned)",
                                   "satellite,vpn"])
def test_connect_allowed_values_are_validated_in_the_site_file(test_home: Path, site_toml, cli,
                                                               monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    items = ", ".join(f'"{item}"' for item in value.replace("\n", "\\n").split(","))
    monkeypatch.setenv("GALYLEO_CONFIG", str(site_toml(f"connect_allowed = [{items}]\n")))
    result = cli(["completion", "bash"])
    assert result.status == 2 and result.out == "" and len(result.err_lines) == 1
    assert "connect_allowed" in result.err


def test_the_completion_script_quotes_every_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Even a value that got past validation can neither break the script nor run on Tab."""
    hostile = "it's$(touch pwned)"
    config = dataclasses.replace(Config(), connect_allowed=["ssh", hostile], job_name="a'b$(touch pwned)",
                                 output_dir=f"/tmp/{hostile}")
    script = galyleo_cli.completion_script(galyleo_cli.make_parser(config), "bash", config)
    assert f"named {shlex.quote(config.job_name)}." in script
    done = subprocess.run(["bash", "-c", 'eval "$1"; COMP_WORDS=(galyleo launch --connect ""); COMP_CWORD=3; '
                           '_galyleo; printf "%s\\n" "${COMPREPLY[@]}"; COMP_WORDS=(galyleo stop ""); COMP_CWORD=2; '
                           '_galyleo', "completion", script], cwd=tmp_path, capture_output=True, text=True,
                          timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ssh"]
    assert not (tmp_path / "pwned").exists()


# --- config set ----------------------------------------------------------------------------

@pytest.fixture
def user_file(test_home: Path) -> Path:
    user = test_home / ".config" / "galyleo" / "config.toml"
    user.parent.mkdir(parents=True)
    return user


def test_config_set_keeps_a_symlinked_config_a_link(user_file: Path, tmp_path: Path, cli) -> None:
    target = tmp_path / "dotfiles" / "galyleo.toml"
    target.parent.mkdir()
    target.write_text("# mine\ncpus = 2\n")
    user_file.symlink_to(target)
    result = cli(["config", "set", "cpus", "4"])
    assert result.status == 0, result.err
    assert user_file.is_symlink() and os.readlink(user_file) == str(target)
    assert target.read_text() == "# mine\ncpus = 4\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["galyleo.toml"]  # no temporary file left


MULTI_LINE = 'default_modules = [\n  "gcc/10",\n  "python/3",\n]\ncpus = 2\n'


def test_config_set_replaces_a_multi_line_array(user_file: Path, cli) -> None:
    user_file.write_text(MULTI_LINE)
    result = cli(["config", "set", "default_modules", "a/1,b/2"])
    assert result.status == 0, result.err
    assert user_file.read_text() == 'cpus = 2\ndefault_modules = ["a/1", "b/2"]\n'
    assert cli(["config", "set", "cpus", "3"]).status == 0


@pytest.mark.parametrize("text, key, value", [
    ('default_modules = [ "gcc/10", # ]\n  "python/3",\n]\n', "default_modules", "a/1"),
    ('default_modules = [\n  "gcc/10", "]"\n]\n', "default_modules", "a/1")])
def test_config_set_on_a_file_it_cannot_edit_says_one_line(user_file: Path, cli, text: str, key: str,
                                                           value: str) -> None:
    user_file.write_text(text)
    result = cli(["config", "set", key, value])
    assert result.status == 2 and result.err_lines == [
        f"galyleo: error: config set {key}: cannot edit {user_file} safely (the key is inside a table, or written"
        " over several lines there): edit that file by hand"]
    assert user_file.read_text() == text


def test_config_set_on_a_file_it_cannot_parse_says_one_line(user_file: Path, cli,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    user_file.write_text("cpus = 2\n")
    assert cli(["config", "show"]).status == 0
    from galyleo import config_commands

    real: Callable = config_commands.site.toml_loads
    calls = []

    def broken_once(text: str):  # the file changed after config.load read it
        calls.append(text)
        return real(text) if len(calls) > 1 else real("x = = 1")

    monkeypatch.setattr(config_commands.site, "toml_loads", broken_once)
    with pytest.raises(Exception) as caught:
        config_commands.config_set("cpus", "4")
    assert type(caught.value).__name__ == "ConfigError" and f"config {user_file}: cannot parse it" in str(caught.value)
