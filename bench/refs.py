"""The two reference zipapps, built in the same run with the same shiv and flags as galyleo.pyz.

`print.pyz`: an entry point that only prints (the floor of any shiv zipapp).
`jinja.pyz`: imports jinja2 and renders a one-line template (the floor of a Jinja2 CLI),
bundling the very jinja2 and markupsafe files of galyleo.pyz (pure-Python markupsafe).
Flags copied from build/build_pyz.py: --reproducible, the same shebang; shiv's own
--compile-pyc (galyleo compiles on its first start instead, so a stock shiv app does it here).
Each also comes as `*-fast.pyz`: the same archive with galyleo's warm start
(build/fast_start.py in place of shiv's __main__.py), for a like-for-like comparison.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Dict

from common import PYZ, REPO, WORK

SHEBANG = "/usr/bin/env python3"  # build/build_pyz.py's default --python
FLAGS = ["--reproducible", "--compile-pyc"]

PRINT_MODULE = '''"""Reference entry point: print one line, nothing else."""


def main():
    print("galyleo-bench reference")
'''

JINJA_MODULE = '''"""Reference entry point: import jinja2 and render a one-line template."""


def main():
    import jinja2

    print(jinja2.Template("hello {{ name }}").render(name="world"))
'''


def copy_from_pyz(site: str, prefixes: tuple) -> None:
    """Copy the pyz's own site-packages entries whose top-level name starts with a prefix."""
    with zipfile.ZipFile(PYZ) as archive:
        for name in archive.namelist():
            parts = name.split("/")
            if len(parts) > 2 and parts[0] == "site-packages" and parts[1].lower().startswith(prefixes):
                target = os.path.join(site, *parts[1:])
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with open(target, "wb") as handle:
                    handle.write(archive.read(name))


def shiv(site: str, entry: str, out: str) -> None:
    env = {**os.environ, "SOURCE_DATE_EPOCH": "315554400", "PYTHONHASHSEED": "0"}
    subprocess.run([sys.executable, "-m", "shiv", "--site-packages", site, *FLAGS, "-e", entry,
                    "-p", SHEBANG, "-o", out], check=True, env=env, stdout=subprocess.DEVNULL)


def with_fast_start(pyz: str) -> str:
    """A copy of `pyz` whose __main__ is galyleo's fast start (build/build_pyz.py's own step)."""
    sys.path.insert(0, os.path.join(REPO, "build"))
    try:
        import build_pyz
    finally:
        sys.path.pop(0)
    out = pyz.replace(".pyz", "-fast.pyz")
    shutil.copyfile(pyz, out)
    build_pyz.add_fast_start(Path(out))
    return out


def build_references() -> Dict[str, str]:
    """Build both references (and their fast-start twins) under bench/work/refs; name -> path."""
    root = os.path.join(WORK, "refs")
    shutil.rmtree(root, ignore_errors=True)
    paths = {}
    for name, module, deps in (("print", PRINT_MODULE, ()), ("jinja", JINJA_MODULE, ("jinja2", "markupsafe"))):
        site = os.path.join(root, name, "site-packages")
        os.makedirs(site)
        with open(os.path.join(site, f"bench_{name}.py"), "w") as handle:
            handle.write(module)
        if deps:
            copy_from_pyz(site, deps)
        out = os.path.join(root, f"{name}.pyz")
        shiv(site, f"bench_{name}:main", out)
        paths[name] = out
        paths[f"{name}-fast"] = with_fast_start(out)
    return paths


def shiv_version() -> str:
    done = subprocess.run([sys.executable, "-m", "shiv", "--version"], capture_output=True, text=True)
    return done.stdout.strip()
