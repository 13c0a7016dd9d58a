"""Site config: where it is found, what a missing or broken one does, and the
precedence command line > site config > built-in default, option by option.
"""

import os
import stat
import sys
from pathlib import Path
from typing import List

import pytest
from conftest import DATA, ROOT, hermetic, run_galyleo

from galyleo import cli, config, configfiles, spec
from galyleo.config import Config
from galyleo.errors import ConfigError, UsageError


def build(argv: List[str], conf: Config, home: str = "/") -> spec.LaunchSpec:
    """The spec for `generate ARGV` under CONF, the way the CLI builds it."""
    args = cli.make_parser(conf).parse_args(["generate", *argv])
    return spec.build(args, conf, home=home)


# --- finding the file ---------------------------------------------------------------


def test_no_file_gives_builtin_defaults_and_one_warning(tmp_path: Path) -> None:
    loaded = configfiles.load(environ={}, argv0=str(tmp_path / "galyleo.pyz"))
    assert loaded.config == Config() and loaded.path is None
    assert str(tmp_path / "galyleo.toml") in loaded.warning and "\n" not in loaded.warning


def test_no_file_warns_once_on_stderr(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path)}
    result = run_galyleo(["generate", "-A", "abc"], env=env, cwd=str(tmp_path))
    assert result.status == 0, result.err
    assert len(result.err_lines) == 1 and result.err.startswith("galyleo: warning: no site config found")
    assert "#SBATCH --time=00:30:00" in result.out.splitlines()


def test_galyleo_config_variable(site_toml) -> None:
    path = site_toml('partition = "from-env"\n', name="elsewhere.toml")
    loaded = configfiles.load(environ={"GALYLEO_CONFIG": str(path)}, argv0="/nonexistent/galyleo")
    assert loaded.path == str(path) and loaded.config.partition == "from-env" and loaded.warning == ""


def test_galyleo_config_variable_wins_over_file_beside_argv0(site_toml) -> None:
    beside = site_toml('partition = "beside"\n')
    chosen = site_toml('partition = "chosen"\n', name="chosen.toml")
    loaded = configfiles.load(environ={"GALYLEO_CONFIG": str(chosen)}, argv0=str(beside.parent / "galyleo.pyz"))
    assert loaded.config.partition == "chosen"


def test_galyleo_config_naming_a_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="GALYLEO_CONFIG .*no-such.toml.*no such file"):
        configfiles.load(environ={"GALYLEO_CONFIG": str(tmp_path / "no-such.toml")}, argv0=str(tmp_path / "g"))


def test_file_beside_argv0(site_toml) -> None:
    path = site_toml('partition = "beside"\n')
    loaded = configfiles.load(environ={}, argv0=str(path.parent / "galyleo.pyz"))
    assert loaded.path == str(path) and loaded.config.partition == "beside"


def test_file_beside_symlink_target(tmp_path: Path, site_toml) -> None:
    path = site_toml('partition = "beside-target"\n')
    target = path.parent / "galyleo.pyz"
    target.write_text("")
    link_dir = tmp_path / "bin"
    link_dir.mkdir()
    (link_dir / "galyleo").symlink_to(target)
    loaded = configfiles.load(environ={}, argv0=str(link_dir / "galyleo"))
    assert loaded.path == str(path) and loaded.config.partition == "beside-target"


def test_file_beside_the_symlink_itself_comes_first(tmp_path: Path, site_toml) -> None:
    target_conf = site_toml('partition = "beside-target"\n')
    (target_conf.parent / "galyleo.pyz").write_text("")
    link_dir = tmp_path / "bin"
    link_dir.mkdir()
    (link_dir / "galyleo").symlink_to(target_conf.parent / "galyleo.pyz")
    (link_dir / "galyleo.toml").write_text('partition = "beside-link"\n')
    assert configfiles.load(environ={}, argv0=str(link_dir / "galyleo")).config.partition == "beside-link"


