"""Tier (d): build the real zipapp and run it on every CPython 3.8-3.13 present.

Like shiv's test_hello_world: build with build/build_pyz.py into a temporary directory,
then run the pyz as users do, each interpreter with a fresh HOME and SHIV_ROOT.
Also: reproducible bytes, no native code, custom shebang/root, stale-build cleanup.
"""

from __future__ import annotations

import fcntl
import glob
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List, Optional

import pytest

from galyleo import __version__, shivcache

pytestmark = pytest.mark.pyz

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "build" / "build_pyz.py"
NOBODY = 65534
VERSIONS = ["3.8", "3.9", "3.10", "3.11", "3.12", "3.13"]
GENERATE = ["generate", "-A", "abc123", "-p", "debug", "-c", "2", "-m", "4", "-t", "00:30:00",
            "-e", "cpu/0.17.3b,gcc/10.2.0,py-jupyterlab/3.2.1"]
PROBE = "import markupsafe, requests, jinja2; print(markupsafe.escape.__module__, requests.__version__)"
# The pyz's entry (here running --version), then a command's first use of the HTTPS stack.
ENTRY_THEN_SATELLITE = ("import sys; from galyleo.__main__ import zipapp_main; sys.argv[1:] = ['--version']; "
                        "zipapp_main(); import galyleo.satellite")


def interpreter(version: str) -> Optional[str]:
    """A real pyenv interpreter (never the shim), or None when this machine lacks it."""
    found = sorted(glob.glob(f"/root/.pyenv/versions/{version}.*/bin/python{version}"))
    return found[-1] if found else None


PRESENT = {v: interpreter(v) for v in VERSIONS}


def snapshot(dest: Path) -> Path:
    """A copy of the sources the build reads: others' edits or commits mid-test cannot change its bytes."""
    shutil.copytree(REPO / "galyleo", dest / "galyleo", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "build/build_pyz.py", "build/fast_start.py", "build/requirements.txt"):
        if (REPO / name).exists():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dest / name)
    (REPO / "build" / "work").mkdir(exist_ok=True)
    (dest / "build" / "work").symlink_to(REPO / "build" / "work")  # the pinned build backend, cached
    return dest / "build" / "build_pyz.py"


@pytest.fixture(scope="module")
def builder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return snapshot(tmp_path_factory.mktemp("src"))


def build(script: Path, out: Path, *extra: str) -> Path:
    env = {**os.environ, "SOURCE_DATE_EPOCH": "1700000000"}  # the snapshot has no git history
    proc = subprocess.run([sys.executable, str(script), "--out", str(out), *extra],
                          capture_output=True, text=True, cwd=script.parent.parent, env=env)
    assert proc.returncode == 0, f"build failed:\n{proc.stdout}\n{proc.stderr}"
    return out


def build_id(pyz: Path) -> str:
    with zipfile.ZipFile(pyz) as archive:
        return str(json.loads(archive.read("environment.json"))["build_id"])


def version_line(build: str) -> str:
    """What `--version` prints in a pyz: the version and the build (shiv's content hash)."""
    return f"galyleo {__version__} (build {build[-12:]})\n"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def clean_env(home: Path, shiv_root: Optional[Path]) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SHIV_", "GALYLEO_")) and k not in ("SOURCE_DATE_EPOCH", "PYTHONPATH")}
    env["HOME"] = str(home)
    if shiv_root is not None:
        env["SHIV_ROOT"] = str(shiv_root)
    return env


def run(argv: List[str], env: Dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)


def fresh_home(base: Path, name: str) -> Path:
    home = base / name / "home"
    home.mkdir(parents=True)
    return home


@pytest.fixture(scope="module")
def two_builds(builder: Path, tmp_path_factory: pytest.TempPathFactory) -> List[Path]:
    """The same sources built twice, concurrently (half the wall time)."""
    outs = [tmp_path_factory.mktemp(name) / "galyleo.pyz" for name in ("pyz", "again")]
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(lambda out: build(builder, out), outs))


