#!/usr/bin/env python3
"""Build dist/galyleo.pyz: one reproducible shiv zipapp for CPython 3.8-3.13.

Stages the pinned pure-Python wheels of build/requirements.txt and galyleo from this
checkout into one site-packages, removes everything that would make the bytes depend
on the build machine (installer paths, console scripts, file modes, C speedups), checks
it (no native code, every Requires-Python admits 3.8-3.13), then runs shiv with
--reproducible, --compile-pyc and SOURCE_DATE_EPOCH from the last git commit.
Usage: build_pyz.py --out dist/galyleo.pyz [--python '/usr/bin/env python3'] [--root DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Dict, List, Optional

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
REQUIREMENTS = HERE / "requirements.txt"
ENTRY_POINT = "galyleo.__main__:zipapp_main"
FAST_START = HERE / "fast_start.py"
# Fixed sizes of the shebang block and of __main__.py, the same in every build (add_fast_start).
PREFIX_SIZE = 256
MAIN_SIZE = 12288
# galyleo's own build backend, pinned (not the venv's) so its metadata files are stable.
BACKEND = "setuptools==80.9.0"
BACKEND_CACHE = HERE / "work" / BACKEND.replace("==", "-")
SUPPORTED = [(3, minor) for minor in range(8, 14)]
# Packages that ship only platform wheels for 3.8: take the wheel, delete the native parts.
STRIP_NATIVE = {"markupsafe": ["_speedups.c", "_speedups.pyi", "_speedups.*.so"]}
PIP_TARGET = ["--no-deps", "--no-compile", "--only-binary=:all:", "--disable-pip-version-check", "--quiet"]
PURE_TAGS = ["--platform", "any", "--implementation", "py", "--python-version", "3.8", "--abi", "none"]
# Fixed so the same wheel (hence the same bytes) is chosen on any build machine.
NATIVE_TAGS = ["--platform", "manylinux2014_x86_64", "--implementation", "cp",
               "--python-version", "3.8", "--abi", "cp38"]


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Build the galyleo zipapp with shiv.")
    parser.add_argument("--out", required=True, type=Path, help="where to write the .pyz")
    parser.add_argument("--python", default="/usr/bin/env python3",
                        help="interpreter for the shebang line (default: %(default)s)")
    parser.add_argument("--root", default=None,
                        help="where users' copies unpack (shiv --root, default ~/.shiv; $SHIV_ROOT overrides)")
    return parser.parse_args(argv)


def source_date_epoch() -> str:
    """$SOURCE_DATE_EPOCH, else the last commit's time, so equal inputs give equal bytes."""
    if os.environ.get("SOURCE_DATE_EPOCH"):
        return os.environ["SOURCE_DATE_EPOCH"]
    out = subprocess.run(["git", "-C", str(REPO), "log", "-1", "--format=%ct"],
                         capture_output=True, text=True, check=False)
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "315554400"


def read_pins(path: Path) -> List[str]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    pins = [line for line in lines if line]
    for pin in pins:
        if "==" not in pin:
            sys.exit(f"build_pyz: {path}: {pin!r} is not an exact pin (name==version)")
    return pins


def pip(args: List[str], env: Dict[str, str]) -> None:
    subprocess.run([sys.executable, "-m", "pip", "install", *args], check=True, env=env)


def install_dependencies(site: Path, env: Dict[str, str]) -> None:
    pins = read_pins(REQUIREMENTS)
    native = [p for p in pins if p.split("==")[0].lower() in STRIP_NATIVE]
    pure = [p for p in pins if p not in native]
    pip(["--target", str(site), *PIP_TARGET, *PURE_TAGS, *pure], env)
    if native:
        pip(["--target", str(site), *PIP_TARGET, *NATIVE_TAGS, *native], env)


def build_backend(env: Dict[str, str]) -> Path:
    """The pinned setuptools, installed once under build/work/ (make clean removes it)."""
    if not BACKEND_CACHE.is_dir():
        BACKEND_CACHE.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=BACKEND_CACHE.parent) as tmp:
            pip(["--target", tmp + "/t", *PIP_TARGET, BACKEND], env)
            try:
                os.rename(tmp + "/t", BACKEND_CACHE)  # atomic: concurrent builds see all or nothing
            except OSError:
                pass  # another build got there first
    return BACKEND_CACHE


