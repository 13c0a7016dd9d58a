"""The conda and modules contracts across the language boundary, run in real bash:
the rendered `galyleo_conda_key` gives conda.cache_key, the rendered search loop
walks conda.CONDA_PREFIXES in order and its failure names them, and the
pre-flight's module probe is the job's own modules section (one text, two hooks).
"""

import subprocess
from pathlib import Path
from typing import Dict, List, Optional

import pytest
from conftest import ROOT

from galyleo import cli as galyleo_cli
from galyleo import conda, condacache, render, spec
from galyleo.config import Config

CONF = Config(account="abc123", module_init=[str(ROOT / "tests" / "bats" / "stubs" / "modules" / "init.bash")])
SNIPPETS = ROOT / "galyleo" / "snippets"
# The job's helpers as the conda functions need them: log and die on stdout, to be read back.
HELPERS = ('galyleo_log() { printf "%s\\n" "$*"; }\ngalyleo_die() { printf "die: %s\\n" "$*"; exit 1; }\n'
           'galyleo_lax() { "$@"; }\n'  # the preamble's, without its nounset switch (tested in test_snippet_values)
           'galyleo_make_scratch() { :; }\n')  # these functions use no scratch


def build(argv: List[str], home: str = "/") -> spec.LaunchSpec:
    return spec.build(galyleo_cli.make_parser(CONF).parse_args(["generate", *argv]), CONF, home=home)


def conda_functions(argv: List[str]) -> str:
    """values.sh.j2 and conda.sh.j2 as the job renders them for ARGV, without running the
    activation (as for a container: the functions are only defined)."""
    launch = build(argv)
    text = "{% include 'values.sh.j2' %}{% include 'conda.sh.j2' %}"
    context = {"values": render.bound_values(launch, CONF, None), "conda": "env", "container": True}
    return str(render.environment().from_string(text).render(context))


def bash(script: str, env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", "set -euo pipefail\n" + script], capture_output=True, text=True,
                          env=env, timeout=30, check=False)


# --- the cache key ----------------------------------------------------------------------

@pytest.mark.parametrize("yml", [b"name: demo\ndependencies:\n  - python=3.11\n", b"name: x", b"name: caf\xc3\xa9\n"])
def test_rendered_key_is_contract_cache_key(tmp_path: Path, yml: bytes) -> None:
    path = tmp_path / "environment.yml"
    path.write_bytes(yml)
    functions = conda_functions(["--conda-yml", str(path), "--cache"])
    done = bash(HELPERS + functions + f"\ngalyleo_conda_key {render.sh(path)}\n")
    assert done.returncode == 0, done.stderr
    platform = subprocess.run(["uname", "-sm"], capture_output=True, text=True, check=True).stdout.rstrip("\n")
    assert done.stdout == conda.cache_key(yml, platform) + "\n"
    assert condacache.KEY.match(done.stdout.rstrip("\n"))


def test_the_job_builds_under_the_key_function() -> None:
    """The key line calls the one function, and the container gets that function too."""
    conda = (SNIPPETS / "conda.sh.j2").read_text()
    assert 'key="$(galyleo_conda_key "${GALYLEO_CONDA_YML}")"' in conda
    assert conda.count("sha256sum") == 1
    shipped = next(line for line in conda.splitlines() if line.startswith("GALYLEO_INSIDE_FUNCTIONS+=("))
    assert " galyleo_conda_key " in shipped  # the functions the container part passes into the image


# --- the search order -------------------------------------------------------------------

HOME_PREFIXES = [p for p in conda.CONDA_PREFIXES if p.startswith("~/")]


def search_env(home: Path) -> Dict[str, str]:
    """A HOME of its own and a PATH with no conda on it (nor CONDA_EXE, nor ~/.bashrc)."""
    return {"HOME": str(home), "PATH": "/usr/bin:/bin"}


def test_prefix_list_survives_the_separator() -> None:
    assert all(conda.CONDA_PREFIX_SEPARATOR not in p for p in conda.CONDA_PREFIXES)
    assert HOME_PREFIXES, "the round trip below needs prefixes under HOME"