@pytest.fixture(scope="module")
def pyz(two_builds: List[Path]) -> Path:
    return two_builds[0]


@pytest.fixture(scope="module")
def runs(pyz: Path, tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Dict[str, object]]:
    """--version, generate and an import probe under each present interpreter, in parallel."""
    base = tmp_path_factory.mktemp("runs")
    notebooks = base / "notebooks"  # one -d and one output_dir for all, so scripts may be byte-compared
    notebooks.mkdir()
    config = base / "galyleo.toml"  # also exercises tomli (3.8-3.10) against tomllib (3.11+)
    config.write_text(f'output_dir = "{base / "out"}"\nshiv_keep = 2\n')

    def one(version: str) -> Dict[str, object]:
        python = PRESENT[version]
        assert python
        home = fresh_home(base, version)
        env = {**clean_env(home, home / "shiv"), "GALYLEO_CONFIG": str(config)}
        cold = run([python, str(pyz), "--version"], env)
        gen = run([python, str(pyz), *GENERATE, "-d", str(notebooks)], env)
        probe = run([python, str(pyz), "-c", PROBE], {**env, "SHIV_INTERPRETER": "1"})
        return {"version": cold, "generate": gen, "probe": probe, "root": home / "shiv"}

    present = [v for v in VERSIONS if PRESENT[v]]
    with ThreadPoolExecutor(max_workers=3) as pool:
        return dict(zip(present, pool.map(one, present)))


def needs(version: str) -> None:
    if not PRESENT[version]:
        pytest.skip(f"CPython {version} is not installed under /root/.pyenv/versions")


def build_dir(root: Path) -> Path:
    (found,) = [p for p in root.iterdir() if p.is_dir() and shivcache.split_build(p.name) == "galyleo.pyz"]
    return found


def test_build_is_reproducible(two_builds: List[Path]) -> None:
    assert sha256(two_builds[0]) == sha256(two_builds[1])


def test_epoch_defaults_to_last_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    sys.path.insert(0, str(BUILD.parent))
    try:
        import build_pyz
    finally:
        sys.path.remove(str(BUILD.parent))
    last = subprocess.run(["git", "-C", str(REPO), "log", "-1", "--format=%ct"], capture_output=True, text=True)
    assert build_pyz.source_date_epoch() == last.stdout.strip()


def test_bundle_is_pure_python_with_package_data(pyz: Path) -> None:
    names = zipfile.ZipFile(pyz).namelist()
    assert [n for n in names if n.endswith((".so", ".pyd", ".dylib"))] == []
    assert [n for n in names if "_speedups" in n] == []
    assert "site-packages/galyleo/snippets/job.sh.j2" in names
    for package in ("jinja2", "markupsafe", "requests", "urllib3", "idna", "charset_normalizer", "certifi", "tomli"):
        assert f"site-packages/{package}/__init__.py" in names
    assert not [n for n in names if n.startswith("site-packages/bin/") or n.endswith(".pyc")]


def test_main_is_the_fast_start_of_this_build(pyz: Path) -> None:
    with zipfile.ZipFile(pyz) as archive:
        environment = json.loads(archive.read("environment.json"))
        main = archive.read("__main__.py").decode()
        names = archive.namelist()
    assert environment["compile_pyc"] is False, "galyleo's first start compiles, not shiv's"
    assert f"BUILD_ID = {environment['build_id']!r}" in main
    assert "ENTRY = 'galyleo.__main__:zipapp_main'" in main and "ROOT = None" in main
    assert "_bootstrap/__init__.py" in names, "shiv's bootstrap must stay for the first start"
    with zipfile.ZipFile(pyz) as archive:  # the layout the upgrade race relies on (build/README.md)
        first = archive.infolist()[0]
    assert (first.filename, first.compress_type, first.file_size) == ("__main__.py", zipfile.ZIP_STORED, 12288)
    assert first.header_offset == 256 and pyz.read_bytes()[256:260] == b"PK\x03\x04"