def install_galyleo(site: Path, scratch: Path, env: Dict[str, str]) -> None:
    """Install from a copy of the checkout, so the build leaves no build/ or egg-info behind."""
    env = {**env, "PYTHONPATH": str(build_backend(env))}
    src = scratch / "src"
    shutil.copytree(REPO / "galyleo", src / "galyleo", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy2(REPO / "pyproject.toml", src / "pyproject.toml")
    readme = REPO / "README.md"
    (src / "README.md").write_bytes(readme.read_bytes() if readme.exists() else b"")
    pip(["--target", str(site), "--no-deps", "--no-compile", "--no-build-isolation", "--quiet",
         "--disable-pip-version-check", str(src)], env)


def strip_native(site: Path) -> None:
    for package, patterns in STRIP_NATIVE.items():
        for pattern in patterns:
            for path in (site / package).glob(pattern):
                path.unlink()


def in_tree(site: Path, name: str) -> bool:
    path = os.path.normpath(site / name)
    return path.startswith(str(site) + os.sep) and os.path.isfile(path)


def normalise(site: Path) -> None:
    """Drop machine-specific files, fix RECORDs and modes: the tree depends on the pins only."""
    shutil.rmtree(site / "bin", ignore_errors=True)  # console scripts carry this venv's path
    for junk in list(site.glob("*.dist-info/direct_url.json")) + list(site.rglob("__pycache__")):
        shutil.rmtree(junk) if junk.is_dir() else junk.unlink()
    strip_native(site)
    for record in site.glob("*.dist-info/RECORD"):
        rows = record.read_text().splitlines(keepends=True)
        kept = [row for row in rows if in_tree(site, row.split(",", 1)[0])]
        record.write_text("".join(kept))
    for path in [site, *site.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def check(site: Path) -> None:
    """Refuse native code and any dependency that does not admit every supported Python."""
    try:
        from packaging.specifiers import SpecifierSet
    except ImportError:  # pip always carries a copy
        from pip._vendor.packaging.specifiers import SpecifierSet  # type: ignore[assignment]

    native = [str(p.relative_to(site)) for p in site.rglob("*") if p.suffix in (".so", ".pyd", ".dylib")]
    if native:
        sys.exit(f"build_pyz: native code in the bundle: {', '.join(native)}")
    for metadata in sorted(site.glob("*.dist-info/METADATA")):
        spec = next((line.split(":", 1)[1].strip() for line in metadata.read_text().splitlines()
                     if line.startswith("Requires-Python:")), "")
        bad = [f"{major}.{minor}" for major, minor in SUPPORTED if f"{major}.{minor}" not in SpecifierSet(spec)]
        if bad:
            sys.exit(f"build_pyz: {metadata.parent.name}: Requires-Python {spec!r} excludes {', '.join(bad)}")


def run_shiv(site: Path, out: Path, python: str, root: Optional[str], env: Dict[str, str]) -> None:
    """shiv without --compile-pyc: galyleo's first start compiles (shivcache), for each
    interpreter and without the modules no galyleo command imports."""
    args = [sys.executable, "-m", "shiv", "--site-packages", str(site), "--reproducible",
            "-e", ENTRY_POINT, "-p", python, "-o", str(out)]
    if root:
        args += ["--root", root]
    subprocess.run(args, check=True, env=env, stdout=subprocess.DEVNULL)


def fast_start_source(environment: Dict[str, object]) -> str:
    """build/fast_start.py with this build's id, root and entry point filled in."""
    text = FAST_START.read_text()
    for line, value in (('BUILD_ID = ""', environment["build_id"]), ("ROOT = None", environment["root"]),
                        ('ENTRY = ""', environment["entry_point"])):
        if text.count(line) != 1:
            sys.exit(f"build_pyz: {FAST_START}: expected one line starting {line!r}")
        text = text.replace(line, f"{line.split(' = ')[0]} = {value!r}")
    return text


def padded(text: str, size: int, what: str) -> bytes:
    """`text` grown to exactly `size` bytes by one trailing comment (or refused if larger)."""
    data = text.encode("ascii")
    room = size - len(data) - 2
    if room < 0:
        sys.exit(f"build_pyz: {what} is {len(data)} bytes, over the fixed {size}: raise the limit in build_pyz.py")
    return data + b"#" + b" " * room + b"\n"


def add_fast_start(pyz: Path) -> None:
    """Replace shiv's __main__.py with build/fast_start.py, keeping every other entry
    (and each entry's date, mode and compression) as shiv wrote it: still reproducible.
    The shebang is padded to PREFIX_SIZE and __main__.py, stored first and uncompressed, to
    MAIN_SIZE: every build has its __main__.py at the same offset and length, so a Python that
    read one build's file list and then opens the path again (zipimport does) reads one whole
    __main__.py, the old or the new, however the pyz is swapped under it."""
    data = pyz.read_bytes()
    shebang = data[: data.index(b"\n")]
    with zipfile.ZipFile(pyz) as archive:
        environment = json.loads(archive.read("environment.json"))
        entries = [(info, archive.read(info)) for info in archive.infolist() if info.filename != "__main__.py"]
        main_info = archive.getinfo("__main__.py")
    main_info.compress_type = zipfile.ZIP_STORED
    main = padded(fast_start_source(environment), MAIN_SIZE, "__main__.py")
    with open(pyz, "wb") as handle:
        handle.write(shebang + b"\n" + padded("", PREFIX_SIZE - len(shebang) - 1, "the shebang line"))
        with zipfile.ZipFile(handle, "w") as archive:
            for info, payload in [(main_info, main), *entries]:
                archive.writestr(info, payload)


def build(out: Path, python: str, root: Optional[str]) -> str:
    """Build into a temporary file beside `out`, then rename: running copies never see half a file."""
    env = {**os.environ, "SOURCE_DATE_EPOCH": source_date_epoch(), "PYTHONHASHSEED": "0"}
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="galyleo-pyz-") as tmp:
        scratch = Path(tmp)
        site = scratch / "site-packages"
        install_dependencies(site, env)
        shutil.rmtree(site / "bin", ignore_errors=True)  # before galyleo adds its own
        install_galyleo(site, scratch, env)
        normalise(site)
        check(site)
        partial = out.with_name(f".{out.name}.partial")
        run_shiv(site, partial, python, root, env)
        add_fast_start(partial)
        os.replace(partial, out)
    return hashlib.sha256(out.read_bytes()).hexdigest()


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    digest = build(args.out, args.python, args.root)
    print(f"{args.out}: {args.out.stat().st_size} bytes, sha256 {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
