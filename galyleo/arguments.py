"""The command tree: each command's arguments and help, as argparse parsers.

Input: the site's Config (help shows this site's defaults) and its presets. Output: parsers;
nothing here runs a command (cli.py does). The help must be complete on its own: a user on a
login node has no other manual. Imports argparse and the help texts only: `help` loads this.
"""

from __future__ import annotations

import argparse

from galyleo import TYPE_CHECKING, __version__, apps, helptext
from galyleo.exits import PROG, fail

if TYPE_CHECKING:
    from typing import Any, Callable, Dict, List, NoReturn, Tuple

PRESETS: Dict[str, Dict[str, Any]] = {}  # the loaded `[presets.NAME]` tables, for help and completion (cli.run sets it)


class Formatter(argparse.HelpFormatter):
    """argparse's wrapping, with a blank line in a description or epilog kept as a paragraph break."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return "\n\n".join(super(Formatter, self)._fill_text(part, width, indent) for part in text.split("\n\n"))


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump), exit status 2, and no abbreviations:
    `--tim` must not silently mean `--time-limit` (nor `stop --al` mean `--all`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        fail(message.replace("\n", " ") + self.suggestion(message))

    def suggestion(self, message: str) -> str:
        """` (did you mean --time-limit?)` for a mistyped long option, from this command's own."""
        if not message.startswith("unrecognized arguments: "):
            return ""
        import difflib

        known = [o for action in self._actions for o in action.option_strings if o.startswith("--")]
        for word in (w for w in message.split(": ", 1)[1].split() if w.startswith("--")):
            close = difflib.get_close_matches(word.split("=", 1)[0], known, n=1, cutoff=0.8)
            if close:
                return f" (did you mean {close[0]}?)"
        return ""


def default_text(value: object, unset: str = "none") -> str:
    return str(value) if value not in ("", 0, None) else unset


def add_launch_options(parser: argparse.ArgumentParser, config: Any) -> None:
    """Every option `generate` and `launch` share; help shows this site's defaults."""
    sched = add_scheduler_options(parser, config)
    add_jupyter_options(parser, config)
    names = ", ".join(sorted(PRESETS)) or "none defined"
    sched.add_argument("--preset", metavar="NAME", help=f"{helptext.PRESET} (here: {names})")
    add_environment_options(parser, config)
    parser.epilog = helptext.LAUNCH_RULES


def add_scheduler_options(parser: argparse.ArgumentParser, config: Any) -> Any:
    sched = parser.add_argument_group("scheduler options")
    required = "; required at this site" if config.require_account and not config.account else ""
    sched.add_argument("-A", "--account", help=f"account to charge (default: {default_text(config.account)}){required}")
    sched.add_argument("-p", "--partition", help="partition, or a comma list of them"
                       f" (default: {default_text(config.partition, 'Slurm default')})")
    sched.add_argument("-c", "--cpus", help=f"CPUs for the job (default: {config.cpus}), 1 to 100000")
    sched.add_argument("-m", "--memory",
                       help="memory: GB (4, 4G, 4g) or Slurm's units (4096M, 1T)"
                            f" (default: {default_text(config.memory, 'Slurm default')})")
    sched.add_argument("-g", "--gpus", help=f"number of GPUs (default: {default_text(config.gpus)})")
    sched.add_argument("--gres", help="generic resources, e.g. gpu:a100:1 (instead of --gpus)")
    cap = f"; at most {config.time_limit_max} at this site" if config.time_limit_max else ""
    sched.add_argument("-t", "--time-limit",
                       help=f"run time: minutes, MM:SS, HH:MM:SS or D-HH[:MM[:SS]] (default: {config.time_limit}){cap};"
                            " near its end the job writes a warning to its output")
    sched.add_argument("-R", "--reservation", help=f"reservation (default: {default_text(config.reservation)})")
    sched.add_argument("-q", "--qos", help=f"quality of service (default: {default_text(config.qos)})")
    sched.add_argument("-C", "--constraint", help=f"node features (default: {default_text(config.constraint)})")
    sched.add_argument("-w", "--nodelist", help="run on these nodes, e.g. node[01-04] (sbatch --nodelist)")
    sched.add_argument("-x", "--exclude", help="never run on these nodes (sbatch --exclude)")
    sched.add_argument("--exclusive", action="store_true", help="no other job on the node (sbatch --exclusive)")
    sched.add_argument("--sbatch", action="append", metavar="OPTION", help=helptext.SBATCH)
    return sched