# Every galyleo module and what the launch path does with requests, in one interpreter.
ALL_PATHS = """
import importlib, pkgutil, re, sys
import galyleo, galyleo.shivcache, galyleo.startup
galyleo.startup.compile_https_first(galyleo.shivcache.__file__)  # as the pyz's entry does
import jinja2, requests
for info in pkgutil.iter_modules(galyleo.__path__):
    importlib.import_module("galyleo." + info.name)
requests.Session().mount("https://", requests.adapters.HTTPAdapter())
jinja2.Template("{{ x }}").render(x=1)
files = [getattr(m, "__file__", None) or "" for m in list(sys.modules.values())]
print(",".join(f for f in files if re.search(galyleo.shivcache.NOT_COMPILED, f)) or "none")
"""


def test_files_left_uncompiled_are_imported_by_nothing(pyz: Path, tmp_path: Path) -> None:
    python = next((p for p in reversed(list(PRESENT.values())) if p), None) or sys.executable
    env = clean_env(fresh_home(tmp_path, "h"), tmp_path / "shiv")
    assert run([python, str(pyz), "--version"], env).returncode == 0  # first start: compiles
    proc = run([python, str(pyz), "-c", ALL_PATHS], {**env, "SHIV_INTERPRETER": "1"})
    assert (proc.returncode, proc.stdout.strip()) == (0, "none"), proc.stderr
    site = build_dir(tmp_path / "shiv") / "site-packages"
    tag = run([python, "-c", "import sys; print(sys.implementation.cache_tag)"], env).stdout.strip()
    assert not list((site / "idna" / "__pycache__").glob(f"uts46data.{tag}.pyc"))
    assert list((site / "idna" / "__pycache__").glob(f"core.{tag}.pyc"))
    assert list((site / "urllib3" / "contrib" / "__pycache__").glob(f"socks.{tag}.pyc"))


@pytest.mark.parametrize("version", VERSIONS)
def test_runs_on(version: str, runs: Dict[str, Dict[str, object]], pyz: Path) -> None:
    needs(version)
    result = runs[version]
    cold = result["version"]
    assert isinstance(cold, subprocess.CompletedProcess)
    assert cold.returncode == 0 and cold.stdout == version_line(build_id(pyz)), cold.stderr
    gen = result["generate"]
    assert isinstance(gen, subprocess.CompletedProcess)
    assert gen.returncode == 0, gen.stderr
    assert gen.stdout.startswith("#!/bin/bash\n")
    probe = result["probe"]
    assert isinstance(probe, subprocess.CompletedProcess)
    assert probe.stdout.split()[0] == "markupsafe._native", probe.stderr  # pure fallback, not _speedups
    root = result["root"]
    assert isinstance(root, Path)
    tag = "cpython-" + version.replace(".", "")
    site = build_dir(root) / "site-packages"
    assert (site / "jinja2" / "__pycache__" / f"environment.{tag}.pyc").is_file()
    assert (build_dir(root) / f"{shivcache.MARKER}{tag}").is_file()


def test_generated_script_is_identical_everywhere(runs: Dict[str, Dict[str, object]]) -> None:
    if len(runs) < 2:
        pytest.skip("fewer than two interpreters present")
    scripts = {v: r["generate"].stdout for v, r in runs.items()}  # type: ignore[attr-defined]
    first = next(iter(scripts.values()))
    assert first.startswith("#!/bin/bash\n")
    assert {v: s == first for v, s in scripts.items()} == {v: True for v in scripts}


