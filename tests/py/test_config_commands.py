"""`config set` checks a value by the command line's own rules (a value every later launch
would refuse is refused now, the file untouched), lists checked as the site file checks them,
and what `config show` then says.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import sessionkit
from sessionkit import run

from galyleo.errors import ACCEPT

user_file = sessionkit.user_file  # the shared fixture



BAD = [  # key, value, the accepted form the error must name (errors.ACCEPT key, or the text itself)
    ("time_limit", "banana", "time"),
    ("time_limit", "0", "time"),
    ("time_limit", "1-25", "time"),
    ("cpus", "0", "count"),
    ("cpus", "100001", "count"),
    ("gpus", "-1", "count"),
    ("memory", "4X", "memory"),
    ("memory", "1500M", "memory"),  # 4T is Slurm's and taken; a setting is whole GB
    ("partition", "debug,", "partition"),
    ("partition", "a b", "partition"),
    ("account", "abc;rm", "account"),
    ("qos", "x y", "name"),
    ("reservation", "r\tx", "name"),
    ("constraint", "a b", "constraint"),
    ("interface", "jupyter", "one of lab, notebook, voila"),
    ("default_modules", "a/1,-x", "module"),
    ("default_modules", "a/1,,b", "module"),
    ("output_dir", "~/my dir", "a path without spaces"),
]


@pytest.mark.parametrize("key, value, accepted", BAD)
def test_config_set_refuses_what_launch_would_refuse(user_file: Path, capsys, key, value, accepted) -> None:
    before = user_file.read_bytes()
    status, out, err = run(capsys, "config", "set", key, value)
    assert status == 2 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith("galyleo: error: ")
    assert key in err and ACCEPT.get(accepted, accepted) in err
    assert user_file.read_bytes() == before


def test_config_set_refuses_without_creating_the_file(test_home: Path, capsys) -> None:
    assert run(capsys, "config", "set", "cpus", "0")[0] == 2
    assert not (test_home / ".config").exists()


GOOD = [
    ("time_limit", "90", '"01:30:00"'),
    ("time_limit", "1-2", '"1-02:00:00"'),
    ("memory", "8GB", "8"),
    ("memory", "0", "0"),  # the default: "not asked for"
    ("gpus", "0", "0"),
    ("cpus", "16", "16"),
    ("partition", "debug,shared", '"debug,shared"'),
    ("account", "", '""'),
    ("interface", "voila", '"voila"'),
    ("default_modules", "cpu/0.17,gcc/10", '["cpu/0.17", "gcc/10"]'),
    ("default_modules", "", "[]"),
    ("output_dir", "~/sessions", '"~/sessions"'),
    # lists as the site file has them: a TOML array, or a comma list
    ("default_modules", "cpu/0.17, gcc/10", '["cpu/0.17", "gcc/10"]'),
    ("default_modules", '["cpu/0.17", "gcc/10"]', '["cpu/0.17", "gcc/10"]'),
    ("module_init", "/etc/profile.d/lmod.sh", '["/etc/profile.d/lmod.sh"]'),
    ("module_init", "[]", "[]"),
]


@pytest.mark.parametrize("key, value, stored", GOOD)
def test_config_set_stores_what_launch_accepts(user_file: Path, capsys, key, value, stored) -> None:
    status, out, err = run(capsys, "config", "set", key, value)
    assert (status, err) == (0, "")
    assert user_file.read_text().splitlines()[-1] == f"{key} = {stored}"
    assert user_file.read_text().startswith("# my defaults\n")
    status, out, _ = run(capsys, "config", "show", "--json")
    assert json.dumps(json.loads(out)[key]["value"]) == stored


LISTS_BAD = [  # what the site file refuses, given as `config set` text (a TOML array or a comma list)
    ("default_modules", '["cpu/1", "-x"]', "module"),
    ("default_modules", '["a b"]', "module"),
    ("default_modules", '["cpu/1",', "a TOML list of strings"),
    ("module_init", "etc/lmod.sh", "absolute paths"),
    ("module_init", '["/etc/lmod.sh", ""]', "absolute paths"),
    ("module_init", "[1, 2]", "a list of strings"),
    ("connect", "ssh", "would not be in connect_allowed"),
]
SITE_LISTS_BAD = [  # connect_allowed is a site limit (config set refuses it whatever its value): the site file's checks
    ("connect_allowed", "foo", "satellite and/or ssh"),
    ("connect_allowed", '["satellite", "foo"]', "satellite and/or ssh"),
    ("connect_allowed", "[]", "satellite and/or ssh"),
    ("connect_allowed", "[1, 2]", "a list of strings"),
]


def site_refuses(tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch, key: str, value: str, accepted: str) -> None:
    """The same value in a site file is refused by loading it, with the same words."""
    site = tmp_path / "galyleo.toml"
    site.write_text(f"{key} = {value if value.startswith('[') else json.dumps(value.split(','))}\n")
    monkeypatch.setenv("GALYLEO_CONFIG", str(site))
    status, _, err = run(capsys, "config", "show")
    assert status == 2 and err.startswith(f"galyleo: error: config {site}"), err
    assert ACCEPT.get(accepted, accepted) in err or accepted == "a TOML list of strings", err


@pytest.mark.parametrize("key, value, accepted", LISTS_BAD)
def test_config_set_checks_lists_as_the_site_file_does(user_file: Path, tmp_path: Path, capsys, key, value,
                                                      accepted, monkeypatch: pytest.MonkeyPatch) -> None:
    limits = tmp_path / "limits.toml"
    limits.write_text('connect_allowed = ["satellite"]\n')
    monkeypatch.setenv("GALYLEO_CONFIG", str(limits))
    before = user_file.read_bytes()
    status, out, err = run(capsys, "config", "set", key, value)
    assert (status, out) == (2, "") and len(err.splitlines()) == 1, err
    assert err.startswith(f"galyleo: error: config set {key}") and ACCEPT.get(accepted, accepted) in err
    assert user_file.read_bytes() == before
    if key != "connect":
        site_refuses(tmp_path, capsys, monkeypatch, key, value, accepted)


@pytest.mark.parametrize("key, value, accepted", SITE_LISTS_BAD)
def test_site_file_checks_connect_allowed_items(tmp_path: Path, capsys, key, value, accepted,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    site_refuses(tmp_path, capsys, monkeypatch, key, value, accepted)


def test_config_set_then_show(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, data_dir: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.setenv("GALYLEO_CONFIG", str(data_dir / "site.toml"))
    user_file = tmp_path / ".config" / "galyleo" / "config.toml"
    user_file.parent.mkdir(parents=True)
    user_file.write_text("# my defaults\ncpus = 2\n")
    assert run(capsys, "config", "set", "cpus", "8")[0] == 0
    assert run(capsys, "config", "set", "default_modules", "a/1,b/2")[0] == 0
    assert user_file.read_text().startswith("# my defaults\n")
    status, out, _ = run(capsys, "config", "show", "--json")
    shown = json.loads(out)
    assert shown["cpus"] == {"value": 8, "from": f"user file {user_file}"}
    assert shown["default_modules"]["value"] == ["a/1", "b/2"]
    status, _, err = run(capsys, "config", "set", "cpus", "many")
    assert status == 2 and "whole number" in err
    status, _, err = run(capsys, "config", "set", "colour", "blue")
    assert status == 2 and "unknown key" in err
    assert os.stat(user_file).st_size > 0
