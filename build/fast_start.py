# galyleo.pyz's __main__.py (build/fast_start.py; build_pyz.py fills in the three constants).
#
# Why: shiv's bootstrap costs about four times the interpreter's own start on every run,
# because it imports zipfile, compileall, subprocess, hashlib, json and pathlib just to
# find out that this build is already unpacked. When it is, this does what shiv's warm
# path does (same directory, same sys.path order, same entry point) with os and sys only.
# Anything else (first run, a removed build, or any SHIV_* setting that changes shiv's
# behaviour) goes to shiv's own bootstrap unchanged, so shiv's cache semantics hold.
#
# Code is run from the unpacked build only if nobody else could have put it there: the
# root, the build and its site-packages must be owned by the user (or root) and not
# writable by group or others (a `.pth` dropped there would run on the next start).
# Otherwise one line and exit 1: shiv's bootstrap would run the same files. shiv unpacks
# under umask 077 (galyleo.__main__ restores the user's umask from UMASK_VARIABLE).
import os
import sys

BUILD_ID = ""  # shiv's build id: the sha256 of site-packages
ROOT = None  # shiv's --root (None: ~/.shiv; "$VAR": from that variable)
ENTRY = ""  # "module:function"
# Only these SHIV_* variables leave the warm path as shiv would take it.
WARM_SAFE = ("SHIV_ROOT", "SHIV_COMPILE_PYC", "SHIV_COMPILE_WORKERS")


UMASK_VARIABLE = "GALYLEO_SHIV_UMASK"


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


def unpacked_site_packages():
    """shiv's bootstrap.cache_path() / "site-packages", if it is there and may be used."""
    if any(key.startswith("SHIV_") and key not in WARM_SAFE for key in os.environ):
        return None
    name = os.path.basename(os.path.realpath(sys.argv[0]))
    path = os.path.join(shiv_root(), f"{name}_{BUILD_ID}", "site-packages")
    return path if os.path.isdir(path) else None


def refuse_unsafe(*paths):
    """Exit with one line if any existing PATH could hold code from someone else."""
    for path in paths:
        try:
            info = os.stat(path)
        except OSError:
            continue  # not there yet: shiv makes it, under umask 077
        if info.st_uid not in (os.getuid(), 0) or info.st_mode & 0o022:
            sys.stderr.write(f"galyleo: error: {path}: writable by others or not yours (mode "
                             f"{info.st_mode & 0o7777:04o}); not running code from it: remove it, or chmod go-w it\n")
            sys.exit(1)


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


def main():
    refuse_unsafe(shiv_root())
    site_packages = unpacked_site_packages()
    if site_packages is None:
        import _bootstrap

        os.environ[UMASK_VARIABLE] = str(os.umask(0o077))  # what shiv unpacks is private
        _bootstrap.bootstrap()
    else:
        refuse_unsafe(os.path.dirname(site_packages), site_packages)
        run_warm(site_packages)


if __name__ == "__main__":
    main()
