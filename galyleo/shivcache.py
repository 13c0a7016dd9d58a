"""Housekeeping for the zipapp's unpacked copies: bytecode per interpreter, stale builds.

Why: shiv unpacks a pyz into `<root>/<pyz name>_<build id>/site-packages` (root: ~/.shiv,
the build's --root, or $SHIV_ROOT) on first start and never removes old builds, so on
a cluster every upgrade would leave megabytes in each user's quota-limited home. And
with PYTHONDONTWRITEBYTECODE set, shiv's one-time compile serves only the interpreter
that happened to unpack, while every other one would recompile on every start.
Input: this package's path inside the unpacked build. Output: files on disk, nothing else.

Every start (the hot path: one open, one flock, one stat): take a shared flock on the
build's own shiv lock file `<root>/.<name>_<build id>_lock` for the life of the process
(it marks the build as in use), and look for this interpreter's marker file.
Without it (the build was just unpacked, or an interpreter's first start): compile
bytecode for this interpreter, remove this program's older builds (same pyz name,
64-hex build id, a galyleo package inside) beyond the newest `keep`, and write the marker.
A build is removed only while holding shiv's exclusive lock on it, so neither a running
galyleo nor a shiv unpacking it can lose its files.
"""

from __future__ import annotations

import fcntl
import os
import sys

from galyleo import TYPE_CHECKING, privatecache

if TYPE_CHECKING:
    from typing import Callable, List, Optional, Sequence

DEFAULT_KEEP = 2
MARKER = ".galyleo-bytecode-"
NETWORK_MARKER = ".galyleo-bytecode-network-"
# The HTTPS stack (half the bundle's source) is compiled when a command first imports it
# (compile_network, from startup.compile_https_first), not on the first start: `generate`, `list`
# and `help` never import it.
NETWORK_PACKAGES = ("requests", "urllib3", "idna", "charset_normalizer", "certifi")
REEXEC_GUARD = "GALYLEO_SHIV_REEXEC"
_HELD: List[int] = []  # the shared-lock descriptor: held, never closed, until exit


class Build:
    """Where one unpacked build lives: `<root>/<name>_<build id>`."""

    __slots__ = ("root", "name", "dirname")

    def __init__(self, root: str, name: str, dirname: str) -> None:
        self.root, self.name, self.dirname = root, name, dirname

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Build) and (self.root, self.name, self.dirname) == (other.root, other.name,
                                                                                      other.dirname)

    def __repr__(self) -> str:
        return f"Build({self.root!r}, {self.name!r}, {self.dirname!r})"

    @property
    def path(self) -> str:
        return os.path.join(self.root, self.dirname)

    @property
    def lock(self) -> str:
        return lock_path(self.root, self.dirname)

    @property
    def marker(self) -> str:
        return os.path.join(self.path, MARKER + sys.implementation.cache_tag)

    @property
    def network_marker(self) -> str:
        return os.path.join(self.path, NETWORK_MARKER + sys.implementation.cache_tag)


def lock_path(root: str, dirname: str) -> str:
    """shiv's own lock file for a build (see shiv.bootstrap.extract_site_packages)."""
    return os.path.join(root, f".{dirname}_lock")


def is_build_id(text: str) -> bool:
    """shiv's default build id: the sha256 of the bundled files."""
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def split_build(dirname: str) -> Optional[str]:
    """The pyz name of a build directory called `<name>_<build id>`, else None."""
    name, sep, build_id = dirname.rpartition("_")
    return name if sep and name and is_build_id(build_id) else None


def current_build(package_file: str) -> Optional[Build]:
    """The build this package runs from, or None outside a shiv unpack (a checkout, a venv)."""
    site_packages = os.path.dirname(os.path.dirname(os.path.abspath(package_file)))
    build_dir = os.path.dirname(site_packages)
    name = split_build(os.path.basename(build_dir))
    if os.path.basename(site_packages) != "site-packages" or name is None:
        return None
    return Build(os.path.dirname(build_dir), name, os.path.basename(build_dir))


