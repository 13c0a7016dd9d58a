"""Every rejected input, from two tables in tests/py/data/: exit 2, one line on stderr
naming the option (or the config file) and the accepted form, nothing on stdout,
nothing written anywhere under the (temporary) HOME or the test's files, and no side
effect: a recording `sbatch` first on PATH is never run and a listener standing in for
the Satellite proxy is never connected to. Each `generate` case runs as `launch` too.

Most cases run galyleo.cli.main in-process; a sample also runs as real subprocesses.
"""

import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Dict, Iterator, List, NamedTuple

import pytest
from conftest import DATA, run_galyleo, snapshot

from galyleo.errors import ACCEPT

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
NOBODY = 65534


class Case(NamedTuple):
    args: str
    names: str
    accepted: str
    config: str  # TOML text; "" means the valid test config (data/site.toml)
    line: int

    @property
    def id(self) -> str:
        return f"{self.line}:{(self.args or self.config)[:40]}"


def read_table(name: str) -> List[List[str]]:
    rows = []
    for number, raw in enumerate((DATA / name).read_text(encoding="utf-8").splitlines(), 1):
        if raw.strip() and not raw.startswith("#"):
            fields = raw.split("\t")
            assert len(fields) == 3, f"{name}:{number}: expected 3 tab-separated fields, got {fields}"
            rows.append([number, *fields])
    return rows


def cases() -> List[Case]:
    found = [Case(args, names, accepted, "", n) for n, args, names, accepted in read_table("bad_inputs.tsv")]
    good_args = "generate -A abc"
    for n, toml, names, accepted in read_table("bad_configs.tsv"):
        found.append(Case(good_args, names, accepted, toml.encode().decode("unicode_escape"), n))
    return found


CASES = cases()
SUBPROCESS_SAMPLE = {CASES[i].id for i in (0, 11, 28, 52, 70, 84)} | {c.id for c in CASES if c.config}


def test_tables_are_big_enough() -> None:
    inputs = [c for c in CASES if not c.config]
    assert len(inputs) >= 60
    assert len(CASES) - len(inputs) >= 15
    for option in ("--account", "--partition", "--cpus", "--memory", "--gpus", "--gres", "--time-limit",
                   "--reservation", "--qos", "--constraint", "--interface", "--notebook-dir", "--conda-env",
                   "--conda-yml", "--mamba", "--cache", "--conda-init", "--env-modules", "--append-modulepath",
                   "--sif", "--bind", "--nv", "--rocm"):
        named = [c for c in inputs if option in c.names]
        assert named, f"no rejected input names {option}"


def fill(base: Path) -> Dict[str, str]:
    return {
        "dir": str(base / "files" / "a-dir"),
        "file": str(base / "files" / "environment.yml"),
        "missing": str(base / "files" / "no-such-thing"),
        "unreadable": str(base / "files" / "secret.yml"),
        "long": "a" * 5000,
        "digits": "9" * 5000,  # past Python's 4300-digit int() limit
        "nl": "\n",
    }


def make_world(base: Path) -> Dict[str, str]:
    """The HOME and the files the cases refer to; returns the placeholder values."""
    values = fill(base)
    (base / "home").mkdir()
    os.makedirs(values["dir"])
    Path(values["file"]).write_text("dependencies: [python]\n")
    Path(values["unreadable"]).write_text("dependencies: [python]\n")
    os.chmod(values["unreadable"], 0)
    return values


def argv_for(case: Case, values: Dict[str, str]) -> List[str]:
    return [word.format(**values) for word in shlex.split(case.args)]


def check_result(case: Case, status: int, out: str, err: str, config_path: str) -> None:
    lines = err.splitlines()
    assert status == 2, f"exit {status}, stderr: {err!r}"
    assert out == ""
    assert len(lines) == 1 and err.endswith("\n"), f"want exactly one stderr line, got {lines}"
    line = lines[0]
    assert line.startswith("galyleo: error: ")
    assert case.names in line, f"{case.names!r} not named in {line!r}"
    assert case.accepted in line, f"accepted form {case.accepted!r} not in {line!r}"
    if case.config:
        assert config_path in line, f"config file not named in {line!r}"
    assert len(line) < 6000


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_env: None) -> Dict[str, str]:
    values = make_world(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path / "home")
    return values