def test_one_root_gets_bytecode_for_each_interpreter(pyz: Path, tmp_path: Path) -> None:
    """Each interpreter compiles on its first start (its own marker), the HTTPS stack on first use."""
    needs("3.8")
    needs("3.13")
    env = clean_env(fresh_home(tmp_path, "h"), tmp_path / "shiv")
    for version in ("3.8", "3.13"):
        tag = "cpython-" + version.replace(".", "")
        assert run([str(PRESENT[version]), str(pyz), "--version"], env).returncode == 0
        site = build_dir(tmp_path / "shiv") / "site-packages"
        assert (site / "jinja2" / "__pycache__" / f"environment.{tag}.pyc").is_file()
        # The HTTPS stack waits for the first command that uses it (here: importing galyleo.satellite).
        sessions_pyc = site / "requests" / "__pycache__" / f"sessions.{tag}.pyc"
        assert not sessions_pyc.exists()
        probe = run([str(PRESENT[version]), str(pyz), "-c", ENTRY_THEN_SATELLITE],
                    {**env, "SHIV_INTERPRETER": "1"})
        assert probe.returncode == 0, probe.stderr
        assert sessions_pyc.is_file() and (site.parent / f"{shivcache.NETWORK_MARKER}{tag}").is_file()


def test_importing_satellite_leaves_the_shiv_cache_alone(pyz: Path, tmp_path: Path) -> None:
    """Only the pyz's entry (the start-up layer) compiles the HTTPS stack, not a domain module's import."""
    python = next((p for p in reversed(list(PRESENT.values())) if p), None) or sys.executable
    env = {**clean_env(fresh_home(tmp_path, "h"), tmp_path / "shiv"), "PYTHONDONTWRITEBYTECODE": "1"}
    assert run([python, str(pyz), "--version"], env).returncode == 0  # first start: all but the HTTPS stack
    site = build_dir(tmp_path / "shiv") / "site-packages"
    tag = run([python, "-c", "import sys; print(sys.implementation.cache_tag)"], env).stdout.strip()
    sessions_pyc = site / "requests" / "__pycache__" / f"sessions.{tag}.pyc"
    network_marker = site.parent / f"{shivcache.NETWORK_MARKER}{tag}"
    plain = run([python, str(pyz), "-c", "import galyleo.satellite"], {**env, "SHIV_INTERPRETER": "1"})
    assert plain.returncode == 0, plain.stderr
    assert not sessions_pyc.exists() and not network_marker.exists()
    entry = run([python, str(pyz), "-c", ENTRY_THEN_SATELLITE], {**env, "SHIV_INTERPRETER": "1"})
    assert (entry.returncode, entry.stdout) == (0, version_line(build_id(pyz))), entry.stderr
    assert sessions_pyc.is_file() and network_marker.is_file()


def fake_build(root: Path, name: str, seed: str, age: int) -> Path:
    """A build directory shaped like shiv's, with its lock file, `age` hours old."""
    path = root / f"{name}_{hashlib.sha256(seed.encode()).hexdigest()}"
    (path / "site-packages" / "galyleo").mkdir(parents=True)
    (root / f".{path.name}_lock").touch()
    stamp = time.time() - age * 3600
    os.utime(path, (stamp, stamp))
    return path


def test_first_start_removes_stale_builds_only(pyz: Path, tmp_path: Path) -> None:
    root = tmp_path / "shiv"
    root.mkdir()
    old = [fake_build(root, "galyleo.pyz", f"old{i}", age=10 - i) for i in range(4)]  # old[3] newest
    in_use = fake_build(root, "galyleo.pyz", "in-use", age=20)
    foreign = fake_build(root, "other.pyz", "foreign", age=30)
    env = clean_env(fresh_home(tmp_path, "h"), root)
    python = next(p for p in PRESENT.values() if p) if any(PRESENT.values()) else sys.executable
    with open(root / f".{in_use.name}_lock") as held:
        fcntl.flock(held, fcntl.LOCK_SH)  # as a running galyleo of that build does
        assert run([python, str(pyz), "--version"], env).returncode == 0
    assert [p.exists() for p in old] == [False, False, True, True]  # keeps the newest shiv_keep=2
    assert [(root / f".{p.name}_lock").exists() for p in old] == [False, False, True, True], "locks go too"
    assert (root / f".{in_use.name}_lock").exists()
    assert in_use.exists() and foreign.exists()
    current = [p for p in root.iterdir() if p.is_dir() and p not in [*old, in_use, foreign]]
    assert len(current) == 1 and (current[0] / "site-packages" / "galyleo" / "cli.py").is_file()
    late = fake_build(root, "galyleo.pyz", "late", age=40)
    assert run([python, str(pyz), "--version"], env).returncode == 0
    assert late.exists()  # warm starts never scan the root


