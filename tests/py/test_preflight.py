"""Pre-flight (galyleo/preflight.py) on the login node, without Slurm: modules load
in order after the site's reset and the --append-modulepath paths, the --conda-yml
names an env, conda is found, the --conda-env exists and has the interface's command,
and a tool that hangs is a warning. The module system and conda are the bats
stand-ins (tests/bats/stubs) or small fakes written per test; `sbatch` is a dummy
that leaves a marker when run, and no test may leave it.
"""

import json
import os
import shlex
from pathlib import Path
from typing import Any, Dict, List, NamedTuple, Optional, Sequence

import pytest
from conftest import ROOT

from galyleo import apps, preflight, spec
from galyleo import cli as galyleo_cli
from galyleo.config import Config
from galyleo.errors import UsageError

STUBS = ROOT / "tests" / "bats" / "stubs"
MODULE_INIT = STUBS / "modules" / "init.bash"
CONDA_INIT = STUBS / "conda" / "etc" / "profile.d" / "conda.sh"
LMOD_UNKNOWN = 'Lmod has detected the following error: The following module(s) are unknown: "{}"'


class World(NamedTuple):
    root: Path
    home: Path
    log: Path
    sbatch_ran: Path
    bin: Path


def executable(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(0o755)
    return path


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_env: None) -> World:
    """A dummy sbatch and a silent sinfo first on PATH, with every interface's command beside
    it (the login node's own Jupyter), an empty HOME, the stand-ins' log, no inherited
    `module` function, BASH_ENV or conda."""
    marker = tmp_path / "sbatch-ran"
    bin_dir = tmp_path / "bin"
    executable(bin_dir / "sbatch", f"#!/bin/sh\n: > {shlex.quote(str(marker))}\nexit 1\n")
    # A controller that does not answer, at once (the machine's own sinfo, if any, may wait ~9 s
    # for one it cannot reach): the partition check then has nothing to say, as these tests expect.
    executable(bin_dir / "sinfo", "#!/bin/sh\necho 'sinfo: error: Unable to contact slurm controller' >&2\nexit 1\n")
    for command in {command for app in apps.APPS.values() for command in app.commands}:
        executable(bin_dir / command, "#!/bin/sh\nexit 0\n")
    home, log = tmp_path / "home", tmp_path / "log"
    home.mkdir()
    log.mkdir()
    for key in list(os.environ):
        if key.startswith(("BASH_FUNC_", "STUB_", "CONDA_")) or key in ("BASH_ENV", "ENV", "MODULEPATH"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', os.defpath)}")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("STUB_LOG", str(log))
    return World(tmp_path, home, log, marker, bin_dir)


def check(world: World, argv: Sequence[str], environ: Optional[Dict[str, str]] = None, **settings: Any) -> None:
    """Build a LaunchSpec as `generate ARGV` would and run pre-flight on it."""
    values: Dict[str, Any] = {"account": "abc123", "module_init": [str(MODULE_INIT)], "preflight_timeout": 10}
    values.update(settings)
    conf = Config(**values)
    args = galyleo_cli.make_parser(conf).parse_args(["generate", *argv])
    launch = spec.build(args, conf, home=str(world.home))
    try:
        preflight.check(launch, conf, environ)
    finally:
        assert not world.sbatch_ran.exists(), "pre-flight ran sbatch"


def refused(world: World, argv: Sequence[str], **settings: Any) -> str:
    with pytest.raises(UsageError) as caught:
        check(world, argv, **settings)
    message = str(caught.value)
    assert "\n" not in message
    return message


def calls(world: World, cmd: str) -> List[List[str]]:
    """The argv of every call of CMD the stand-ins logged, in order."""
    path = world.log / "calls.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    return [r["argv"] for r in map(json.loads, lines) if r["cmd"] == cmd and r["event"] == "call"]


def refused_by_module(world: World, body: str, argv: Sequence[str]) -> str:
    """The refusal when the init file defines `module() { BODY }` (a site's own module system)."""
    init = executable(world.root / "lmod.sh", f"module() {{\n{body}}}\n")
    return refused(world, argv, module_init=[str(init)])


def yml_file(world: World, text: str) -> Path:
    path = world.root / "environment.yml"
    path.write_text(text, encoding="utf-8")
    return path


def make_env(path: Path, *commands: str) -> Path:
    """A conda env prefix (conda-meta/) with executable bin/COMMANDS."""
    (path / "conda-meta").mkdir(parents=True)
    for command in commands:
        executable(path / "bin" / command, "#!/bin/sh\nexit 0\n")
    return path


def fake_conda(world: World, envs: Sequence[Path], base: Optional[Path] = None) -> Path:
    """A conda.sh whose `conda env list --json` lists ENVS as real conda prints it (no
    root_prefix), and whose `conda info --base` names BASE (default: the first of ENVS)."""
    listing = shlex.quote(json.dumps({"envs": [str(e) for e in envs]}))
    root = shlex.quote(str(base or envs[0]))
    return executable(world.root / "fake-conda" / "conda.sh",
                      f'conda() {{\n  [[ "$*" == "env list --json" ]] && {{ printf "%s\\n" {listing}; return 0; }}\n'
                      f'  [[ "$*" == "info --base" ]] && {{ printf "%s\\n" {root}; return 0; }}\n'
                      "  return 1\n}\n")


@pytest.fixture
def envs(world: World) -> Dict[str, Path]:
    """base (with jupyter-lab), alpha (with jupyter-lab), beta (without)."""
    base = world.root / "miniforge3"
    return {"base": make_env(base, "jupyter-lab"), "alpha": make_env(base / "envs" / "alpha", "jupyter-lab"),
            "beta": make_env(base / "envs" / "beta")}


# --- modules --------------------------------------------------------------------------


def test_refused_module_names_it_and_quotes_the_module_system(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STUB_MODULE_FAIL", "bad/1.0")
    message = refused(world, ["-e", "good,bad/1.0,later"])
    assert message == f"--env-modules 'bad/1.0': the module system says: {LMOD_UNKNOWN.format('bad/1.0')}"
    assert ["load", "later"] not in calls(world, "module")


def test_modules_load_one_by_one_in_order_after_reset(world: World) -> None:
    """The stand-in's `reset` fails (as Debian's Lmod does with no site defaults): not an error.
    The first init file that exists is the one sourced."""
    check(world, ["-e", "first/1,second,third/2.0"], module_init=[str(world.root / "missing.sh"), str(MODULE_INIT)])
    assert calls(world, "module") == [["reset"], ["load", "first/1"], ["load", "second"], ["load", "third/2.0"]]


@pytest.mark.parametrize(("reset", "before"), [("reset", [["reset"]]), ("purge", [["purge"]]), ("none", [])])
def test_module_reset_setting(world: World, reset: str, before: List[List[str]]) -> None:
    check(world, ["-e", "one"], module_reset=reset)
    assert calls(world, "module") == [*before, ["load", "one"]]


def test_site_default_modules_load_before_the_users(world: World) -> None:
    check(world, ["-e", "mine"], default_modules=["site/base"])
    assert calls(world, "module") == [["reset"], ["load", "site/base"], ["load", "mine"]]


def test_append_modulepath_is_used_after_reset_and_before_loads(world: World) -> None:
    check(world, ["-e", "one", "--append-modulepath", "/opt/mods a", "--append-modulepath", "/p2"])
    assert calls(world, "module") == [["reset"], ["use", "--append", "/opt/mods a"], ["use", "--append", "/p2"],
                                      ["load", "one"]]


def test_append_modulepath_refused_names_the_path(world: World) -> None:
    body = '  [[ "$1" == use ]] || return 0\n  printf "Lmod: %s is not a directory\\n\\nmore\\n" "$3" >&2\n  return 1\n'
    message = refused_by_module(world, body, ["--append-modulepath", "/nowhere"])
    assert message == "--append-modulepath '/nowhere': the module system says: Lmod: /nowhere is not a directory"


def test_no_module_command_and_no_init_file_names_the_init_files(world: World) -> None:
    inits = [str(world.root / "lmod.sh"), str(world.root / "modules.sh")]
    message = refused(world, ["-e", "one"], module_init=inits)
    assert message.startswith("--env-modules: no 'module' command on this node")
    assert message.endswith(f"none of these init files exists: {inits[0]} {inits[1]}")


def test_banner_of_an_earlier_load_does_not_garble_the_failure(world: World) -> None:
    body = '  [[ "$1" == load ]] || return 0\n  [[ "$2" == bad ]] && { echo "unknown: bad" >&2; return 1; }\n'
    message = refused_by_module(world, body + '  echo "Welcome to $2"\n', ["-e", "good,bad"])
    assert message == "--env-modules 'bad': the module system says: unknown: bad"


# --- conda ----------------------------------------------------------------------------


def test_conda_yml_without_a_name_is_refused(world: World) -> None:
    yml = yml_file(world, "channels:\n  - conda-forge\ndependencies:\n  - python\n")
    message = refused(world, ["--conda-yml", str(yml), "--conda-init", str(CONDA_INIT)])
    assert message == f"--conda-yml '{yml}': no top-level 'name:' key"


def test_conda_yml_with_a_name_passes(world: World) -> None:
    yml = yml_file(world, "name: demo\ndependencies:\n  - python\n")
    check(world, ["--conda-yml", str(yml), "--conda-init", str(CONDA_INIT)])


def test_no_conda_anywhere_is_refused_unless_an_installer_is_set(world: World) -> None:
    yml = yml_file(world, "name: demo\n")
    message = refused(world, ["--conda-yml", str(yml)])
    assert message.startswith("--conda-yml: conda not found on this node")
    assert "give --conda-init PATH/etc/profile.d/conda.sh" in message
    check(world, ["--conda-yml", str(yml)], conda_installer_url="https://example.org/Miniforge3.sh")


def test_conda_init_stub_is_the_conda_asked(world: World, capsys: pytest.CaptureFixture) -> None:
    """The bats stand-in knows no `env list`: pre-flight asked it, and only warns."""
    check(world, ["--conda-env", "alpha", "--conda-init", str(CONDA_INIT)])
    assert calls(world, "conda") == [["env", "list", "--json"]]
    assert capsys.readouterr().err == (f"galyleo: warning: pre-flight: conda (--conda-init {CONDA_INIT}) gave no "
                                       "environment list; not checked\n")


def test_unknown_env_name_lists_the_known_ones(world: World, envs: Dict[str, Path]) -> None:
    init = fake_conda(world, list(envs.values()))
    message = refused(world, ["--conda-env", "gamma", "--conda-init", str(init)])
    assert message == (f"--conda-env 'gamma': no such conda environment (conda from --conda-init {init} knows: "
                       "base, alpha, beta)")


def test_conda_on_path_is_found(world: World, envs: Dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    listing = shlex.quote(json.dumps({"envs": [str(e) for e in envs.values()]}))
    base = shlex.quote(str(envs["base"]))
    conda = executable(world.root / "condabin" / "conda",
                       f'#!/bin/sh\ncase "$*" in\n  "env list --json") printf "%s\\n" {listing} ;;\n'
                       f'  "info --base") printf "%s\\n" {base} ;;\n  *) exit 1 ;;\nesac\n')
    monkeypatch.setenv("PATH", f"{conda.parent}{os.pathsep}{os.environ['PATH']}")
    message = refused(world, ["--conda-env", "gamma"])
    assert message.endswith(f"(conda from PATH {conda} knows: base, alpha, beta)")


@pytest.mark.parametrize("name", ["base", "alpha"])
def test_known_env_with_jupyter_lab_passes(world: World, envs: Dict[str, Path], name: str) -> None:
    check(world, ["--conda-env", name, "--conda-init", str(fake_conda(world, list(envs.values())))])


def test_known_env_without_the_interface_is_refused(world: World, envs: Dict[str, Path]) -> None:
    message = refused(world, ["--conda-env", "beta", "--conda-init", str(fake_conda(world, list(envs.values())))])
    assert message == (f"--conda-env 'beta': {envs['beta']} has no jupyter-lab "
                       "(install it in the env, or load it with --env-modules)")


def test_base_is_found_when_it_does_not_sort_first(world: World) -> None:
    base = make_env(world.root / "opt" / "miniforge3", "jupyter-lab")
    user_env = make_env(world.home / ".conda" / "envs" / "work")
    listed = sorted([user_env, base], key=str)
    assert listed[0] == user_env, "the test needs base to sort second"
    check(world, ["--conda-env", "base", "--conda-init", str(fake_conda(world, listed, base=base))])
    (base / "bin" / "jupyter-lab").unlink()  # and it is base that is checked, not the first listed
    message = refused(world, ["--conda-env", "base", "--conda-init", str(fake_conda(world, listed, base=base))])
    assert message == (f"--conda-env 'base': {base} has no jupyter-lab "
                       "(install it in the env, or load it with --env-modules)")


def test_env_path_without_conda_meta_is_refused(world: World) -> None:
    target = world.root / "not-an-env"
    executable(target / "bin" / "jupyter-lab", "#!/bin/sh\n")
    message = refused(world, ["--conda-env", str(target), "--conda-init", str(CONDA_INIT)])
    assert message == f"--conda-env '{target}': not a conda environment (no conda-meta directory)"
    assert calls(world, "conda") == []


@pytest.mark.parametrize(("interface", "command"), [("lab", "jupyter-lab"), ("notebook", "jupyter-notebook")])
def test_env_path_without_the_interface_is_refused(world: World, interface: str, command: str) -> None:
    target = make_env(world.root / "env", "voila")
    message = refused(world, ["--conda-env", str(target), "--conda-init", str(CONDA_INIT), "-i", interface])
    assert message == (f"--conda-env '{target}': {target} has no {command} "
                       "(install it in the env, or load it with --env-modules)")


def test_env_path_without_jupyter_passes_when_modules_provide_it(world: World) -> None:
    target = make_env(world.root / "env")
    check(world, ["--conda-env", str(target), "--conda-init", str(CONDA_INIT), "-e", "jupyter"])
    assert calls(world, "module") == [["reset"], ["load", "jupyter"]]


# --- timeouts and login nodes -----------------------------------------------------------


@pytest.mark.parametrize("what", ["module", "conda"])
def test_a_tool_that_hangs_is_only_a_warning(world: World, capsys: pytest.CaptureFixture, what: str) -> None:
    """`exec sleep` makes the hanging tool the process pre-flight kills (nothing is left behind)."""
    hang = executable(world.root / "hang.sh", "exec sleep 60\n")
    if what == "module":
        check(world, ["-e", "one"], module_init=[str(hang)], preflight_timeout=1)
        said = "the module system"
    else:
        check(world, ["--conda-env", "alpha", "--conda-init", str(hang)], preflight_timeout=1)
        said = f"conda (--conda-init {hang})"
    assert capsys.readouterr().err == f"galyleo: warning: pre-flight: {said} did not answer within 1 s; not checked\n"


def test_no_sbatch_on_path_checks_nothing(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STUB_MODULE_FAIL", "bad")
    yml = yml_file(world, "dependencies: []\n")
    empty = world.root / "empty-bin"
    empty.mkdir()
    check(world, ["-e", "bad", "--conda-yml", str(yml)], environ={"PATH": str(empty)})
    assert calls(world, "module") == []


# --- the interface's command ------------------------------------------------------------


def without_jupyter(world: World) -> None:
    """This login node has no Jupyter on PATH (only modules or envs may bring it)."""
    for command in {command for app in apps.APPS.values() for command in app.commands}:
        (world.bin / command).unlink()


@pytest.mark.parametrize(("interface", "command"), sorted((name, app.commands[0]) for name, app in apps.APPS.items()))
def test_no_jupyter_anywhere_is_refused_with_what_to_load(world: World, interface: str, command: str) -> None:
    without_jupyter(world)
    message = refused(world, ["-i", interface])
    assert message == (f"--interface {interface}: no {command} on PATH, and no --env-modules, --conda-env or --sif "
                       f"to bring it: {preflight.where(interface)}")


@pytest.mark.parametrize("missing", apps.APPS["vscode"].commands)
def test_vscode_needs_each_of_its_commands(world: World, missing: str) -> None:
    check(world, ["-i", "vscode"])
    (world.bin / missing).unlink()
    message = refused(world, ["-i", "vscode"])
    assert message.startswith(f"--interface vscode: no {missing} on PATH")
    assert "code-server and a Jupyter server with jupyter-server-proxy" in message


def test_vscode_modules_must_bring_code_server_too(world: World) -> None:
    """A Jupyter module alone does not bring VS Code: the probe names what is still missing."""
    (world.bin / "code-server").unlink()
    message = refused(world, ["-i", "vscode", "-e", "gcc/10"])
    assert message.startswith("--env-modules 'gcc/10': they load, but no code-server is on PATH after them: ")
    assert message.endswith(preflight.where("vscode"))


def test_jupyter_on_path_passes(world: World) -> None:
    check(world, ["-i", "voila"])
    (world.bin / "voila").unlink()
    assert "no voila on PATH" in refused(world, ["-i", "voila"])


def test_modules_that_do_not_bring_jupyter_are_refused(world: World) -> None:
    without_jupyter(world)
    message = refused(world, ["-e", "gcc/10,python/3"])
    assert message == ("--env-modules 'gcc/10,python/3': they load, but no jupyter-lab is on PATH after them: "
                       f"{preflight.where('lab')}")
    assert calls(world, "module") == [["reset"], ["load", "gcc/10"], ["load", "python/3"]]


def test_a_module_that_brings_jupyter_passes(world: World) -> None:
    without_jupyter(world)
    provider = world.root / "jupyter-module" / "bin"
    executable(provider / "jupyter-lab", "#!/bin/sh\nexit 0\n")
    body = f'  [[ "$1 $2" == "load py-jupyterlab" ]] && export PATH="{provider}:$PATH"\n  return 0\n'
    init = executable(world.root / "lmod.sh", f"module() {{\n{body}}}\n")
    check(world, ["-e", "gcc,py-jupyterlab"], module_init=[str(init)])
    assert "no jupyter-lab" in refused(world, ["-e", "gcc"], module_init=[str(init)])


def test_env_without_jupyter_and_modules_without_it_are_refused(world: World) -> None:
    without_jupyter(world)
    target = make_env(world.root / "env")
    message = refused(world, ["--conda-env", str(target), "--conda-init", str(CONDA_INIT), "-e", "gcc"])
    assert message.startswith("--env-modules 'gcc': they load, but no jupyter-lab is on PATH after them")


@pytest.mark.parametrize("brought_by", ["sif", "yml"])
def test_an_image_or_a_yml_env_is_checked_in_the_job(world: World, brought_by: str) -> None:
    without_jupyter(world)
    if brought_by == "sif":
        image = world.root / "image.sif"
        image.write_text("")
        check(world, ["--sif", str(image), "-e", "apptainer"])
    else:
        check(world, ["--conda-yml", str(yml_file(world, "name: demo\n")), "--conda-init", str(CONDA_INIT)])