class Traps:
    """A listener in the Satellite proxy's place and a recording sbatch: both must stay untouched."""

    def __init__(self, folder: Path) -> None:
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(16)
        self.connections = 0
        self.bin = folder / "trap-bin"
        self.bin.mkdir()
        self.sbatch_log = folder / "sbatch-called"
        sbatch = self.bin / "sbatch"
        sbatch.write_text(f"#!/bin/sh\necho \"$@\" >> '{self.sbatch_log}'\necho 1\n")
        sbatch.chmod(0o755)
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            connection.close()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server.getsockname()[1]}"

    def untouched(self) -> bool:
        return self.connections == 0 and not self.sbatch_log.exists()


@pytest.fixture(scope="module")
def module_traps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Traps]:
    traps = Traps(tmp_path_factory.mktemp("traps"))
    yield traps
    traps.server.close()


@pytest.fixture
def traps(module_traps: Traps, monkeypatch: pytest.MonkeyPatch, clean_env: None) -> Traps:
    monkeypatch.setenv("PATH", f"{module_traps.bin}:{os.environ.get('PATH', '/usr/bin:/bin')}")
    monkeypatch.setenv("GALYLEO_SATELLITE_URL", module_traps.url)
    monkeypatch.setenv("GALYLEO_HTTP_TIMEOUT", "2")
    return module_traps


def test_traps_can_tell(traps: Traps, world: Dict[str, str], monkeypatch: pytest.MonkeyPatch, cli) -> None:
    """A good launch trips both traps: sbatch runs and the proxy is dialled."""
    monkeypatch.setenv("GALYLEO_CONFIG", str(DATA / "site.toml"))
    (Path(world["dir"]) / "trap-check").mkdir()
    traps.sbatch_log.unlink(missing_ok=True)
    cli(["launch", "--no-preflight", "-A", "abc", "-d", world["dir"]])
    assert traps.connections > 0, "the proxy stand-in was never dialled"
    traps.connections = 0
    from galyleo import slurm

    assert slurm.submit(world["file"])[0] == "1" and traps.sbatch_log.exists(), "the sbatch trap is not first on PATH"
    traps.sbatch_log.unlink()


AS_LAUNCH = [c._replace(args="launch" + c.args[len("generate"):]) for c in CASES if c.args.startswith("generate ")]


@pytest.mark.parametrize("case", CASES + AS_LAUNCH, ids=[c.id for c in CASES] + [f"launch-{c.id}" for c in AS_LAUNCH])
def test_rejected(case: Case, world: Dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli,
                  traps: Traps) -> None:
    config_path = str(DATA / "site.toml")
    if case.config:
        config_path = str(tmp_path / "site" / "galyleo.toml")
        os.makedirs(os.path.dirname(config_path))
        Path(config_path).write_text(case.config, encoding="utf-8")
    monkeypatch.setenv("GALYLEO_CONFIG", config_path)
    if "{unreadable}" in case.args and IS_ROOT:
        pytest.skip("root reads mode-000 files; covered as nobody by test_unreadable_as_nobody")
    before = snapshot(tmp_path)
    result = cli(argv_for(case, world))
    check_result(case, result.status, result.out, result.err, config_path)
    assert snapshot(tmp_path) == before
    assert traps.untouched(), "a rejected input reached sbatch or the Satellite proxy"
    if case.id in SUBPROCESS_SAMPLE:
        env = {"HOME": str(tmp_path / "home"), "GALYLEO_CONFIG": config_path}
        proc = run_galyleo(argv_for(case, world), env=env, cwd=str(tmp_path / "home"))
        check_result(case, proc.status, proc.out, proc.err, config_path)
        assert snapshot(tmp_path) == before


UNREADABLE = [c for c in CASES if "{unreadable}" in c.args]


def python_for(user: int) -> str:
    """A Python >= 3.11 (tomllib; jinja2 is not needed to reject input) that USER may run."""
    for candidate in (sys.executable, "/usr/bin/python3", "/usr/local/bin/python3"):
        try:
            proc = subprocess.run([candidate, "-c", "import sys, tomllib; sys.exit(0)"], user=user, group=user,
                                  capture_output=True, timeout=30, check=False, cwd="/")
        except OSError:
            continue
        if proc.returncode == 0:
            return candidate
    pytest.skip(f"no Python >= 3.11 that uid {user} may run")