def add_jupyter_options(parser: argparse.ArgumentParser, config: Any) -> None:
    jup = parser.add_argument_group("Jupyter options")
    others = "".join(f"; {app.name}: {app.summary}, needs {app.provides}"
                     for app in apps.APPS.values() if app.provides != apps.JUPYTER)
    jup.add_argument("-i", "--interface", help=f"{apps.choices()} (default: {config.interface}){others}")
    jup.add_argument("-d", "--notebook-dir", help="directory the session starts in (default: $HOME)")
    cap = f", at most {config.idle_timeout_max}" if config.idle_timeout_max else ""
    jup.add_argument("--idle-timeout", metavar="MINUTES",
                     help=f"end the session after MINUTES with no kernel running and no request; 0 = never"
                          f" ({apps.choices('and', apps.CULLING)}; default: {config.idle_timeout}{cap})."
                          f" {helptext.IDLE}")
    allowed = "|".join(config.connect_allowed)
    jup.add_argument("--connect", metavar=allowed or "MODE",
                     help=f"how your browser reaches the session: satellite (HTTPS proxy) or ssh (a tunnel you open"
                          f" from your laptop; launch waits and prints the ssh command) (default: {config.connect};"
                          f" this site allows: {', '.join(config.connect_allowed)})")


def add_environment_options(parser: argparse.ArgumentParser, config: Any) -> None:
    env = parser.add_argument_group("software environment options")
    env.add_argument("--conda-env", help="name or path of a conda environment to activate")
    env.add_argument("--conda-yml", help="environment.yml to build the session's conda environment from (in the job)")
    env.add_argument("--mamba", action="store_true", help="build the --conda-yml environment with mamba")
    env.add_argument("--cache", action="store_true", help=helptext.CACHE)
    env.add_argument("--conda-init",
                     help="path to conda's etc/profile.d/conda.sh (when your ~/.bashrc does not set up conda)")
    env.add_argument("-e", "--env-modules", help="comma-separated modules to load, in order"
                     + (f" (after the site's: {','.join(config.default_modules)})" if config.default_modules else ""))
    env.add_argument("--append-modulepath", action="append", metavar="PATH", help="add PATH to MODULEPATH (repeatable)")
    env.add_argument("-s", "--sif", help="container image: a local file or a docker://, library://, oras://,"
                                         " shub:// URI (pulled in the job before Jupyter starts)")
    env.add_argument("-B", "--bind", help="comma-separated bind paths for the container, each src[:dest[:opts]]")
    env.add_argument("--nv", action="store_true", help="NVIDIA GPU support in the container")
    env.add_argument("--rocm", action="store_true", help="AMD GPU support in the container")


def add_launch(parser: argparse.ArgumentParser, config: Any) -> None:
    add_launch_options(parser, config)
    out = parser.add_argument_group("output options")
    out.add_argument("-Q", "--quiet", action="store_true",
                     help="print only the URL (ssh mode: the ssh command, then the URL)")
    out.add_argument("--json", action="store_true", help=helptext.LAUNCH_JSON)
    out.add_argument("--wait", action="store_true", help=helptext.WAIT)
    out.add_argument("--dry-run", action="store_true",
                     help="run the login-node checks, show the script and the calls; make none, write nothing")
    out.add_argument("--no-preflight", action="store_true",
                     help="skip the login-node checks (conda env, yml, modules, Jupyter's command)")


def add_relaunch(parser: argparse.ArgumentParser, config: Any) -> None:
    parser.add_argument("id", nargs="?", help="job id, alias or name of the earlier session (default: the newest)")
    add_launch(parser, config)


