"""Login-node checks before anything happens (`launch`, also `--dry-run`; skip with --no-preflight).

Input: a LaunchSpec and the Config. Checks: the time limit is within the partition's
maximum (when sinfo answers; a job above it would pend for ever); the --conda-yml parses and names an
env; conda can be found the way the job finds it; the --conda-env exists and
(when no module is loaded) has the interface's commands (apps.py; vscode has two); each module
loads, in order, after the site's reset and the --append-modulepath paths, as
the module system on this node sees it; and, unless a --sif image or a --conda-yml
env (both checked in the job) brings them, each of the interface's commands is there: in
the --conda-env, else on PATH after the modules. A failure raises UsageError (one line,
exit 2) before any Satellite call, file or job. A tool that does not answer
within `preflight_timeout` seconds is a warning, never a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from galyleo import apps, render
from galyleo.conda import CONDA_PREFIXES
from galyleo.config import Config
from galyleo.errors import UsageError, show
from galyleo.spec import LaunchSpec
from galyleo.ymlname import YmlError, read_env_name

MESSAGE_LIMIT = 400


@dataclass(frozen=True)
class Conda:
    """How conda was found, and the argv that runs it (arguments appended)."""

    how: str
    argv: List[str]


def check(spec: LaunchSpec, config: Config, environ: Optional[Dict[str, str]] = None) -> None:
    environ = dict(os.environ if environ is None else environ)
    timeout = config.preflight_timeout or 20
    if shutil.which("sbatch", path=environ.get("PATH", os.defpath)) is None:
        return  # not a login node: `launch` says so itself, before anything else
    from galyleo.config_commands import within_partition

    within_partition(f"--time-limit {spec.time_limit}", spec.time_limit, spec.partition)  # else pends for ever
    if spec.conda_yml:
        yml_name(spec.conda_yml)
    # The app's commands still to find: none where the image or the env built in the job brings them
    # (checked there); else those the --conda-env lacks, on PATH after the modules.
    need: Tuple[str, ...] = () if spec.sif or spec.conda_yml else apps.of(spec.interface).commands
    if (spec.conda_env or spec.conda_yml) and not spec.sif:
        conda = find_conda(spec.conda_init, environ, timeout)
        if conda is None and not (spec.conda_yml and config.conda_installer_url):
            option = "--conda-env" if spec.conda_env else "--conda-yml"
            raise UsageError(f"{option}: conda not found on this node (--conda-init, CONDA_EXE, PATH, "
                             f"{', '.join(CONDA_PREFIXES)}, ~/.bashrc): "
                             "give --conda-init PATH/etc/profile.d/conda.sh")
        if conda is not None and spec.conda_env:
            need = conda_env(spec, conda, timeout)
    if spec.modules or spec.module_paths:
        modules(spec, config, timeout, need)
        return
    path = environ.get("PATH", os.defpath)
    for command in need:
        if shutil.which(command, path=path) is None:
            raise UsageError(f"--interface {spec.interface}: no {command} on PATH, and no --env-modules, "
                             f"--conda-env or --sif to bring it: {where(spec.interface)}")


def where(interface: str) -> str:
    """What to do when the app's commands are missing."""
    app = apps.of(interface)
    return (f"load the module that provides {app.provides} with -e (`module spider` lists them), "
            "or give --conda-env or --sif (--no-preflight skips this check)")


def yml_name(path: str) -> str:
    try:
        return read_env_name(path)
    except YmlError as exc:
        raise UsageError(f"--conda-yml {show(path)}: {exc}") from None


def warn(message: str) -> None:
    sys.stderr.write(f"galyleo: warning: pre-flight: {message}\n")


def run(argv: Sequence[str], timeout: int, what: str) -> Optional[subprocess.CompletedProcess]:
    """Run ARGV; None (and a warning) when it does not answer in time or cannot start."""
    try:
        return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        warn(f"{what} did not answer within {timeout} s; not checked")
    except OSError as exc:
        warn(f"{what} could not be run ({exc.strerror}); not checked")
    return None


