"""Shared fixtures for the tier-1 suite: a test site config, the CLI run in-process
or as a subprocess, a snapshot of a directory tree, and one shellcheck call for
many files, a clock for `--wait` that never really waits. Nothing here needs a cluster.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data"
VENV_BIN = Path(sys.executable).parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


class Result(NamedTuple):
    status: int
    out: str
    err: str

    @property
    def err_lines(self) -> List[str]:
        return self.err.splitlines()


class Clock:
    """time for galyleo.watch: sleep moves the monotonic clock on at once instead of waiting."""

    def __init__(self) -> None:
        self.now = 0.0
        self.strftime = time.strftime

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """`--wait` polls at its real POLL and lets NEVER_SETTLE pass, without a real second passing."""
    fake = Clock()
    monkeypatch.setattr("galyleo.watch.time", fake)
    return fake


@pytest.fixture
def data_dir() -> Path:
    return DATA


@pytest.fixture
def site_toml(tmp_path: Path) -> Callable[..., Path]:
    """Write a site config (TOML text) under tmp_path and return its path."""

    def write(text: str, name: str = "galyleo.toml") -> Path:
        path = tmp_path / "site" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    return write


HERMETIC_PREFIXES = ("GALYLEO_", "SBATCH_", "SALLOC_", "SLURM_")


def hermetic(environ: Dict[str, str]) -> Dict[str, str]:
    """The environment without the variables galyleo (or sbatch) reads as settings."""
    return {k: v for k, v in environ.items() if not k.startswith(HERMETIC_PREFIXES) and k != "XDG_CONFIG_HOME"}


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Drop GALYLEO_*, SBATCH_*, SLURM_* and XDG_CONFIG_HOME from os.environ for this test."""
    for key in set(os.environ) - set(hermetic(dict(os.environ))):
        monkeypatch.delenv(key)


@pytest.fixture
def test_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_env: None) -> Path:
    """HOME is an empty tmp dir; the site config is the valid test one (no warning)."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GALYLEO_CONFIG", str(DATA / "site.toml"))
    monkeypatch.setenv("COLUMNS", "200")
    return home


@pytest.fixture
def cli(capsys: pytest.CaptureFixture) -> Callable[..., Result]:
    """Run galyleo.cli.main(argv) in-process; SystemExit becomes the status."""
    from galyleo import cli as galyleo_cli

    def run(argv: Sequence[str]) -> Result:
        capsys.readouterr()
        try:
            status = galyleo_cli.main(list(argv))
        except SystemExit as exc:
            status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        captured = capsys.readouterr()
        return Result(int(status or 0), captured.out, captured.err)

    return run


def run_galyleo(argv: Sequence[str], env: Optional[Dict[str, str]] = None, cwd: Optional[str] = None,
                python_code: Optional[str] = None, user: Optional[int] = None,
                python: str = sys.executable) -> Result:
    """Run galyleo (or `python -c CODE argv...`) as a real subprocess."""
    full_env = hermetic(dict(os.environ))
    full_env.update(env or {})
    full_env["PYTHONPATH"] = str(ROOT)
    head = [python, "-c", python_code] if python_code else [python, "-m", "galyleo"]
    kwargs = {"user": user, "group": user} if user is not None else {}
    proc = subprocess.run(head + list(argv), capture_output=True, text=True, env=full_env, cwd=cwd,
                          timeout=60, check=False, **kwargs)
    return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture(scope="session")
def subprocess_cli() -> Callable[..., Result]:
    return run_galyleo


def snapshot(root: Path) -> Dict[str, Tuple[int, int, float]]:
    """Every path under root with its mode, size and mtime (to prove nothing was written)."""
    found = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(folder, name)
            info = os.lstat(path)
            found[os.path.relpath(path, root)] = (info.st_mode, info.st_size, info.st_mtime)
    return found


@pytest.fixture
def tree_snapshot() -> Callable[[Path], Dict[str, Tuple[int, int, float]]]:
    return snapshot


def shellcheck(paths: Sequence[Path]) -> Dict[str, List[str]]:
    """Run shellcheck (default severity) once on all paths; findings per path."""
    tool = VENV_BIN / "shellcheck"
    proc = subprocess.run([str(tool), "-f", "json1", *map(str, paths)], capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode in (0, 1), proc.stderr
    findings: Dict[str, List[str]] = {str(p): [] for p in paths}
    for item in json.loads(proc.stdout)["comments"]:
        findings.setdefault(item["file"], []).append(
            f"line {item['line']}: SC{item['code']} ({item['level']}) {item['message']}")
    return findings


def bash_n(path: Path) -> str:
    """`bash -n` on one file: '' when it parses, else bash's message."""
    proc = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True, timeout=30, check=False)
    return "" if proc.returncode == 0 else proc.stderr or f"exit {proc.returncode}"


@pytest.fixture(scope="session")
def shell_checks() -> Tuple[Callable[[Sequence[Path]], Dict[str, List[str]]], Callable[[Path], str]]:
    return shellcheck, bash_n


@pytest.fixture(scope="module")
def cluster():
    """The real local test cluster (tests/harness/up), with the freshly built pyz installed."""
    from cluster import Cluster, harness_env, sat

    found = Cluster(harness_env())
    found.install_pyz()
    sat.configure(route_delay=0, faults={})
    return found


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> Tuple[Path, Path]:
    """A self-signed certificate (and key) for 127.0.0.1: the fake Satellite's."""
    from fakesatellite import make_cert

    return make_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def fake_satellite(tmp_path: Path, tls_cert: Tuple[Path, Path]):  # type: ignore[no-untyped-def]
    """The local fake Satellite over HTTPS (tests/py/fakesatellite.py); its calls also go to
    tmp_path/bin/calls.log, the log of sessionkit.fake_slurm's stubs."""
    from fakesatellite import FakeSatellite

    (tmp_path / "bin").mkdir(exist_ok=True)
    server = FakeSatellite(tmp_path / "satellite", tls=tls_cert, call_log=tmp_path / "bin" / "calls.log")
    yield server
    server.stop()


@pytest.fixture
def home(cluster):
    """An empty home of the test user's for one test (its galyleo files, jobs and aliases only)."""
    return cluster.fresh_home()