def test_symlinked_entry_point_end_to_end(tmp_path: Path) -> None:
    """A real run through a symlink: the config beside the target supplies help's defaults."""
    app = tmp_path / "app"
    app.mkdir()
    entry = app / "galyleo"
    entry.write_text(f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(ROOT)!r})\n"
                     "from galyleo.cli import main\nsys.exit(main())\n")
    entry.chmod(entry.stat().st_mode | stat.S_IXUSR)
    (app / "galyleo.toml").write_text('partition = "linked-site"\naccount = "abc"\n')
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "galyleo").symlink_to(entry)
    env = hermetic(dict(os.environ))
    env.update(HOME=str(tmp_path), COLUMNS="200")
    import subprocess

    proc = subprocess.run([str(tmp_path / "bin" / "galyleo"), "help", "generate"], capture_output=True,
                          text=True, env=env, timeout=60, check=False)
    assert proc.returncode == 0 and proc.stderr == ""
    assert "(default: linked-site)" in proc.stdout


# --- broken files -----------------------------------------------------------------------


@pytest.mark.parametrize("text, fragment", [
    ('acount = "x"\n', "unknown key 'acount'"),
    ('cpus = "4"\n', "cpus = '4': expected a whole number"),
    ('require_account = "no"\n', "require_account = 'no': expected true or false"),
    ('default_modules = "gcc"\n', "default_modules = 'gcc': expected a list of strings"),
    ('interface = "classic"\n', "interface = 'classic': expected one of lab, notebook, voila"),
    ('module_reset = "restore"\n', "expected one of reset, purge, none"),
    ('container_runtime = "podman"\n', "expected one of auto, apptainer, singularity"),
    ('port_min = -5\n', "port_min = -5: expected a whole number from 1024 to 65535 (or 0: not set)"),
    ('qos = "a"\ncpus = \nmemory = 4\n', "(at line 2, column"),
    ('[scheduler]\nqos = "a"\n', "unknown key 'scheduler'"),
])
def test_bad_file_names_file_and_problem(site_toml, text: str, fragment: str) -> None:
    path = site_toml(text)
    with pytest.raises(ConfigError) as info:
        configfiles.load(environ={"GALYLEO_CONFIG": str(path)})
    message = str(info.value)
    assert message.startswith(f"config {path}: ") and fragment in message and "\n" not in message


def test_not_utf8(site_toml) -> None:
    path = site_toml("")
    path.write_bytes(b'account = "\xff"\n')
    with pytest.raises(ConfigError, match="not UTF-8"):
        configfiles.load(environ={"GALYLEO_CONFIG": str(path)})


def test_config_path_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=f"config {tmp_path}: cannot read"):
        configfiles.load(environ={"GALYLEO_CONFIG": str(tmp_path)})


def test_every_field_has_a_checked_type() -> None:
    """Each Config field maps to a type the checker knows (a new field cannot slip through)."""
    from dataclasses import fields

    for f in fields(Config):
        kind = config.kind_of(f.type)
        assert kind in config.TYPE_NAMES
        assert isinstance(getattr(Config(), f.name), kind)


def test_valid_test_config_loads_without_warning() -> None:
    loaded = configfiles.load(environ={"GALYLEO_CONFIG": str(DATA / "site.toml")})
    assert loaded.warning == "" and loaded.config.account == "site-acct"


# --- account ------------------------------------------------------------------------------


def test_account_required_without_a_site_account() -> None:
    with pytest.raises(UsageError, match="^--account: required"):
        build([], Config())


def test_account_from_site_config() -> None:
    assert build([], Config(account="site-acct")).account == "site-acct"


def test_account_not_required_when_site_says_so() -> None:
    conf = config.from_mapping({"require_account": False}, "test")
    assert build([], conf).account == ""


def test_empty_account_on_the_command_line_is_still_required() -> None:
    with pytest.raises(UsageError, match="^--account"):
        build(["-A", ""], Config(account="site-acct"))


# --- precedence: command line > site config > built-in --------------------------------

