#!/usr/bin/env python3
"""Render a matrix of representative job scripts with `galyleo generate` and shellcheck them.

For a site's CI (and `make lint-scripts`): the scripts come from the galyleo given (a built pyz,
or this checkout) under the site config in effect (GALYLEO_CONFIG), so a site's own settings
(modules, scratch_dir, bind_address, ...) are linted as its users will get them. No Slurm needed.
Exit 0 when every script is clean, 1 with shellcheck's findings, 2 when a script cannot be rendered.
Usage: lint_scripts.py [--galyleo 'python3 dist/galyleo.pyz'] [--shellcheck shellcheck] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional

# name -> the options after `generate -A lint -d <dir>`; {yml} and {sif} are files made here.
MATRIX: Dict[str, List[str]] = {
    "lab": [],
    "notebook-modules": ["-i", "notebook", "-e", "gcc/10,python/3.11", "--append-modulepath", "/opt/mods"],
    "voila": ["-i", "voila"],
    "vscode-idle": ["-i", "vscode", "--idle-timeout", "30"],
    "resources": ["-p", "debug", "-c", "4", "-m", "8", "-g", "1", "-t", "1-00:00", "-q", "normal", "-C", "a100"],
    "gres-idle": ["--gres", "gpu:a100:1", "--idle-timeout", "30"],
    "conda-env": ["--conda-env", "my env"],
    "conda-yml-cache": ["--conda-yml", "{yml}", "--mamba", "--cache"],
    "container": ["-s", "{sif}", "-B", "/scratch,/data:/data:ro", "--nv"],
    "container-conda": ["-s", "docker://python:3.11", "--conda-env", "base", "--rocm"],
    "ssh": ["--connect", "ssh"],
}


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--galyleo", default=f"{shlex.quote(sys.executable)} -m galyleo",
                        help="the command to run (default: this checkout through this Python)")
    parser.add_argument("--shellcheck", default="shellcheck", help="the shellcheck to run")
    parser.add_argument("--keep", type=Path, help="write the scripts here (default: a temporary folder)")
    return parser.parse_args(argv)


def render(galyleo: List[str], folder: Path) -> Dict[str, Path]:
    """Each matrix entry's script in FOLDER; exits 2 naming the first that fails."""
    files = {"yml": folder / "environment.yml", "sif": folder / "image.sif"}
    files["yml"].write_text("dependencies: [python, jupyterlab]\n")
    files["sif"].write_bytes(b"")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    scripts = {}
    for name, options in MATRIX.items():
        argv = [*galyleo, "generate", "-A", "lint", "-d", str(folder),
                *(o.format(**{k: str(v) for k, v in files.items()}) for o in options)]
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120, check=False)
        if proc.returncode != 0:
            sys.exit(f"lint_scripts: {name}: {shlex.join(argv)} failed: {proc.stderr.strip()}")
        scripts[name] = folder / f"{name}.sh"
        scripts[name].write_text(proc.stdout)
    return scripts


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="galyleo-lint-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        scripts = render(shlex.split(args.galyleo), folder)
        proc = subprocess.run([args.shellcheck, *map(str, scripts.values())], check=False)
        print(f"lint_scripts: {len(scripts)} scripts ({', '.join(scripts)}): "
              + ("clean" if proc.returncode == 0 else "shellcheck found problems"))
        return 0 if proc.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
