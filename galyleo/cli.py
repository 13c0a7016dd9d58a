"""The command line: argparse only. Each handler reads as a few calls down the pipeline.

command line + Config -> spec.build -> render -> (launch: launch.run) -> stdout.
Usage errors print one line on stderr and exit 2; nothing else happens first.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, List, NoReturn, Optional, Sequence

from galyleo import __version__
from galyleo.errors import GalyleoError, UsageError

PROG = "galyleo"


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        fail(message.replace("\n", " "))


def fail(message: str, status: int = 2) -> NoReturn:
    sys.stderr.write(f"{PROG}: error: {message}\n")
    sys.exit(status)


def default_text(value: object, unset: str = "none") -> str:
    return str(value) if value not in ("", 0, None) else unset


def add_launch_options(parser: argparse.ArgumentParser, config: Any) -> None:
    """Every option `generate` and `launch` share; help shows this site's defaults."""
    sched = parser.add_argument_group("scheduler options")
    sched.add_argument("-A", "--account", help=f"account to charge (default: {default_text(config.account)})")
    sched.add_argument("-p", "--partition", help=f"partition (default: {default_text(config.partition, 'Slurm default')})")
    sched.add_argument("-c", "--cpus", help=f"CPUs for the job (default: {config.cpus})")
    sched.add_argument("-m", "--memory", help=f"memory in GB: 4, 4G or 4GB (default: {default_text(config.memory, 'Slurm default')})")
    sched.add_argument("-g", "--gpus", help=f"number of GPUs (default: {default_text(config.gpus)})")
    sched.add_argument("--gres", help="generic resources, e.g. gpu:a100:1 (instead of --gpus)")
    sched.add_argument("-t", "--time-limit", help=f"run time: minutes, MM:SS, HH:MM:SS or D-HH[:MM[:SS]] (default: {config.time_limit})")
    sched.add_argument("-R", "--reservation", help=f"reservation (default: {default_text(config.reservation)})")
    sched.add_argument("-q", "--qos", help=f"quality of service (default: {default_text(config.qos)})")
    sched.add_argument("-C", "--constraint", help=f"node features (default: {default_text(config.constraint)})")
    jup = parser.add_argument_group("Jupyter options")
    jup.add_argument("-i", "--interface", help=f"lab, notebook or voila (default: {config.interface})")
    jup.add_argument("-d", "--notebook-dir", help="directory the session starts in (default: $HOME)")
    env = parser.add_argument_group("software environment options")
    env.add_argument("--conda-env", help="name or path of a conda environment to activate")
    env.add_argument("--conda-yml", help="environment.yml to build the session's conda environment from")
    env.add_argument("--mamba", action="store_true", help="build the --conda-yml environment with mamba")
    env.add_argument("--cache", action="store_true", help="cache the --conda-yml environment with conda-pack")
    env.add_argument("--conda-init", help="path to conda's etc/profile.d/conda.sh")
    env.add_argument("-e", "--env-modules", help="comma-separated modules to load, in order"
                     + (f" (after the site's: {','.join(config.default_modules)})" if config.default_modules else ""))
    env.add_argument("--append-modulepath", action="append", metavar="PATH", help="add PATH to MODULEPATH (repeatable)")
    env.add_argument("-s", "--sif", help="container image: a local file or a docker://, library://, oras://, shub:// URI")
    env.add_argument("-B", "--bind", help="comma-separated bind paths for the container")
    env.add_argument("--nv", action="store_true", help="NVIDIA GPU support in the container")
    env.add_argument("--rocm", action="store_true", help="AMD GPU support in the container")


def make_parser(config: Any) -> Parser:
    parser = Parser(prog=PROG, description="Private, HTTPS, token-protected Jupyter sessions as Slurm jobs.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    gen = commands.add_parser("generate", help="print the job script (for a manual sbatch)",
                              description="Print a self-contained job script; `sbatch` it to get a session.")
    add_launch_options(gen, config)
    run = commands.add_parser("launch", help="submit a session and print its URL",
                              description="Submit a Jupyter session and print its HTTPS URL (last line of stdout).")
    add_launch_options(run, config)
    run.add_argument("-Q", "--quiet", action="store_true", help="print only the URL")
    helper = commands.add_parser("help", help="show help for a command")
    helper.add_argument("topic", nargs="?", choices=["generate", "launch", "help"])
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args_list: List[str] = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["--version"]:
        print(f"{PROG} {__version__}")
        return 0
    from galyleo import config as site

    try:
        loaded = site.load()
    except UsageError as exc:
        fail(str(exc))
    if loaded.warning:
        sys.stderr.write(f"{PROG}: warning: {loaded.warning}\n")
    parser = make_parser(loaded.config)
    args = parser.parse_args(args_list)
    if args.command in (None, "help"):
        return show_help(parser, getattr(args, "topic", None))
    try:
        return run_command(args, loaded.config)
    except UsageError as exc:
        fail(str(exc))
    except GalyleoError as exc:
        fail(str(exc), exc.exit_status)
    except KeyboardInterrupt:
        fail("interrupted", 130)


def show_help(parser: Parser, topic: Optional[str]) -> int:
    if topic:
        parser.parse_args([topic, "--help"])
    parser.print_help()
    return 0


def run_command(args: argparse.Namespace, config: Any) -> int:
    from galyleo import spec

    launch_spec = spec.build(args, config)
    if args.command == "generate":
        from galyleo import render

        sys.stdout.write(render.render(launch_spec, config))
        return 0
    from galyleo import launch

    return launch.run(launch_spec, config, quiet=args.quiet)