# option, config key, config value, command-line value, spec field, expected from each source
PRECEDENCE = [
    ("--account", "account", "site-acct", "cli-acct", "account", ("", "site-acct", "cli-acct")),
    ("--partition", "partition", "site-part", "cli-part", "partition", ("", "site-part", "cli-part")),
    ("--cpus", "cpus", 3, "7", "cpus", (1, 3, 7)),
    ("--memory", "memory", 12, "20G", "memory_mb", (0, 12 * 1024, 20 * 1024)),
    ("--gpus", "gpus", 2, "4", "gpus", (0, 2, 4)),
    ("--time-limit", "time_limit", "02:00:00", "90", "time_limit", ("00:30:00", "02:00:00", "01:30:00")),
    ("--qos", "qos", "site-qos", "cli-qos", "qos", ("", "site-qos", "cli-qos")),
    ("--reservation", "reservation", "site-res", "cli-res", "reservation", ("", "site-res", "cli-res")),
    ("--constraint", "constraint", "site-feat", "cli&feat", "constraint", ("", "site-feat", "cli&feat")),
    ("--interface", "interface", "notebook", "voila", "interface", ("lab", "notebook", "voila")),
]


@pytest.mark.parametrize("option, key, site_value, cli_value, field, expected", PRECEDENCE,
                         ids=[p[0] for p in PRECEDENCE])
def test_precedence(option: str, key: str, site_value: object, cli_value: str, field: str,
                    expected: tuple) -> None:
    builtin_conf = config.from_mapping({"require_account": False}, "test")
    site_conf = config.from_mapping({"require_account": False, key: site_value}, "test")
    assert getattr(build([], builtin_conf), field) == expected[0], "built-in default"
    assert getattr(build([], site_conf), field) == expected[1], "site config over built-in"
    assert getattr(build([option, cli_value], site_conf), field) == expected[2], "command line over site"
    assert getattr(build([option, cli_value], builtin_conf), field) == expected[2], "command line over built-in"


def test_gres_on_the_command_line_replaces_site_gpus() -> None:
    conf = Config(account="a", gpus=2)
    built = build(["--gres", "gpu:a100:1"], conf)
    assert (built.gpus, built.gres) == (0, "gpu:a100:1")


def test_site_modules_come_before_the_users() -> None:
    conf = Config(account="a", default_modules=["site/base", "site/two"])
    assert build(["-e", "gcc,python"], conf).modules == ("site/base", "site/two", "gcc", "python")
    assert build([], conf).modules == ("site/base", "site/two")


def test_output_dir_from_site_config_under_home(tmp_path: Path) -> None:
    conf = Config(account="a", output_dir="~/jobs/galyleo")
    built = build([], conf, home=str(tmp_path))
    assert (built.output_dir, built.notebook_dir) == (f"{tmp_path}/jobs/galyleo", str(tmp_path))


def test_user_file_and_environment_sit_between_site_and_command_line(site_toml, tmp_path: Path) -> None:
    site = site_toml('partition = "site"\nqos = "site"\ncpus = 2\naccount = "a"\n')
    user = tmp_path / "xdg" / "galyleo" / "config.toml"
    user.parent.mkdir(parents=True)
    user.write_text('partition = "user"\nqos = "user"\n')
    environ = {"GALYLEO_CONFIG": str(site), "XDG_CONFIG_HOME": str(tmp_path / "xdg"), "GALYLEO_QOS": "env"}
    conf = configfiles.load(environ=environ).config
    assert (conf.partition, conf.qos, conf.cpus) == ("user", "env", 2)
    built = build(["-q", "cli"], conf, home=str(tmp_path))
    assert (built.partition, built.qos, built.cpus) == ("user", "cli", 2)


def test_precedence_reaches_the_script(test_home: Path, cli) -> None:
    """Through the real CLI: site values in the header, a command-line value replacing one."""
    result = cli(["generate", "-p", "cli-part"])
    assert result.status == 0, result.err
    lines = result.out.splitlines()
    for line in ("#SBATCH --account=site-acct", "#SBATCH --partition=cli-part", "#SBATCH --cpus-per-task=3",
                 "#SBATCH --mem=12G", "#SBATCH --time=02:00:00", "#SBATCH --qos=site-qos"):
        assert lines.count(line) == 1, line
    assert not any(line.startswith("#SBATCH --partition=site-part") for line in lines)
