# galyleo.pyz's __main__.py (build/fast_start.py; build_pyz.py fills in the three constants).
#
# Why: shiv's bootstrap costs about four times the interpreter's own start on every run,
# because it imports zipfile, compileall, subprocess, hashlib, json and pathlib just to
# find out that this build is already unpacked. When it is, this does what shiv's warm
# path does (same directory, same sys.path order, same entry point) with os and sys only.
# Anything else (first run, a removed build, or any SHIV_* setting that changes shiv's
# behaviour) goes to shiv's own bootstrap, so shiv's cache semantics hold.
#
# Upgrades: Python reads the pyz's file list, then opens the path again to read this
# file, so a pyz renamed over the old one mid-start could mix two builds. build_pyz.py
# stores this file first, uncompressed, padded to a fixed size after a fixed-size
# prefix: read at the old list's offset, it is wholly the old build's or wholly the new
# one's. From here on nothing is read from the pyz's path again: the warm path runs the
# unpacked build this file names, and a first start unpacks from one open file.
#
# Python 2.7 to 3.7 must be able to parse this file (no f-strings), so that they print
# one line instead of a traceback.
#
# Code is run from the unpacked build only if nobody else could have put it there: the
# root, the build and its site-packages must be owned by the user (or root) and not
# writable by group or others (a `.pth` dropped there would run on the next start).
# Otherwise one line and exit 1: shiv's bootstrap would run the same files. shiv unpacks
# under umask 077 (galyleo.__main__ restores the user's umask from UMASK_VARIABLE).
# Python 2.7 parses this file (no f-strings); exec runs shiv's bootstrap from the open archive.
# ruff: noqa: UP004, UP031, S102
import os
import sys

BUILD_ID = ""  # shiv's build id: the sha256 of site-packages
ROOT = None  # shiv's --root (None: ~/.shiv; "$VAR": from that variable)
ENTRY = ""  # "module:function"
# Only these SHIV_* variables leave the warm path as shiv would take it.
WARM_SAFE = ("SHIV_ROOT", "SHIV_COMPILE_PYC", "SHIV_COMPILE_WORKERS")
OLDEST = (3, 8)
UMASK_VARIABLE = "GALYLEO_SHIV_UMASK"


def error(message, status):
    sys.stderr.write("galyleo: error: " + message + "\n")
    sys.exit(status)


def check_python():
    """One line and exit 2 on an interpreter galyleo's code cannot even parse."""
    if sys.version_info[:2] < OLDEST:
        error("needs Python %d.%d or later (3.8 to 3.13 are tested); %s is Python %d.%d: run it with a newer "
              "python3, or ask your site to build it with --python" % (OLDEST + (sys.executable or "this",)
                                                                       + tuple(sys.version_info[:2])), 2)


def shiv_root():
    """Where shiv unpacks: $SHIV_ROOT, else the build's --root, else ~/.shiv (absolute)."""
    root = os.environ.get("SHIV_ROOT", ROOT)
    if root:
        if root.startswith("$"):
            root = os.environ.get(root[1:], root[1:])
        root = os.path.expanduser(root)
    else:
        root = os.path.expanduser("~/.shiv")
    return os.path.abspath(root)


def shiv_settings():
    """Whether a SHIV_* setting asks for shiv's own bootstrap (WARM_SAFE ones do not)."""
    return any(key.startswith("SHIV_") and key not in WARM_SAFE for key in os.environ)


def unpacked_site_packages():
    """shiv's bootstrap.cache_path() / "site-packages", if it is there and may be used."""
    if shiv_settings():
        return None
    name = os.path.basename(os.path.realpath(sys.argv[0]))
    build = os.path.join(shiv_root(), "%s_%s" % (name, BUILD_ID))
    if not os.path.isdir(build):
        return None
    path = os.path.join(build, "site-packages")
    refuse_unsafe(build, path)
    return path if os.path.isdir(path) else None


def refuse_unsafe(*paths):
    """Exit with one line if any existing PATH could hold code from someone else, or is
    unreadable to this user (a shared copy unpacked without the documented modes)."""
    for path in paths:
        try:
            info = os.stat(path)
        except OSError:
            continue  # not there yet: shiv makes it, under umask 077
        if info.st_uid not in (os.getuid(), 0) or info.st_mode & 0o022:
            error("%s: writable by others or not yours (mode %04o); not running code from it: remove it, "
                  "or chmod go-w it" % (path, info.st_mode & 0o7777), 1)
        if os.path.isdir(path) and not os.access(path, os.R_OK | os.X_OK):
            error("%s: not readable by you (mode %04o): its owner must run chmod -R a+rX on it (a shared copy), "
                  "or set SHIV_ROOT=~/.shiv to unpack your own" % (path, info.st_mode & 0o7777), 1)


def run_warm(site_packages):
    """shiv's bootstrap() from "get sys.path's length" on, for an entry point."""
    import site

    length = len(sys.path)
    index = next((i for i, part in enumerate(sys.path)
                  if os.path.splitext(os.path.basename(part))[0] in ("site-packages", "dist-packages")), None)
    index = index or length
    site.addsitedir(site_packages)
    sys.path = sys.path[:index] + sys.path[length:] + sys.path[index:length]
    module, _, function = ENTRY.partition(":")
    sys.exit(getattr(__import__(module, fromlist=[function]), function)())


class ArchiveFinder(object):
    """Imports shiv's bootstrap (`_bootstrap`) from an archive already open, not from the
    pyz's path, which may name another build by now."""

    def __init__(self, archive):
        self.archive = archive

    def find_spec(self, name, path=None, target=None):
        import importlib.util

        if name.partition(".")[0] != "_bootstrap":
            return None
        base = name.replace(".", "/")
        for member, package in ((base + "/__init__.py", True), (base + ".py", False)):
            if member in self.archive.NameToInfo:
                spec = importlib.util.spec_from_loader(name, self, origin=member, is_package=package)
                spec.has_location = False
                return spec
        return None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        source = self.archive.read(module.__spec__.origin)
        exec(compile(source, sys.argv[0] + "/" + module.__spec__.origin, "exec"), module.__dict__)


def open_archive():
    """The pyz as one open file: a half-copied file (`cp` over it) is one line, not a traceback."""
    import zipfile

    try:
        return zipfile.ZipFile(open(sys.argv[0], "rb"))
    except (OSError, zipfile.BadZipFile) as problem:
        error("%s: cannot read this program (%s); if it is being upgraded, try again" % (sys.argv[0], problem), 1)


def run_cold():
    """shiv's bootstrap, reading everything (its own code, the build id, the files it
    unpacks) from one open file."""
    import contextlib

    root = shiv_root()
    if os.path.isdir(root) and not os.access(root, os.W_OK) and not shiv_settings():
        error("%s: this build is not unpacked there and you cannot write there: the site must unpack it first "
              "(galyleo's docs/site.md, A shared pre-unpacked copy), or set SHIV_ROOT=~/.shiv to unpack your own"
              % root, 1)

    archive = open_archive()
    sys.meta_path.insert(0, ArchiveFinder(archive))
    import _bootstrap

    _bootstrap.current_zipfile = lambda: contextlib.nullcontext(archive)
    os.environ[UMASK_VARIABLE] = str(os.umask(0o077))  # what shiv unpacks is private
    _bootstrap.bootstrap()


def main():
    check_python()
    refuse_unsafe(shiv_root())
    site_packages = unpacked_site_packages()
    if site_packages is None:
        run_cold()
    else:
        run_warm(site_packages)


if __name__ == "__main__":
    main()