def find_conda(init: str, environ: Dict[str, str], timeout: int) -> Optional[Conda]:
    """The first of: --conda-init, CONDA_EXE, conda on PATH, the usual prefixes, ~/.bashrc."""
    if init:
        return Conda(f"--conda-init {init}", ["bash", "-c", 'source "$0" >/dev/null && conda "$@"', init])
    exe = environ.get("CONDA_EXE", "")
    if exe and os.access(exe, os.X_OK):
        return Conda(f"CONDA_EXE {exe}", [exe])
    found = shutil.which("conda", path=environ.get("PATH", os.defpath))
    if found:
        return Conda(f"PATH {found}", [found])
    for prefix in CONDA_PREFIXES:
        exe = os.path.join(os.path.expanduser(prefix), "bin", "conda")
        if os.access(exe, os.X_OK):
            return Conda(f"{prefix}", [exe])
    bashrc = ["bash", "-c", 'source ~/.bashrc >/dev/null 2>&1; conda "$@"', "galyleo"]
    done = run(bashrc[:3] + ["galyleo", "--version"], timeout, "conda from ~/.bashrc")
    return Conda("~/.bashrc", bashrc) if done is not None and done.returncode == 0 else None


def conda_env(spec: LaunchSpec, conda: Conda, timeout: int) -> Tuple[str, ...]:
    """The env exists (by name in `conda env list`, or as a prefix); the interface's commands
    it lacks, which modules must bring (none if conda would not say)."""
    target = spec.conda_env
    prefix = env_path(target) if "/" in target else named_env(target, conda, timeout)
    if prefix is None:
        return ()  # conda would not say: not checked (warned)
    lacks = tuple(command for command in apps.of(spec.interface).commands
                  if not os.access(os.path.join(prefix, "bin", command), os.X_OK))
    if lacks and not spec.modules:
        raise UsageError(f"--conda-env {show(target)}: {prefix} has no {lacks[0]} "
                         f"(install it in the env, or load it with --env-modules)")
    return lacks


def env_path(target: str) -> str:
    prefix = os.path.abspath(os.path.expanduser(target))
    if not os.path.isdir(os.path.join(prefix, "conda-meta")):
        raise UsageError(f"--conda-env {show(target)}: not a conda environment (no conda-meta directory)")
    return prefix


def named_env(target: str, conda: Conda, timeout: int) -> Optional[str]:
    """The prefix of the env called TARGET; None if conda gave no usable answer."""
    done = run(conda.argv + ["env", "list", "--json"], timeout, f"conda ({conda.how})")
    if done is None:
        return None
    try:
        listing = json.loads(done.stdout)
        envs = [str(e) for e in listing["envs"]]
        root = str(listing.get("root_prefix") or "")
    except (ValueError, KeyError, TypeError, AttributeError):
        warn(f"conda ({conda.how}) gave no environment list; not checked")
        return None
    if target == "base":  # the list is sorted by path: base is not always first
        root = root or conda_base(conda, timeout)
        if not root:
            warn(f"conda ({conda.how}) did not say where base is; not checked")
        return root or None
    found = next((e for e in envs if os.path.basename(e) == target and e != root), None)
    if found is None:
        root = root or conda_base(conda, timeout)
        names = ", ".join(sorted(os.path.basename(e) for e in envs if e != root)) or "none"
        raise UsageError(f"--conda-env {show(target)}: no such conda environment "
                         f"(conda from {conda.how} knows: base, {names})")
    return found


def conda_base(conda: Conda, timeout: int) -> str:
    """`conda info --base`: the base env's prefix, "" if conda will not say."""
    done = run(conda.argv + ["info", "--base"], timeout, f"conda ({conda.how})")
    return done.stdout.strip() if done is not None and done.returncode == 0 else ""


def modules(spec: LaunchSpec, config: Config, timeout: int, need: Tuple[str, ...] = ()) -> None:
    """Run the job's modules section (render.module_probe) in a throw-away shell; report
    the first failure, or the first command of NEED not on PATH once they are loaded."""
    done = run(["bash", "-c", render.module_probe(spec, config, need)], timeout, "the module system")
    if done is None or done.returncode == 0:
        return
    what, _, message = done.stdout.partition("\0")  # the probe's report: KIND NAME, NUL, what it said
    kind, _, name = what.partition(" ")
    if kind == "init":
        raise UsageError(f"--env-modules: no 'module' command on this node, and none of these init files "
                         f"exists: {' '.join(config.module_init)}")
    if kind == "command":
        given = ",".join(spec.modules) or ",".join(spec.module_paths)
        raise UsageError(f"--env-modules {show(given)}: they load, but no {name} is on PATH after them: "
                         f"{where(spec.interface)}")
    if kind not in ("use", "load"):
        warn(f"the module check failed without saying why (exit {done.returncode}); not checked")
        return
    option = "--append-modulepath" if kind == "use" else "--env-modules"
    first = next((part for part in message.split("\n\n") if part.strip()), "")  # Lmod: first paragraph
    said = " ".join(first.split())[:MESSAGE_LIMIT] or "(no message)"
    raise UsageError(f"{option} {show(name)}: the module system says: {said}")
