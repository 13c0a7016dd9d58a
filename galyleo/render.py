"""Turn a LaunchSpec (+ site Config, + the launch handoff) into a bash job script.

Pure once the connection mode is prepared (ssh mode resolves the login host first):
no I/O beyond reading the packaged templates. Python decides everything here
(which sections, which values, which `#SBATCH` pairs); the templates in
`snippets/` only spell it out, quoting each value where it is used with `sh`.
"""

from __future__ import annotations

import re
import shlex
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from galyleo import __version__, apps, conda, connect, contract, idle, joblog, jobnumbers, privatecache
from galyleo.config import Config
from galyleo.connect.base import Connection, Handoff
from galyleo.rules import seconds
from galyleo.spec import LaunchSpec

SBATCH_SAFE = re.compile(r"[^\s\"'\\`$;]+\Z")
IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
Value = Union[str, int, Sequence[str]]
MIN_SIGNAL_LEAD = 60  # Slurm may send a --signal up to 60 s early


def sbatch_value(value: object) -> str:
    """Last guard for `#SBATCH` lines: sbatch splits them itself, so no quoting can help."""
    text = str(value)
    if not SBATCH_SAFE.match(text):
        raise ValueError(f"unsafe #SBATCH value {text!r}")
    return text


def sh(value: object) -> str:
    """Shell-quote any value where it is used (ints included)."""
    return shlex.quote(str(value))


def ident(value: object) -> str:
    """Variable names come from Python constants; refuse anything else."""
    text = str(value)
    if not IDENT.match(text):
        raise ValueError(f"not a shell identifier: {text!r}")
    return text