def test_custom_shebang_and_root(builder: Path, tmp_path: Path) -> None:
    python = "/usr/bin/python3"
    if not os.access(python, os.X_OK):
        pytest.skip(f"{python} is absent")
    out = build(builder, tmp_path / "galyleo.pyz", "--python", python, "--root", "~/.cache/galyleo")
    assert out.read_bytes().startswith(f"#!{python}\n".encode())
    home = fresh_home(tmp_path, "h")
    for _ in ("first start (shiv)", "warm start (galyleo's fast start)"):
        proc = run([str(out), "--version"], clean_env(home, None))
        assert (proc.returncode, proc.stdout) == (0, version_line(build_id(out))), proc.stderr
        assert build_dir(home / ".cache" / "galyleo").is_dir()
        assert not (home / ".shiv").exists()


def test_fast_paths_skip_heavy_imports(pyz: Path, tmp_path: Path) -> None:
    python = next((p for p in reversed(list(PRESENT.values())) if p), None) or sys.executable
    env = clean_env(fresh_home(tmp_path, "h"), tmp_path / "shiv")
    notebooks = tmp_path / "nb"
    notebooks.mkdir()

    def imported(*args: str) -> str:
        proc = run([python, "-X", "importtime", str(pyz), *args], env)
        assert proc.returncode == 0, proc.stderr
        return proc.stderr

    cold = imported("--version")  # unpack first: the cold start compiles, then measure warm
    assert " _bootstrap" in cold, "the first start is shiv's own"
    warm = imported("--version")
    assert " jinja2" not in warm
    assert " _bootstrap" not in warm and " zipfile" not in warm, "a warm start must skip shiv's bootstrap"
    log = imported(*GENERATE, "-d", str(notebooks))
    assert " jinja2" in log and " requests" not in log and " _bootstrap" not in log
    forced = run([python, "-X", "importtime", str(pyz), "--version"], {**env, "SHIV_FORCE_EXTRACT": "1"})
    assert forced.returncode == 0 and " _bootstrap" in forced.stderr, "SHIV_* settings go to shiv"


def test_module_runs_from_checkout() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GALYLEO_")}
    proc = subprocess.run([sys.executable, "-m", "galyleo", "--version"], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=60)
    assert (proc.returncode, proc.stdout) == (0, f"galyleo {__version__}\n"), proc.stderr


def test_build_layout_parsing(tmp_path: Path) -> None:
    build_id = "a" * 64
    file = tmp_path / f"galyleo.pyz_{build_id}" / "site-packages" / "galyleo" / "shivcache.py"
    expected = shivcache.Build(str(tmp_path), "galyleo.pyz", f"galyleo.pyz_{build_id}")
    assert shivcache.current_build(str(file)) == expected
    assert shivcache.current_build(str(REPO / "galyleo" / "shivcache.py")) is None
    assert shivcache.split_build(f"galyleo.pyz_{build_id}.tmp") is None
    assert shivcache.split_build("galyleo.pyz_" + "A" * 64) is None


