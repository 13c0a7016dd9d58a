"""The command line itself: --version, help showing this site's defaults, one-line
argparse errors with exit 2, and which heavy modules each path imports.
"""

import re
from pathlib import Path
from typing import List

import pytest
from conftest import DATA, run_galyleo

from galyleo import __version__

SITE_DEFAULTS = [
    ("--account ACCOUNT", "(default: site-acct)"),
    ("--partition PARTITION", "(default: site-part)"),
    ("--cpus CPUS", "(default: 3)"),
    ("--memory MEMORY", "(default: 12)"),
    ("--gpus GPUS", "(default: 1)"),
    ("--time-limit TIME_LIMIT", "(default: 02:00:00)"),
    ("--reservation RESERVATION", "(default: site-res)"),
    ("--qos QOS", "(default: site-qos)"),
    ("--constraint CONSTRAINT", "(default: site-feat)"),
    ("--interface INTERFACE", "(default: notebook)"),
    ("--env-modules ENV_MODULES", "(after the site's: site/base)"),
]
BUILTIN_DEFAULTS = [
    ("--account ACCOUNT", "(default: none)"),
    ("--partition PARTITION", "(default: Slurm default)"),
    ("--cpus CPUS", "(default: 1)"),
    ("--memory MEMORY", "(default: Slurm default)"),
    ("--gpus GPUS", "(default: none)"),
    ("--time-limit TIME_LIMIT", "(default: 00:30:00)"),
    ("--interface INTERFACE", "(default: lab)"),
]
HELP_FORMS = [["help", "generate"], ["generate", "-h"], ["generate", "--help"], ["help", "launch"], ["launch", "-h"]]


def option_help(text: str, option: str) -> str:
    """The help text of one option, with argparse's line wrapping undone."""
    flat = " ".join(text.split())
    start = flat.index(option)
    following = re.search(r" -[A-Za-z], --|  | --[a-z-]+ [A-Z_]+ | --[a-z-]+ (?=[a-z])", flat[start + len(option):])
    return flat[start: start + len(option) + (following.start() if following else 200)]


def test_version_in_process(cli) -> None:
    result = cli(["--version"])
    assert result == (0, f"galyleo {__version__}\n", "")


def test_version_subprocess_without_any_config(tmp_path: Path) -> None:
    result = run_galyleo(["--version"], env={"HOME": str(tmp_path)})
    assert result == (0, f"galyleo {__version__}\n", "")


@pytest.mark.parametrize("argv", HELP_FORMS, ids=[" ".join(a) for a in HELP_FORMS])
def test_help_shows_site_defaults(argv: List[str], test_home: Path, cli) -> None:
    result = cli(argv)
    assert (result.status, result.err) == (0, "")
    assert result.out.startswith(f"usage: galyleo {argv[1] if argv[0] == 'help' else argv[0]} ")
    for option, default in SITE_DEFAULTS:
        assert default in option_help(result.out, option), option
    assert ("--quiet" in result.out) == ("launch" in argv)


@pytest.mark.parametrize("argv", HELP_FORMS[:2] + HELP_FORMS[4:], ids=["help generate", "generate -h", "launch -h"])
def test_help_shows_builtin_defaults_without_site_config(argv: List[str], tmp_path: Path) -> None:
    result = run_galyleo(argv, env={"HOME": str(tmp_path), "COLUMNS": "200"}, cwd=str(tmp_path))
    assert result.status == 0
    # `help CMD` warns that the defaults are built-in; `CMD -h` exits inside argparse before the warning.
    if argv[0] == "help":
        assert len(result.err_lines) == 1 and "warning: no site config found" in result.err
    else:
        assert result.err == "" or (len(result.err_lines) == 1 and "warning: no site config" in result.err)
    for option, default in BUILTIN_DEFAULTS:
        assert default in option_help(result.out, option), option
    assert "(after the site's" not in result.out


def test_help_follows_a_changed_site_config(site_toml, monkeypatch: pytest.MonkeyPatch, test_home: Path,
                                            cli) -> None:
    monkeypatch.setenv("GALYLEO_CONFIG", str(site_toml('account = "other"\ntime_limit = "45"\ncpus = 8\n')))
    out = cli(["help", "generate"]).out
    assert "(default: other)" in option_help(out, "--account ACCOUNT")
    assert "(default: 8)" in option_help(out, "--cpus CPUS")
    assert "(default: 45)" in option_help(out, "--time-limit TIME_LIMIT")


@pytest.mark.parametrize("argv", [["help"], [], ["-h"]], ids=["help", "nothing", "-h"])
def test_top_level_help_lists_commands(argv: List[str], test_home: Path, cli) -> None:
    result = cli(argv)
    assert (result.status, result.err) == (0, "")
    assert result.out.startswith("usage: galyleo ")
    for command in ("generate", "launch", "help"):
        assert re.search(rf"^\s+{command}\s+\S", result.out, re.M), command


