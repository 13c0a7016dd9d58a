# galyleo.pyz's __main__.py (build/fast_start.py; build_pyz.py fills in the three constants).
#
# Why: shiv's bootstrap costs about four times the interpreter's own start on every run,
# because it imports zipfile, compileall, subprocess, hashlib, json and pathlib just to
# find out that this build is already unpacked. When it is, this does what shiv's warm
# path does (same directory, same sys.path order, same entry point) with os and sys only.
# Anything else (first run, a removed build, or any SHIV_* setting that changes shiv's
# behaviour) goes to shiv's own bootstrap unchanged, so shiv's cache semantics hold.
import os
import sys

BUILD_ID = ""  # shiv's build id: the sha256 of site-packages
ROOT = None  # shiv's --root (None: ~/.shiv; "$VAR": from that variable)
ENTRY = ""  # "module:function"
# Only these SHIV_* variables leave the warm path as shiv would take it.
WARM_SAFE = ("SHIV_ROOT", "SHIV_COMPILE_PYC", "SHIV_COMPILE_WORKERS")


def unpacked_site_packages():
    """shiv's bootstrap.cache_path() / "site-packages", if it is there and may be used."""
    if any(key.startswith("SHIV_") and key not in WARM_SAFE for key in os.environ):
        return None
    root = os.environ.get("SHIV_ROOT", ROOT)
    if root:
        if root.startswith("$"):
            root = os.environ.get(root[1:], root[1:])
        root = os.path.expanduser(root)
    else:
        root = os.path.expanduser("~/.shiv")
    name = os.path.basename(os.path.realpath(sys.argv[0]))
    path = os.path.join(os.path.abspath(root), f"{name}_{BUILD_ID}", "site-packages")
    return path if os.path.isdir(path) else None


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
    site_packages = unpacked_site_packages()
    if site_packages is None:
        import _bootstrap

        _bootstrap.bootstrap()
    else:
        run_warm(site_packages)


if __name__ == "__main__":
    main()