def test_unpacked_build_is_private_and_never_run_when_others_can_write(pyz: Path, tmp_path: Path) -> None:
    """Under umask 000 shiv's unpack is still private; a build others can write to (a `.pth`
    dropped in it would run) makes the fast start stop with one line, running nothing from it."""
    env = clean_env(fresh_home(tmp_path, "h"), tmp_path / "shiv")
    first = subprocess.run([sys.executable, str(pyz), "--version"], capture_output=True, text=True, env=env,
                           timeout=120, preexec_fn=lambda: os.umask(0))
    assert first.returncode == 0, first.stderr
    build = build_dir(tmp_path / "shiv")
    for folder in (tmp_path / "shiv", build, build / "site-packages"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    dropped = tmp_path / "pth-ran"
    (build / "site-packages" / "evil.pth").write_text(f"import os; open({str(dropped)!r}, 'w')\n")
    changes = [(build / "site-packages", "mode"), (build, "mode")] + ([(build, "owner")] if os.getuid() == 0 else [])
    for folder, change in changes:
        if change == "mode":
            folder.chmod(0o777)
        else:
            os.chown(folder, 65534, 65534)
        done = run([sys.executable, str(pyz), "--version"], env)
        assert done.returncode == 1 and done.stdout == "", done
        assert done.stderr.startswith(f"galyleo: error: {folder}: writable by others or not yours"), done.stderr
        assert not dropped.exists(), "the .pth ran"
        folder.chmod(0o700)
        os.chown(folder, os.getuid(), os.getgid())
    (build / "site-packages" / "evil.pth").unlink()
    assert run([sys.executable, str(pyz), "--version"], env).returncode == 0


@pytest.fixture(scope="module")
def other_pyz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another build of the same version: one comment more in galyleo, so another content hash."""
    script = snapshot(tmp_path_factory.mktemp("src-other"))
    init = script.parent.parent / "galyleo" / "__init__.py"
    init.write_text(init.read_text() + "# another build\n")
    return build(script, tmp_path_factory.mktemp("other") / "galyleo.pyz")


def test_version_names_the_build(pyz: Path, other_pyz: Path, tmp_path: Path) -> None:
    env = clean_env(fresh_home(tmp_path, "h"), tmp_path / "shiv")
    lines = [run([sys.executable, str(p), "--version"], env).stdout for p in (pyz, other_pyz)]
    assert lines == [version_line(build_id(pyz)), version_line(build_id(other_pyz))]
    assert lines[0] != lines[1]


@pytest.mark.parametrize("version", ["2.7", "3.6", "3.7"])
def test_old_python_gets_one_line(version: str, pyz: Path, tmp_path: Path) -> None:
    python = interpreter(version)
    if not python:
        pytest.skip(f"CPython {version} is not installed under /root/.pyenv/versions")
    proc = run([python, str(pyz), "list"], clean_env(fresh_home(tmp_path, "h"), tmp_path / "shiv"))
    assert (proc.returncode, proc.stdout) == (2, ""), proc.stderr
    assert proc.stderr.startswith("galyleo: error: needs Python 3.8 or later") and proc.stderr.count("\n") == 1
    assert f"is Python {version}:" in proc.stderr
    assert not (tmp_path / "shiv").exists(), "nothing unpacked"


def install_renamed(source: Path, target: Path) -> None:
    """The documented upgrade: a full copy under a temporary name, then one rename."""
    temporary = target.with_name(f".{target.name}.new")
    shutil.copyfile(source, temporary)
    temporary.chmod(0o755)
    os.replace(temporary, target)


def install_symlinked(source: Path, target: Path) -> None:
    """The other documented upgrade: versioned files, one symlink switched by a rename."""
    temporary = target.with_name(f".{target.name}.new")
    temporary.symlink_to(source.name)
    os.replace(temporary, target)


@pytest.mark.parametrize("install", [install_renamed, install_symlinked], ids=["rename", "symlink"])
def test_upgrade_under_load_runs_one_build_or_the_other(install, pyz: Path, other_pyz: Path, tmp_path: Path) -> None:
    """Four loops run the installed pyz (first starts and warm ones) while the two builds are
    swapped under them, back and forth, until 200 runs are done: every run must be one build."""
    apps = tmp_path / "apps"
    apps.mkdir()
    (apps / "galyleo.toml").write_text("")
    builds = [apps / "galyleo-a.pyz", apps / "galyleo-b.pyz"]
    for source, copy in zip((pyz, other_pyz), builds):
        shutil.copyfile(source, copy)
        copy.chmod(0o755)
    target = apps / "galyleo.pyz"
    install(builds[0], target)
    env = clean_env(fresh_home(tmp_path, "h"), tmp_path / "shiv")
    commands = [["--version"], [*GENERATE, "-d", str(tmp_path)]]
    results: List[subprocess.CompletedProcess] = []
    done = threading.Event()

    def loop() -> None:
        turn = 0
        while not done.is_set():
            results.append(run([str(target), *commands[turn % 2]], env))
            turn += 1

    runners = [threading.Thread(target=loop) for _ in range(4)]
    for runner in runners:
        runner.start()
    swaps = 0
    while len(results) < 200:
        swaps += 1
        install(builds[swaps % 2], target)
        time.sleep(0.01)
    done.set()
    for runner in runners:
        runner.join()
    failed = [(r.returncode, r.stderr) for r in results if r.returncode != 0 or r.stderr]
    assert failed == []
    versions = {r.stdout for r in results if r.args[1:] == ["--version"]}
    assert versions == {version_line(build_id(pyz)), version_line(build_id(other_pyz))}
    assert all(r.stdout.startswith("#!/bin/bash\n") for r in results if r.args[1:] != ["--version"])


@pytest.mark.skipif(os.getuid() != 0 or not os.access("/usr/bin/python3", os.X_OK),
                    reason="needs root (to run as another user) and /usr/bin/python3")
def test_shared_pre_unpacked_copy(pyz: Path, other_pyz: Path) -> None:
    """A site's shared root: unpacked by the site (private, as shiv makes it), another user gets
    one line naming the fix; after `chmod -R a+rX` it runs; a build not unpacked there yet is
    one line too, never a PermissionError traceback."""
    base = Path(tempfile.mkdtemp(prefix="galyleo-shared-"))
    try:
        base.chmod(0o755)
        apps, shared, home = base / "apps", base / "unpacked", base / "home"
        apps.mkdir()
        home.mkdir()
        home.chmod(0o777)
        for source, name in ((pyz, "galyleo"), (other_pyz, "next")):
            shutil.copyfile(source, apps / name)
            (apps / name).chmod(0o755)
        (apps / "galyleo.toml").write_text("")
        site_env = clean_env(Path("/root"), shared)
        assert run(["/usr/bin/python3", str(apps / "galyleo"), "--version"], site_env).returncode == 0
        user_env = clean_env(home, shared)

        def as_nobody(name: str) -> subprocess.CompletedProcess:
            return subprocess.run(["/usr/bin/python3", str(apps / name), "--version"], capture_output=True, text=True,
                                  env=user_env, timeout=120, user=NOBODY, group=NOBODY)

        private = as_nobody("galyleo")
        assert (private.returncode, private.stdout) == (1, "")
        assert private.stderr == (f"galyleo: error: {shared}: not readable by you (mode 0700): its owner must run "
                                  "chmod -R a+rX on it (a shared copy), or set SHIV_ROOT=~/.shiv to unpack your own\n")
        subprocess.run(["chmod", "-R", "a+rX", str(shared)], check=True)
        shared_run = as_nobody("galyleo")
        assert (shared_run.returncode, shared_run.stdout, shared_run.stderr) == (0, version_line(build_id(pyz)), "")
        missing = as_nobody("next")
        assert (missing.returncode, missing.stdout) == (1, "")
        assert missing.stderr.startswith(f"galyleo: error: {shared}: this build is not unpacked there") and \
            missing.stderr.count("\n") == 1, missing.stderr
    finally:
        subprocess.run(["rm", "-rf", str(base)], check=False)