ARGPARSE_ERRORS = [
    (["generate", "--bogus"], "unrecognized arguments: --bogus"),
    (["generate", "-A"], "argument -A/--account: expected one argument"),
    (["launch", "--cpus"], "argument -c/--cpus: expected one argument"),
    (["generate", "-t"], "argument -t/--time-limit: expected one argument"),
    (["generate", "--env-modules", "-x"], "argument -e/--env-modules: expected one argument"),
    (["frobnicate"], "argument COMMAND: invalid choice: 'frobnicate'"),
    (["help", "frobnicate"], "argument topic: invalid choice: 'frobnicate'"),
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["launch", "-Q", "extra"], "unrecognized arguments: extra"),
]


@pytest.mark.parametrize("argv, message", ARGPARSE_ERRORS, ids=[" ".join(a) for a, _ in ARGPARSE_ERRORS])
def test_argparse_errors_are_one_line(argv: List[str], message: str, test_home: Path, cli) -> None:
    result = cli(argv)
    assert result.status == 2 and result.out == ""
    assert len(result.err_lines) == 1, result.err
    assert result.err_lines[0].startswith("galyleo: error: ") and message in result.err_lines[0]


def test_argparse_error_subprocess(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "GALYLEO_CONFIG": str(DATA / "site.toml")}
    result = run_galyleo(["generate", "--bogus"], env=env)
    assert result == (2, "", "galyleo: error: unrecognized arguments: --bogus\n")


def test_generate_prints_only_the_script(test_home: Path, cli) -> None:
    result = cli(["generate"])
    assert (result.status, result.err) == (0, "")
    assert result.out.startswith("#!/bin/bash\n") and result.out.endswith("\n")
    assert list(test_home.iterdir()) == [], "generate wrote into HOME"


def test_launch_without_sbatch_fails_before_writing(test_home: Path, monkeypatch: pytest.MonkeyPatch, cli) -> None:
    monkeypatch.setenv("PATH", str(test_home))
    result = cli(["launch"])
    assert result.status == 1 and result.out == ""
    assert result.err_lines == ["galyleo: error: sbatch: command not found (run galyleo on a login node of a "
                                "Slurm cluster)"]
    assert list(test_home.iterdir()) == []


# --- imports on each path (fresh interpreters) ------------------------------------------

PROBE = """
import sys
from galyleo.cli import main
try:
    status = main(sys.argv[1:])
except SystemExit as exc:
    status = exc.code
heavy = [m for m in ("jinja2", "requests", "galyleo.satellite", "galyleo.render", "galyleo.launch") if m in sys.modules]
sys.stderr.write("LOADED " + ",".join(heavy) + "\\n")
"""


def loaded_after(argv: List[str], tmp_path: Path) -> List[str]:
    env = {"HOME": str(tmp_path), "GALYLEO_CONFIG": str(DATA / "site.toml")}
    result = run_galyleo(argv, env=env, cwd=str(tmp_path), python_code=PROBE)
    last = result.err_lines[-1]
    assert last.startswith("LOADED "), result.err
    return [m for m in last[len("LOADED "):].split(",") if m]


def test_generate_does_not_import_requests(tmp_path: Path) -> None:
    loaded = loaded_after(["generate", "-e", "gcc", "--conda-env", "x", "-s", "docker://a/b"], tmp_path)
    assert "jinja2" in loaded and "galyleo.render" in loaded, "generate did not render"
    assert "requests" not in loaded and "galyleo.satellite" not in loaded and "galyleo.launch" not in loaded


@pytest.mark.parametrize("argv", [["--version"], ["help"], ["help", "generate"], ["generate", "-h"], ["launch", "-h"],
                                  ["generate", "-c", "0"]])
def test_version_help_and_errors_do_not_import_jinja2(argv: List[str], tmp_path: Path) -> None:
    loaded = loaded_after(argv, tmp_path)
    assert "jinja2" not in loaded and "requests" not in loaded


def test_import_probe_sees_requests_on_the_launch_path(tmp_path: Path) -> None:
    """The probe can fail: `launch` with a stub sbatch reaches the (unreachable) proxy with requests."""
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "sbatch").write_text("#!/bin/sh\necho 1\n")
    (tmp_path / "bin" / "sbatch").chmod(0o755)
    site = tmp_path / "site.toml"
    extra = 'satellite_url = "https://127.0.0.1:9"\nhttp_timeout = 2\n'
    site.write_text(DATA.joinpath("site.toml").read_text() + extra)
    env = {"HOME": str(tmp_path), "GALYLEO_CONFIG": str(site), "PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin"}
    result = run_galyleo(["launch", "--no-preflight"], env=env, cwd=str(tmp_path), python_code=PROBE)  # site/base
    assert "requests" in result.err_lines[-1].split(" ", 1)[1].split(","), result.err


@pytest.mark.parametrize("value", ["a=--", "$(x)%=--", "--x"])
def test_a_value_that_only_ends_in_equals_dashes_is_kept_verbatim(value: str) -> None:
    """Only a value that IS `--` is refused (argparse before 3.13 drops it); `a=--` is a value like any."""
    from galyleo import cli
    from galyleo.config import Config

    assert cli.parse(["generate", f"--append-modulepath={value}"], Config()).append_modulepath == [value]
