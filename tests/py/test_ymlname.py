"""The environment.yml `name:` reader: a top-level YAML key, never a grep."""

from __future__ import annotations

import pytest

from galyleo.ymlname import YmlError, env_name, read_env_name

GOOD = [
    ("name: demo\ndependencies:\n  - python=3.11\n", "demo"),
    ("# comment\nname: demo # trailing comment\n", "demo"),
    ("---\nname: 'it''s'\n", "it's"),
    ('name: "dq" # comment with a "quote"\n', "dq"),
    ("name: plain'apostrophe\n", "plain'apostrophe"),
    ("\ufeffname: bom\n", "bom"),
    ("channels:\n  - conda-forge\n  - name: nested\nname: top\n", "top"),
    ("dependencies:\n  - pip:\n    - name: x\nname:   spaced   \n", "spaced"),
    ("%YAML 1.2\n---\nname: after-directive\n...\nname: ignored after end\n", "after-directive"),
    ("description: |\n  name: inside a block scalar\nname: real\n", "real"),
    ("name: a-b_c.1\r\ndependencies: []\r\n", "a-b_c.1"),
    ('"name": keyquoted\n', "keyquoted"),
]

BAD = [
    ("dependencies:\n  - python\n", "no top-level 'name:'"),
    ("dependencies:\n  name: nested-only\n", "no top-level 'name:'"),
    ("name:\n", "empty or not a single value"),
    ("name:\n  - a\n", "empty or not a single value"),
    ("name: [a, b]\n", "empty or not a single value"),
    ("name: a/b\n", "not a valid conda environment name"),
    ("name: 'open\n", "unterminated quote"),
    ("name: x\nname: y\n", "given twice"),
    ("- python\n- numpy\n", "line 1: expected a top-level 'key: value'"),
    ("name x\n", "line 1: expected"),
    ("name: a\n---\nname: b\n", "more than one YAML document"),
    ("name: a\ndependencies:\n\t- x\n", "line 3: a tab"),
    ("name: 'a' b\n", "text after a quoted value"),
    ("", "no top-level 'name:'"),
]


@pytest.mark.parametrize("text,name", GOOD)
def test_reads_the_top_level_name(text: str, name: str) -> None:
    assert env_name(text) == name


@pytest.mark.parametrize("text,message", BAD)
def test_refuses_what_is_not_a_named_env(text: str, message: str) -> None:
    with pytest.raises(YmlError, match=message.replace("[", r"\[").replace("(", r"\(")):
        env_name(text)


def test_file_errors(tmp_path) -> None:
    with pytest.raises(YmlError, match="cannot read"):
        read_env_name(str(tmp_path / "missing.yml"))
    latin = tmp_path / "latin.yml"
    latin.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(YmlError, match="not UTF-8"):
        read_env_name(str(latin))