@pytest.mark.skipif(not IS_ROOT, reason="as a normal user test_rejected covers these in-process")
@pytest.mark.parametrize("case", UNREADABLE, ids=[c.id for c in UNREADABLE])
def test_unreadable_as_nobody(case: Case) -> None:
    """As root every file is readable: run these cases as `nobody` in a world-readable tree."""
    python = python_for(NOBODY)
    base = Path(tempfile.mkdtemp(prefix="galyleo-nobody-"))
    try:
        os.chmod(base, 0o755)
        values = make_world(base)
        config = base / "site.toml"
        config.write_text((DATA / "site.toml").read_text())
        for path in (base / "files", base / "home", Path(values["dir"]), Path(values["file"]), config):
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        os.chown(base / "home", NOBODY, NOBODY)
        before = snapshot(base)
        env = {"HOME": str(base / "home"), "GALYLEO_CONFIG": str(config)}
        proc = run_galyleo(argv_for(case, values), env=env, cwd=str(base / "home"), user=NOBODY,
                           python=python)
        check_result(case, proc.status, proc.out, proc.err, str(config))
        assert snapshot(base) == before
    finally:
        for folder, dirs, _ in os.walk(base):
            for name in dirs:
                os.chmod(os.path.join(folder, name), 0o755)
        shutil.rmtree(base)


def test_messages_come_from_the_errors_table(world: Dict[str, str], monkeypatch: pytest.MonkeyPatch, cli) -> None:
    """The texts the user sees are the ones errors.ACCEPT defines (tests import them)."""
    monkeypatch.setenv("GALYLEO_CONFIG", str(DATA / "site.toml"))
    for argv, key in ((["generate", "-m", "4X"], "memory"), (["generate", "-t", "0"], "time"),
                      (["generate", "-s", "http://x/y"], "sif"), (["generate", "-c", "0"], "count")):
        result = cli(argv)
        assert result.err.rstrip("\n").endswith(ACCEPT[key]), result.err


def test_newline_is_shown_escaped(world: Dict[str, str], monkeypatch: pytest.MonkeyPatch, cli) -> None:
    """A value holding a newline is echoed with the newline escaped, keeping the message one line."""
    monkeypatch.setenv("GALYLEO_CONFIG", str(DATA / "site.toml"))
    result = cli(["generate", "-q", "normal\n#SBATCH --qos=high"])
    assert result.err == "galyleo: error: --qos 'normal\\n#SBATCH --qos=high': expected " + ACCEPT["name"] + "\n"


def test_good_command_line_passes_the_same_checks(world: Dict[str, str], monkeypatch: pytest.MonkeyPatch,
                                                   cli) -> None:
    """The harness itself can tell a good command line from a bad one."""
    monkeypatch.setenv("GALYLEO_CONFIG", str(DATA / "site.toml"))
    result = cli(["generate", "-c", "4", "--conda-yml", world["file"], "-s", "docker://jupyter/base", "--nv"])
    assert result.status == 0 and result.err == "" and result.out.startswith("#!/bin/bash\n")


@pytest.mark.parametrize("command", ["generate", "launch"])
@pytest.mark.parametrize("extra, named", [(["-t", "2:00:01"], "--time-limit '02:00:01'"),
                                          ([], "setting time_limit '03:00:00'")])
def test_time_limit_max_is_refused_like_the_partition_maximum(
        command: str, extra: List[str], named: str, world: Dict[str, str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, cli, traps: Traps) -> None:
    """The site's time_limit_max, whether the user typed the time or the default is above it:
    one line naming which, exit 2, nothing written, nothing submitted."""
    config = tmp_path / "site" / "galyleo.toml"
    config.parent.mkdir()
    config.write_text('time_limit = "03:00:00"\ntime_limit_max = "2:00:00"\n')
    monkeypatch.setenv("GALYLEO_CONFIG", str(config))
    before = snapshot(tmp_path)
    result = cli([command, "-A", "abc", *extra])
    assert (result.status, result.out) == (2, ""), result.err
    assert result.err == f"galyleo: error: {named}: above this site's maximum (time_limit_max 02:00:00)\n"
    assert snapshot(tmp_path) == before and traps.untouched()
    assert cli(["generate", "-A", "abc", "-t", "2:00:00"]).status == 0