@pytest.mark.parametrize("first", range(len(HOME_PREFIXES)), ids=HOME_PREFIXES)
def test_rendered_loop_finds_each_prefix_in_order(tmp_path: Path, first: int) -> None:
    """conda.sh at the FIRST prefix and every later one: the FIRST wins."""
    home = tmp_path / "home"
    for prefix in HOME_PREFIXES[first:]:
        profile = home / prefix[2:] / "etc" / "profile.d"
        profile.mkdir(parents=True)
        (profile / "conda.sh").write_text(f'echo "sourced {prefix}"\n')
    functions = conda_functions(["--conda-env", "x"])
    done = bash(HELPERS + functions + "\ngalyleo_conda_init\n", search_env(home))
    assert done.returncode == 0, done.stderr
    winner = HOME_PREFIXES[first]
    assert done.stdout == f"sourced {winner}\nconda from {home}/{winner[2:]}\n"


def test_rendered_failure_names_every_prefix(tmp_path: Path) -> None:
    if any(Path(p).exists() for p in conda.CONDA_PREFIXES if not p.startswith("~/")):
        pytest.skip("this machine has conda at an absolute prefix of the list")
    home = tmp_path / "home"
    home.mkdir()
    functions = conda_functions(["--conda-env", "x"])
    done = bash(HELPERS + functions + "\ngalyleo_conda_activate\n", search_env(home))
    assert done.returncode == 1, done.stderr
    host = subprocess.run(["hostname", "-s"], capture_output=True, text=True, check=True).stdout.strip()
    assert done.stdout == (f"die: conda not found on {host} (looked at --conda-init, CONDA_EXE, PATH, "
                           f"{', '.join(conda.CONDA_PREFIXES)}, ~/.bashrc): give --conda-init "
                           "PATH/etc/profile.d/conda.sh\n")


# --- the module probe -------------------------------------------------------------------

def modules_block(text: str) -> str:
    """The rendered modules logic: from the init files' loop to the loads' last `done`."""
    start = text.index("if ! type module >/dev/null 2>&1; then\n")
    end = text.index("\ndone\n", text.index('galyleo_lax module load "${galyleo_name}"')) + len("\ndone\n")
    return text[start:end]


def test_modules_logic_is_written_once() -> None:
    """Every snippet and module: `module load` is spelled in modules.sh.j2 alone, and the probe includes it."""
    sources = {p.name: p.read_text() for p in SNIPPETS.glob("*.j2")}
    assert [name for name, text in sources.items() if "module load" in text] == ["modules.sh.j2"]
    assert '{% include "modules.sh.j2" %}' in sources["module_probe.sh.j2"]
    python = {p.name: p.read_text() for p in (ROOT / "galyleo").glob("*.py")}
    assert [name for name, text in python.items() if "module load" in text or "use --append" in text] == []


def test_probe_and_job_run_the_same_modules_text() -> None:
    argv = ["-e", "gcc/10.2.0,py'thon$(id)", "--append-modulepath", "/opt/my mods"]
    launch = build(argv)
    job = render.render(launch, CONF)
    probe = render.module_probe(launch, CONF, "jupyter-lab")
    assert modules_block(job) == modules_block(probe)
    assert modules_block(job) in (SNIPPETS / "modules.sh.j2").read_text()  # as written: nothing rendered in it
    assert "galyleo_die" not in probe and "galyleo_stamp" not in probe


def test_probe_reports_through_its_hooks(tmp_path: Path) -> None:
    """The rendered probe, run: a failed load is reported as `load NAME` NUL and only that call's stderr."""
    launch = build(["-e", "first,bad"])
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "STUB_LOG": str(tmp_path), "STUB_MODULE_FAIL": "bad"}
    done = subprocess.run(["bash", "-c", render.module_probe(launch, CONF)], capture_output=True, text=True,
                          env=env, timeout=30, check=False)
    assert (done.returncode, done.stderr) == (3, "")
    said = 'Lmod has detected the following error:  The following module(s) are unknown: "bad"\n'
    assert done.stdout == "load bad\0" + said  # not the reset's warning, nor `first`'s


def test_probe_is_clean_shell(tmp_path: Path, shell_checks) -> None:  # type: ignore[no-untyped-def]
    run_shellcheck, bash_n = shell_checks
    path = tmp_path / "probe.sh"
    path.write_text(render.module_probe(build(["-e", "a", "--append-modulepath", "/p"]), CONF, "jupyter-lab"))
    assert bash_n(path) == ""
    assert run_shellcheck([path]) == {str(path): []}