def hold_shared(path: str) -> bool:
    """Take a shared flock on `path` for the rest of the process; False if impossible."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
    except OSError:
        os.close(fd)
        return False
    _HELD.append(fd)
    return True


def on_start(package_file: str, keep: Callable[[], int]) -> None:
    """Hot path of every pyz start; the rest runs once per build and interpreter."""
    build = current_build(package_file)
    if build is None or not hold_shared(build.lock) or os.path.exists(build.marker):
        return
    if not os.path.isdir(build.path):  # removed before our lock was taken
        reexec()
    if os.access(build.path, os.W_OK):  # a site may pre-unpack into a shared read-only root
        first_start(build, keep())


def reexec() -> None:
    """Start again so shiv unpacks afresh (once: the guard stops a loop)."""
    if os.environ.get(REEXEC_GUARD):
        return
    os.environ[REEXEC_GUARD] = "1"
    os.execv(sys.executable, [sys.executable, *sys.argv])


def first_start(build: Build, keep: int) -> None:
    compile_bytecode(os.path.join(build.path, "site-packages"))
    privatecache.create()
    remove_stale(build, keep)
    with open(build.marker, "w"):
        pass


# Bundled files no galyleo command imports, left uncompiled (a quarter of the first
# start's compile time; Python compiles them in memory if something ever imports them):
# idna's UTS 46 table (non-ASCII host names only), urllib3's Emscripten and pyOpenSSL
# backends and HTTP/2 connection, charset_normalizer's command line. tests/py/test_pyz.py
# checks that no command imports any of them.
NOT_COMPILED = (r"/site-packages/(idna/uts46data\.py|urllib3/contrib/(emscripten/|pyopenssl\.py)"
                r"|urllib3/http2/connection\.py|charset_normalizer/cli/)")
NETWORK = r"/site-packages/(" + "|".join(NETWORK_PACKAGES) + ")/"


def compile_bytecode(site_packages: str, packages: Optional[Sequence[str]] = None) -> None:
    """Bytecode for the running interpreter (cpython-3X tags coexist in __pycache__):
    of `packages`, or of everything but the network stack."""
    import compileall
    import py_compile
    import re

    skip = NOT_COMPILED if packages else f"{NOT_COMPILED}|{NETWORK}"
    folders = [os.path.join(site_packages, p) for p in packages] if packages else [site_packages]
    for folder in folders:
        compileall.compile_dir(folder, maxlevels=20, quiet=2, workers=1, rx=re.compile(skip),
                               invalidation_mode=py_compile.PycInvalidationMode.TIMESTAMP)


def compile_network(package_file: str) -> None:
    """Before the first import of requests in a build (per interpreter): its bytecode."""
    build = current_build(package_file)
    if build is None or os.path.exists(build.network_marker) or not os.access(build.path, os.W_OK):
        return
    compile_bytecode(os.path.join(build.path, "site-packages"), NETWORK_PACKAGES)
    with open(build.network_marker, "w"):
        pass


def stale_builds(build: Build, keep: int) -> List[str]:
    """This program's other builds beyond the newest `keep` (by directory mtime)."""
    found = []
    with os.scandir(build.root) as entries:
        for entry in entries:
            if (entry.name != build.dirname and split_build(entry.name) == build.name
                    and entry.is_dir(follow_symlinks=False)
                    and os.path.isdir(os.path.join(entry.path, "site-packages", "galyleo"))):
                found.append((entry.stat(follow_symlinks=False).st_mtime, entry.name))
    found.sort(reverse=True)
    return [name for _, name in found[keep:]]


def remove_stale(build: Build, keep: int) -> List[str]:
    """Remove stale builds nobody holds; return the names removed."""
    return [name for name in stale_builds(build, keep) if remove_build(build.root, name)]


def remove_build(root: str, dirname: str) -> bool:
    """Delete one build, and then its lock file, under shiv's exclusive lock; skip it if anyone
    holds the lock. Unlinked while still locked: shiv polls by opening the path afresh, so a
    shiv unpacking that build again waits for us, then locks the new file it creates."""
    import shutil

    try:
        fd = os.open(lock_path(root, dirname), os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return False
    try:
        for path in (os.path.join(root, dirname), os.path.join(root, dirname + ".tmp")):
            shutil.rmtree(path, ignore_errors=True)
        if os.path.exists(os.path.join(root, dirname)):
            return False
        try:
            os.unlink(lock_path(root, dirname))
        except OSError:
            pass  # gone already, or not ours to remove: an empty file either way
        return True
    finally:
        os.close(fd)


def configured_keep() -> int:
    """`shiv_keep` from the site config; the default if the config cannot be read (cli reports it)."""
    from galyleo import configfiles
    from galyleo.errors import GalyleoError

    try:
        return configfiles.load().config.shiv_keep
    except (GalyleoError, OSError, ValueError):
        return DEFAULT_KEEP