def make_environment() -> Any:
    """The one Jinja environment: strict, no autoescape, `sh`/`sbatch` filters."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("galyleo", "snippets"),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        comment_start_string="{##",  # bash's ${#name} would open a Jinja comment
        comment_end_string="##}",
    )
    env.filters["sh"] = sh
    env.filters["ident"] = ident
    env.filters["sbatch"] = sbatch_value
    env.bytecode_cache = privatecache.template_cache(jinja2)
    return env


_ENV: Optional[Any] = None


def environment() -> Any:
    global _ENV
    if _ENV is None:
        _ENV = make_environment()
    return _ENV


def render(spec: LaunchSpec, config: Config, handoff: Optional[Handoff] = None,
           mode: Optional[Connection] = None) -> str:
    """The complete job script as text (HANDOFF: launch's; None for a plain sbatch)."""
    mode = mode or connect.of(spec.connect, config)
    return str(environment().get_template("job.sh.j2").render(context(spec, config, handoff, mode)))


def context(spec: LaunchSpec, config: Config, handoff: Optional[Handoff], mode: Connection) -> Dict[str, Any]:
    return {
        "version": __version__,
        "sbatch": sbatch_pairs(spec, handoff, signal_lead(spec, config)),
        "values": bound_values(spec, config, handoff, mode),
        "sections": sections(spec),
        "app": apps.of(spec.interface),
        "conda": "yml" if spec.conda_yml else ("env" if spec.conda_env else ""),
        "container": bool(spec.sif),
        "inside": bool(spec.sif and (spec.conda_env or spec.conda_yml)),  # conda sets the container's hook
        "idle": bool(spec.idle_timeout),
        "connection": mode.snippet,
        "module_probe": False,
    }


def sbatch_pairs(spec: LaunchSpec, handoff: Optional[Handoff], signal_lead: int = 0) -> List[Tuple[str, str]]:
    """`#SBATCH` option/value pairs in a fixed order; empty values are left out, except for
    options that take none (--exclusive, a value-less --sbatch option): their line has no `=`."""
    # sbatch expands %j, %u, ... in --output: a literal % is written %%, in launch's path as in generate's
    if handoff:
        output = handoff.output_file.replace("%", "%%")
    else:
        output = contract.sbatch_output(spec.output_dir)
    pairs = [
        ("job-name", spec.job_name),
        ("account", spec.account),
        ("reservation", spec.reservation),
        ("qos", spec.qos),
        ("partition", spec.partition),
        ("nodes", "1"),
        ("ntasks", "1"),
        ("cpus-per-task", str(spec.cpus)),
        ("gpus", str(spec.gpus) if spec.gpus else ""),
        ("gres", spec.gres),
        ("mem", mem(spec.memory_mb)),
        ("time", spec.time_limit),
        ("constraint", spec.constraint),
        ("signal", f"B:USR1@{signal_lead}" if signal_lead else ""),
        ("output", output),
        ("nodelist", spec.nodelist),
        ("exclude", spec.exclude),
    ]
    flags = [("exclusive", "")] if spec.exclusive else []
    extra = [tuple(option[2:].partition("=")[::2]) for option in spec.sbatch]  # `--name=value`: (name, value)
    return [(key, value) for key, value in pairs if value] + flags + [(k, v) for k, v in extra]


def mem(megabytes: int) -> str:
    """`--mem` as Slurm writes it: whole GB as `4G`, anything else in MB; "" for Slurm's default."""
    if not megabytes:
        return ""
    return f"{megabytes // 1024}G" if megabytes % 1024 == 0 else f"{megabytes}M"


def signal_lead(spec: LaunchSpec, config: Config) -> int:
    """Seconds before the time limit that Slurm warns the job: the site's lead, at most half the
    time limit (a warning at the start is no warning); 0, none, under a minute (Slurm's resolution)."""
    lead = min(config.signal_lead, (seconds(spec.time_limit) or 0) // 2)
    return lead if lead >= MIN_SIGNAL_LEAD else 0


def bound_values(spec: LaunchSpec, config: Config, handoff: Optional[Handoff],
                 mode: Optional[Connection] = None) -> List[Tuple[str, Value]]:
    """Every value the chosen sections use, bound once at the top as GALYLEO_*."""
    mode = mode or connect.of(spec.connect, config)
    app = apps.of(spec.interface)
    values: Dict[str, Value] = {
        "GALYLEO_VERSION": __version__,
        "GALYLEO_INTERFACE": spec.interface,
        "GALYLEO_APP_COMMANDS": app.commands,
        "GALYLEO_APP_ARGV": app.argv,
        "GALYLEO_APP_PROBE_PATH": app.probe_path,
        "GALYLEO_APP_PROBE_JSON": int(app.probe_json),
        "GALYLEO_APP_LOOK_PATH": app.look_path,
        "GALYLEO_APP_PROVIDES": app.provides,
        "GALYLEO_NOTEBOOK_DIR": spec.notebook_dir,
    }
    values.update(app.values)
    values.update(joblog.values())
    values.update(contract.job_values(spec.output_dir, handoff.output_file if handoff else "",
                                      None if handoff else mode.standalone_record(spec.interface, spec.output_dir)))
    values.update(mode.job_values(handoff))  # no other mode's value: nothing could call it
    values.update({
        "GALYLEO_BIND_ADDRESS": config.bind_address,
        "GALYLEO_NODE_SUFFIX": config.node_domain_suffix,
        "GALYLEO_PORT_MIN": config.port_min,
        "GALYLEO_PORT_MAX": config.port_max,
        "GALYLEO_READY_TIMEOUT": config.ready_timeout,
        "GALYLEO_TIME_LIMIT_SECONDS": seconds(spec.time_limit) or 0,
        "GALYLEO_SCRATCH_DIR": config.scratch_dir,
        "GALYLEO_WATCH_INTERVAL": idle.watch_interval(spec.idle_timeout),
        "GALYLEO_WATCH_MISSES": idle.WATCH_MISSES,
    })
    values.update(jobnumbers.values(config))
    if spec.idle_timeout:
        values.update({
            "GALYLEO_IDLE_MINUTES": spec.idle_timeout,
            "GALYLEO_IDLE_SETTINGS": idle.jupyter_settings(spec.idle_timeout),
            "GALYLEO_IDLE_ENDED": idle.ended_message(spec.idle_timeout),
            "GALYLEO_IDLE_ENDING": idle.ending(spec.idle_timeout),
            "GALYLEO_STATUS_SINCE": idle.STATUS_SINCE,
            "GALYLEO_ACTIVITY_FORMAT": idle.ACTIVITY_FORMAT,
            **idle.activity_values(),
        })
    chosen = sections(spec)
    if "modules.sh.j2" in chosen:
        values.update(module_values(spec, config))
    if "conda.sh.j2" in chosen:
        cache = ""
        if spec.cache:
            from galyleo import condacache  # only --cache needs it (generate's start-up)

            cache = condacache.directory(config, spec.output_dir)
        values.update({
            "GALYLEO_CONDA_ENV": spec.conda_env,
            "GALYLEO_CONDA_YML": spec.conda_yml,
            "GALYLEO_CONDA_INIT": spec.conda_init,
            "GALYLEO_CONDA_TOOL": "mamba" if spec.mamba else "conda",
            "GALYLEO_CONDA_CACHE": cache,
            "GALYLEO_CONDA_INSTALLER": config.conda_installer_url,
            **conda.values(),
        })
    if "container.sh.j2" in chosen:
        values.update({
            "GALYLEO_SIF": spec.sif,
            "GALYLEO_CONTAINER_RUNTIME": config.container_runtime,
            "GALYLEO_CONTAINER_FLAGS": tuple(f for f, on in (("--nv", spec.nv), ("--rocm", spec.rocm)) if on),
            "GALYLEO_BINDS": spec.binds,
        })
    return list(values.items())


def module_values(spec: LaunchSpec, config: Config) -> Dict[str, Value]:
    return {
        "GALYLEO_MODULE_INIT": tuple(config.module_init),
        "GALYLEO_MODULE_RESET": config.module_reset,
        "GALYLEO_MODULE_PATHS": spec.module_paths,
        "GALYLEO_MODULES": spec.modules,
    }


def module_probe(spec: LaunchSpec, config: Config, commands: Tuple[str, ...] = ()) -> str:
    """The pre-flight's module check as a bash script: the job's modules section with
    hooks that report (module_probe.sh.j2), then whether each of COMMANDS is on PATH."""
    values = dict(module_values(spec, config), GALYLEO_PROBE_COMMANDS=commands)
    template = environment().get_template("module_probe.sh.j2")
    return str(template.render({"values": list(values.items()), "module_probe": True}))


def sections(spec: LaunchSpec) -> List[str]:
    """Environment snippets in their fixed order: modules, then conda, then container."""
    chosen = []
    if spec.modules or spec.module_paths:
        chosen.append("modules.sh.j2")
    if spec.conda_env or spec.conda_yml:
        chosen.append("conda.sh.j2")
    if spec.sif:
        chosen.append("container.sh.j2")
    return chosen