def add_session_id(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("id", nargs="?", help="job id, alias or name (default: the only live session)")


def add_list(parser: argparse.ArgumentParser, config: Any) -> None:
    parser.add_argument("--all", action="store_true", help="include ended sessions")
    parser.add_argument("--json", action="store_true", help=helptext.LIST_JSON)


def add_status(parser: argparse.ArgumentParser, config: Any) -> None:
    add_session_id(parser)
    parser.add_argument("--json", action="store_true", help=helptext.STATUS_JSON)


def add_logs(parser: argparse.ArgumentParser, config: Any) -> None:
    add_session_id(parser)
    parser.add_argument("-f", "--follow", action="store_true", help="keep printing until the job ends")


def add_stop(parser: argparse.ArgumentParser, config: Any) -> None:
    parser.add_argument("ids", nargs="*", metavar="id", help="job ids, aliases or names (default: the only live one)")
    parser.add_argument("--all", action="store_true", help="every live session (asks first, unless --yes)")
    parser.add_argument("-y", "--yes", action="store_true", help="with --all: do not ask")


def add_clean(parser: argparse.ArgumentParser, config: Any) -> None:
    parser.add_argument("ids", nargs="*", metavar="id", help="only these ended sessions (job ids, aliases or names)")
    parser.add_argument("--older-than", metavar="DAYS", help="only ended sessions created more than DAYS days ago")
    parser.add_argument("-y", "--yes", action="store_true", help="do not ask")


def add_config(parser: argparse.ArgumentParser, config: Any) -> None:
    actions = parser.add_subparsers(dest="config_command", metavar="ACTION", parser_class=Parser)
    show = actions.add_parser("show", help="each setting, its value and where it comes from",
                              description="Each setting, its value and where it comes from.")
    show.add_argument("--json", action="store_true", help="one JSON document: {KEY: {value, from}}")
    from galyleo.config import Config

    keys = ", ".join(sorted(Config.__annotations__))
    setter = actions.add_parser("set", help="set KEY to VALUE in your user config file",
                                description=f"Set KEY to VALUE in your user config file. KEY is one of: {keys}.",
                                epilog=helptext.CONFIG_SET)
    setter.add_argument("key", help="the setting (see above; `galyleo config show` shows them all)")
    setter.add_argument("value", help="its new value, in the form the option takes (a list: a,b)")
    checker = actions.add_parser("check", help="check a config file: one line per problem, exit 0 or 2",
                                 description="Check a config file as loading and launch would: one line per problem"
                                             " and exit 2, or `FILE: ok`.")
    checker.add_argument("file", nargs="?", help="the file (default: this site's galyleo.toml)")
    unsetter = actions.add_parser("unset", help="remove KEY from your user config file (back to the site's value)",
                                  description="Remove KEY from your user config file: the site's (or built-in)"
                                              " value applies again.")
    unsetter.add_argument("key", help="the setting (`galyleo config show` shows them all)")


def add_cache(parser: argparse.ArgumentParser, config: Any) -> None:
    actions = parser.add_subparsers(dest="cache_command", metavar="ACTION", parser_class=Parser)
    actions.add_parser("list", help="the cached environments: key, size, date, name, platform, yml",
                       description="The cached environments: key, size, date, name, platform, yml.")
    remover = actions.add_parser("rm", help="remove cached environments by key (or --all)",
                                 description="Remove cached environments by key (or --all).")
    remover.add_argument("keys", nargs="*", metavar="key", help="keys or unique key prefixes from `cache list`")
    remover.add_argument("--all", action="store_true", help="every cached environment")


def add_completion(parser: argparse.ArgumentParser, config: Any) -> None:
    parser.add_argument("shell", choices=["bash", "zsh"], help="the shell to complete in")


def add_help(parser: argparse.ArgumentParser, config: Any) -> None:
    parser.add_argument("topic", nargs="?", choices=sorted(COMMANDS), help="the command to explain")


# name -> (one-line help, description, what adds its arguments); the order of `galyleo help`.
COMMANDS: Dict[str, Tuple[str, str, Callable[[argparse.ArgumentParser, Any], None]]] = {
    "launch": ("submit a session and print its URL", helptext.LAUNCH, add_launch),
    "generate": ("print the job script (for a manual sbatch)", helptext.GENERATE, add_launch_options),
    "relaunch": ("a new session with an earlier one's options (options given override them)", helptext.RELAUNCH,
                 add_relaunch),
    "list": ("your sessions, one line each", helptext.LIST, add_list),
    "status": ("everything known about one session", helptext.STATUS, add_status),
    "open": ("print a session's URL again", helptext.OPEN, lambda parser, config: add_session_id(parser)),
    "logs": ("print a session's job output", helptext.LOGS, add_logs),
    "stop": ("end sessions (scancel; the alias is destroyed once)", helptext.STOP, add_stop),
    "clean": ("remove files of ended sessions (never a live one)", helptext.CLEAN, add_clean),
    "config": ("show, set or unset your defaults", helptext.CONFIG, add_config),
    "cache": ("list or remove cached --conda-yml environments (conda-pack)", helptext.CACHE_COMMAND, add_cache),
    "completion": ("print a shell completion script", helptext.COMPLETION, add_completion),
    "help": ("show help for a command", helptext.HELP, add_help),
}


def make_parser(config: Any, with_options: bool = True) -> Parser:
    """The whole command tree; without options (top-level help), no command's arguments
    are added and `config` is not read."""
    parser = Parser(prog=PROG, description=helptext.TOP, epilog=helptext.TOP_EPILOG)
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name, (summary, description, add_arguments) in COMMANDS.items():
        sub = commands.add_parser(name, help=summary, description=description)
        if with_options:
            add_arguments(sub, config)
    return parser


def command_parser(name: str, config: Any) -> Parser:
    """One command's parser alone, as `galyleo NAME` shows it: building the other
    commands' parsers would be most of argparse's cost."""
    summary, description, add_arguments = COMMANDS[name]
    parser = Parser(prog=f"{PROG} {name}", description=description)
    add_arguments(parser, config)
    parser.set_defaults(command=name)
    return parser


def parse(argv: List[str], config: Any) -> argparse.Namespace:
    """`galyleo COMMAND ...` through that command's parser; anything else through the tree."""
    for word in argv:  # argparse before 3.13 turns `--opt=--` into an empty list: the value would vanish
        option, _, value = word.partition("=")
        if option.startswith("--") and value == "--":
            fail(f"{option} '--': not a value this option accepts")
    if argv[:1] and argv[0] in COMMANDS:
        return command_parser(argv[0], config).parse_args(argv[1:])
    return make_parser(config).parse_args(argv)
