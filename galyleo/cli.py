"""The command line: argparse only. Each handler reads as a few calls down the pipeline.

command line + Config -> spec.build -> render -> (launch: launch.run) -> stdout.
Usage errors print one line on stderr and exit 2; nothing else happens first.
"""

from __future__ import annotations

import argparse
import sys

from galyleo import __version__
from galyleo.errors import GalyleoError, UsageError
from galyleo.startup import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any, Callable, Dict, List, NoReturn, Optional, Sequence, Tuple

PROG = "galyleo"
PRESETS: Dict[str, Dict[str, Any]] = {}  # the loaded `[presets.NAME]` tables, for help and completion (run sets it)


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump), exit status 2, and no abbreviations:
    `--tim` must not silently mean `--time-limit` (nor `stop --al` mean `--all`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
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


# Set by main when the command line holds --json: a failure is then also one JSON object on stdout.
ERRORS_AS_JSON = [False]


def fail(message: str, status: int = 2) -> NoReturn:
    """One line on stderr and exit `status`; with --json also `{"error", "exit"}` on stdout
    (docs/session.schema.json), so that a portal never parses prose."""
    sys.stderr.write(f"{PROG}: error: {message}\n")
    if ERRORS_AS_JSON[0]:
        import json

        try:
            print(json.dumps({"error": message, "exit": status}), flush=True)
        except (BrokenPipeError, ValueError):
            pass
    sys.exit(status)


def default_text(value: object, unset: str = "none") -> str:
    return str(value) if value not in ("", 0, None) else unset


def add_launch_options(parser: argparse.ArgumentParser, config: Any) -> None:
    """Every option `generate` and `launch` share; help shows this site's defaults."""
    sched = parser.add_argument_group("scheduler options")
    sched.add_argument("-A", "--account", help=f"account to charge (default: {default_text(config.account)})")
    sched.add_argument("-p", "--partition",
                       help=f"partition (default: {default_text(config.partition, 'Slurm default')})")
    sched.add_argument("-c", "--cpus", help=f"CPUs for the job (default: {config.cpus})")
    sched.add_argument("-m", "--memory",
                       help="memory: GB (4, 4G, 4g) or Slurm's units (4096M, 1T)"
                            f" (default: {default_text(config.memory, 'Slurm default')})")
    sched.add_argument("-g", "--gpus", help=f"number of GPUs (default: {default_text(config.gpus)})")
    sched.add_argument("--gres", help="generic resources, e.g. gpu:a100:1 (instead of --gpus)")
    sched.add_argument("-t", "--time-limit",
                       help=f"run time: minutes, MM:SS, HH:MM:SS or D-HH[:MM[:SS]] (default: {config.time_limit})")
    sched.add_argument("-R", "--reservation", help=f"reservation (default: {default_text(config.reservation)})")
    sched.add_argument("-q", "--qos", help=f"quality of service (default: {default_text(config.qos)})")
    sched.add_argument("-C", "--constraint", help=f"node features (default: {default_text(config.constraint)})")
    sched.add_argument("-w", "--nodelist", help="run on these nodes, e.g. node[01-04] (sbatch --nodelist)")
    sched.add_argument("-x", "--exclude", help="never run on these nodes (sbatch --exclude)")
    sched.add_argument("--exclusive", action="store_true", help="no other job on the node (sbatch --exclusive)")
    sched.add_argument("--sbatch", action="append", metavar="OPTION",
                       help="any other sbatch option, as one word: --sbatch=--mail-type=END (repeatable)")
    jup = parser.add_argument_group("Jupyter options")
    jup.add_argument("-i", "--interface", help=f"lab, notebook or voila (default: {config.interface})")
    jup.add_argument("-d", "--notebook-dir", help="directory the session starts in (default: $HOME)")
    cap = f", at most {config.idle_timeout_max}" if config.idle_timeout_max else ""
    jup.add_argument("--idle-timeout", metavar="MINUTES",
                     help=f"end the session after MINUTES with no kernel running and no request; 0 = never"
                          f" (lab and notebook; default: {config.idle_timeout}{cap})")
    allowed = "|".join(config.connect_allowed)
    jup.add_argument("--connect", metavar=allowed or "MODE",
                     help=f"how your browser reaches the session: satellite (HTTPS proxy) or ssh (a tunnel you open"
                          f" from your laptop; launch waits and prints the ssh command) (default: {config.connect};"
                          f" this site allows: {', '.join(config.connect_allowed)})")
    names = ", ".join(sorted(PRESETS)) or "none defined"
    sched.add_argument("--preset", metavar="NAME",
                       help=f"start from a named set of options ([presets.NAME] in the site or your config file;"
                            f" options given override it) (here: {names})")
    env = parser.add_argument_group("software environment options")
    env.add_argument("--conda-env", help="name or path of a conda environment to activate")
    env.add_argument("--conda-yml", help="environment.yml to build the session's conda environment from")
    env.add_argument("--mamba", action="store_true", help="build the --conda-yml environment with mamba")
    env.add_argument("--cache", action="store_true", help="cache the --conda-yml environment with conda-pack")
    env.add_argument("--conda-init", help="path to conda's etc/profile.d/conda.sh")
    env.add_argument("-e", "--env-modules", help="comma-separated modules to load, in order"
                     + (f" (after the site's: {','.join(config.default_modules)})" if config.default_modules else ""))
    env.add_argument("--append-modulepath", action="append", metavar="PATH", help="add PATH to MODULEPATH (repeatable)")
    env.add_argument("-s", "--sif",
                     help="container image: a local file or a docker://, library://, oras://, shub:// URI")
    env.add_argument("-B", "--bind", help="comma-separated bind paths for the container")
    env.add_argument("--nv", action="store_true", help="NVIDIA GPU support in the container")
    env.add_argument("--rocm", action="store_true", help="AMD GPU support in the container")


def add_launch(parser: argparse.ArgumentParser, config: Any) -> None:
    add_launch_options(parser, config)
    out = parser.add_argument_group("output options")
    out.add_argument("-Q", "--quiet", action="store_true", help="print only the URL")
    out.add_argument("--json", action="store_true", help="print one JSON document (see README); words go to stderr")
    out.add_argument("--wait", action="store_true", help="follow the session on stderr until its URL answers")
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
    parser.add_argument("--json", action="store_true", help="one JSON document")


def add_status(parser: argparse.ArgumentParser, config: Any) -> None:
    add_session_id(parser)
    parser.add_argument("--json", action="store_true", help="one JSON document")


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
    show = actions.add_parser("show", help="each setting, its value and where it comes from")
    show.add_argument("--json", action="store_true", help="one JSON document")
    from galyleo.config import Config

    keys = ", ".join(sorted(Config.__annotations__))
    setter = actions.add_parser("set", help="set KEY to VALUE in your user config file",
                                description=f"Set KEY to VALUE in your user config file. KEY is one of: {keys}.")
    setter.add_argument("key", help="the setting (see above; `galyleo config show` shows them all)")
    setter.add_argument("value")
    checker = actions.add_parser("check", help="check a config file: one line per problem, exit 0 or 2")
    checker.add_argument("file", nargs="?", help="the file (default: this site's galyleo.toml)")
    unsetter = actions.add_parser("unset", help="remove KEY from your user config file (back to the site's value)")
    unsetter.add_argument("key", help="the setting (`galyleo config show` shows them all)")


def add_cache(parser: argparse.ArgumentParser, config: Any) -> None:
    actions = parser.add_subparsers(dest="cache_command", metavar="ACTION", parser_class=Parser)
    actions.add_parser("list", help="the cached environments: key, size, date, name, platform, yml")
    remover = actions.add_parser("rm", help="remove cached environments by key (or --all)")
    remover.add_argument("keys", nargs="*", metavar="key", help="keys or unique key prefixes from `cache list`")
    remover.add_argument("--all", action="store_true", help="every cached environment")


def add_completion(parser: argparse.ArgumentParser, config: Any) -> None:
    parser.add_argument("shell", choices=["bash", "zsh"])


def add_help(parser: argparse.ArgumentParser, config: Any) -> None:
    parser.add_argument("topic", nargs="?", choices=sorted(COMMANDS))


# name -> (one-line help, description, what adds its arguments); the order of `galyleo help`.
COMMANDS: Dict[str, Tuple[str, str, Callable[[argparse.ArgumentParser, Any], None]]] = {
    "launch": ("submit a session and print its URL",
               "Submit a Jupyter session and print its HTTPS URL (last line of stdout).", add_launch),
    "generate": ("print the job script (for a manual sbatch)",
                 "Print a self-contained job script; `sbatch` it to get a session.", add_launch_options),
    "relaunch": ("a new session with an earlier one's options (options given override them)",
                 "Launch a new session with the options of an earlier one (ended, running or a plain sbatch); "
                 "any option given overrides the recorded one. --dry-run shows the result.", add_relaunch),
    "list": ("your sessions, one line each", "", add_list),
    "status": ("everything known about one session", "", add_status),
    "open": ("print a session's URL again", "", lambda parser, config: add_session_id(parser)),
    "logs": ("print a session's job output", "", add_logs),
    "stop": ("end sessions (scancel; the alias is destroyed once)", "", add_stop),
    "clean": ("remove files of ended sessions (never a live one)", "", add_clean),
    "config": ("show, set or unset your defaults", "", add_config),
    "cache": ("list or remove cached --conda-yml environments (conda-pack)", "", add_cache),
    "completion": ("print a shell completion script", "", add_completion),
    "help": ("show help for a command", "", add_help),
}
TOP_DESCRIPTION = ("Private, HTTPS, token-protected Jupyter sessions as Slurm jobs. From a laptop: "
                   "galyleo --host HOST COMMAND ... runs COMMAND on HOST over ssh (galyleo --host --help).")


def make_parser(config: Any, with_options: bool = True) -> Parser:
    """The whole command tree; without options (top-level help), no command's arguments
    are added and `config` is not read."""
    parser = Parser(prog=PROG, description=TOP_DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name, (summary, description, add_arguments) in COMMANDS.items():
        sub = commands.add_parser(name, help=summary, description=description or None)
        if with_options:
            add_arguments(sub, config)
    return parser


def command_parser(name: str, config: Any) -> Parser:
    """One command's parser alone, as `galyleo NAME` shows it: building the other
    commands' parsers would be most of argparse's cost."""
    summary, description, add_arguments = COMMANDS[name]
    parser = Parser(prog=f"{PROG} {name}", description=description or None)
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


def is_top_level_help(argv: List[str]) -> bool:
    return argv in ([], ["help"], ["-h"], ["--help"])


def main(argv: Optional[Sequence[str]] = None) -> int:
    """`run`, with no traceback ever: what is not galyleo's own error is one line too."""
    ERRORS_AS_JSON[0] = "--json" in (sys.argv[1:] if argv is None else argv)
    try:
        return run(argv)
    except BrokenPipeError:  # `galyleo generate | head`: the reader has all it wanted
        quiet_stdout()
        return 141
    except EOFError:
        fail("no answer (end of input)", 1)
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        fail(f"{where}{exc.strerror or exc}", 1)
    except Exception as exc:  # a bug in galyleo: still one line, with what to report
        fail(f"internal error ({type(exc).__name__}: {str(exc)[:200]}); please report it", 70)


def quiet_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's own flush at exit cannot fail again."""
    import os

    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def run(argv: Optional[Sequence[str]] = None) -> int:
    args_list: List[str] = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["--version"]:
        print(f"{PROG} {__version__}")
        return 0
    if args_list[:1] and args_list[0].partition("=")[0] == "--host":  # from a laptop: remote.py
        from galyleo import remote

        return remote.main(args_list, fail)
    if is_top_level_help(args_list):  # names the commands only: no site defaults to read
        make_parser(None, with_options=False).print_help()
        return 0
    from galyleo import config as site

    if args_list[:2] == ["config", "check"] and len(args_list) <= 3 and not any(a.startswith("-") for a in args_list):
        from galyleo import config_commands  # before loading: a broken site file is what it reports

        try:
            return config_commands.config_check(args_list[2] if args_list[2:] else None)
        except UsageError as exc:
            fail(str(exc))
    try:
        loaded = site.load()
    except UsageError as exc:
        fail(str(exc))
    PRESETS.clear()
    PRESETS.update(loaded.presets)
    args = parse(args_list, loaded.config)
    if loaded.warning and args.command not in ("completion",):
        sys.stderr.write(f"{PROG}: warning: {loaded.warning}\n")
    if args.command in (None, "help"):
        return show_help(loaded.config, getattr(args, "topic", None))
    try:
        return run_command(args, loaded)
    except UsageError as exc:
        fail(str(exc))
    except GalyleoError as exc:
        fail(str(exc), exc.exit_status)
    except KeyboardInterrupt as exc:  # SIGINT, or a held TERM/HUP/QUIT delivered (interrupts.Terminated)
        from galyleo.interrupts import Terminated

        if isinstance(exc, Terminated):
            fail(exc.words, 128 + exc.signum)
        fail("interrupted", 130)


def show_help(config: Any, topic: Optional[str]) -> int:
    if topic:
        parse([topic, "--help"], config)
    make_parser(config, with_options=False).print_help()
    return 0


def run_command(args: argparse.Namespace, loaded: Any) -> int:
    config = loaded.config
    if args.command in ("generate", "launch"):
        return build_and_run(preset(args, config), config)
    if args.command == "relaunch":
        from galyleo import relaunch

        return build_and_run(relaunch.fill(preset(args, config), config, command_parser("launch", config)), config)
    if args.command in ("list", "status", "open", "logs"):
        from galyleo import session_commands

        if args.command == "list":
            return session_commands.list_sessions(config, args.all, args.json)
        if args.command == "status":
            return session_commands.status(config, args.id, args.json)
        if args.command == "open":
            return session_commands.open_url(config, args.id)
        return session_commands.logs(config, args.id, args.follow)
    if args.command in ("stop", "clean"):
        from galyleo import stop

        if args.command == "clean":
            return stop.clean(config, args.yes, args.ids, days(args.older_than, args.ids))
        if args.all and args.ids:
            raise UsageError("stop: give session ids or --all, not both")
        return stop.stop(config, args.ids, args.all, args.yes)
    if args.command == "cache":
        from galyleo import condacache

        if args.cache_command == "rm":
            return condacache.remove(config, args.keys, args.all)
        return condacache.show(config)
    if args.command == "config":
        from galyleo import config_commands

        if args.config_command == "set":
            return config_commands.config_set(args.key, args.value, config)
        if args.config_command == "unset":
            return config_commands.config_unset(args.key)
        return config_commands.config_show(loaded, getattr(args, "json", False))
    sys.stdout.write(completion_script(make_parser(config), args.shell, config))
    return 0


def preset(args: argparse.Namespace, config: Any) -> argparse.Namespace:
    """ARGS with the options of --preset NAME filled in where the command line gave none."""
    name = getattr(args, "preset", None)
    if name is None:
        return args
    if name not in PRESETS:
        raise UsageError(f"--preset {name!r}: no such preset (known: {', '.join(sorted(PRESETS)) or 'none'})")
    actions = {a.dest: a for a in command_parser("generate", config)._actions if a.option_strings}
    for key, value in PRESETS[name].items():
        dest = str(key).replace("-", "_")
        action = actions.get(dest)
        if action is None or dest in ("help", "preset"):
            raise UsageError(f"preset {name}: {key!r} is not a launch option")
        if getattr(args, dest) not in (None, False, []):
            continue  # given on the command line: it wins
        setattr(args, dest, preset_value(name, key, value, action))
    return args


def preset_value(name: str, key: str, value: Any, action: argparse.Action) -> Any:
    """A preset's VALUE as argparse would have stored the option (flag, repeatable, or text)."""
    if isinstance(action, argparse._StoreTrueAction):
        if not isinstance(value, bool):
            raise UsageError(f"preset {name}: {key} = {value!r}: expected true or false")
        return value
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in items):
        raise UsageError(f"preset {name}: {key} = {value!r}: expected text, a number, or a list of them")
    if isinstance(action, argparse._AppendAction):
        return [str(v) for v in items]
    return ",".join(str(v) for v in items)


def days(text: Optional[str], ids: List[str]) -> Optional[int]:
    """`clean --older-than DAYS`: whole days, 0 to 36500; not with session ids."""
    if text is None:
        return None
    if ids:
        raise UsageError("clean: give session ids or --older-than, not both")
    if not text.isascii() or not text.isdigit() or len(text) > 5 or int(text) > 36500:
        raise UsageError(f"--older-than {text!r}: expected whole days from 0 to 36500")
    return int(text)


def build_and_run(args: argparse.Namespace, config: Any) -> int:
    from galyleo import spec

    launch_spec = spec.build(args, config)
    if args.command == "generate":
        from galyleo import render

        sys.stdout.write(render.render(launch_spec, config))
        return 0
    from galyleo import launch

    if sum((args.quiet, args.json, args.dry_run)) > 1:
        raise UsageError("--quiet, --json and --dry-run: choose one")
    if not args.no_preflight:  # --dry-run too: the checks call no network and submit nothing
        from galyleo import preflight, startup

        warm = None if args.dry_run else startup.warm_up()
        preflight.check(launch_spec, config)
        if warm:
            warm.join()
    from dataclasses import replace

    from galyleo.relaunch import words

    launch_spec = replace(launch_spec, asked=tuple(words(args, command_parser("launch", config))))
    options = launch.Options(quiet=args.quiet, json=args.json, wait=args.wait, dry_run=args.dry_run)
    return launch.run(launch_spec, config, options)


def completion_script(parser: Parser, shell: str, config: Any) -> str:
    """Completion generated from this parser: commands, options, `-i` values, `config set` keys,
    session job ids (records, and this user's jobs by galyleo's job name), partitions (sinfo),
    and modules for `-e` from Lmod or Environment Modules when they answer within 2 s.
    Every value is shell-quoted where it is used, as in the job script."""
    import shlex
    from dataclasses import fields

    from galyleo import contract, slurm
    from galyleo.spec import INTERFACE_COMMANDS

    sh = shlex.quote

    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    cases = []
    for name, sub in subparsers.choices.items():
        words = " ".join(sorted(o for a in sub._actions for o in a.option_strings))
        cases.append(f"    {sh(name)}) opts={sh(words)} ;;")
    names = " ".join(subparsers.choices)
    body = "\n".join(cases)
    from galyleo.contract import user_folder

    folder = user_folder(config.output_dir)
    home_relative = folder == "~" or folder.startswith("~/")
    folder_sh = '"$HOME"' + (shlex.quote(folder[1:]) if folder[1:] else "") if home_relative else shlex.quote(folder)
    keys = " ".join(f.name for f in fields(config))
    interfaces = " ".join(INTERFACE_COMMANDS)
    connects = " ".join(m for m in config.connect_allowed if m in contract.CONNECT_MODES)  # compgen -W expands it
    presets = " ".join(sorted(PRESETS))  # names are plain (config.preset_tables)
    script = f"""# galyleo {shell} completion: eval "$(galyleo completion {shell})"
# _galyleo_sessions: job ids of recorded sessions, and of this user's jobs named {sh(config.job_name)}.
_galyleo_sessions() {{
  {{
    sed -n 's/.*"job_id": *"\\([0-9][0-9]*\\)".*/\\1/p' {folder_sh}/{contract.RECORD_NAMES} 2>/dev/null
    echo  # a record without a final newline
    {slurm.shell_job_ids(config.job_name)} 2>/dev/null
  }} | sort -u
}}
# _galyleo_live: those of them Slurm still lists (stop and open make sense only for them).
_galyleo_live() {{
  comm -12 <(_galyleo_sessions) <({slurm.shell_my_job_ids()} 2>/dev/null | sort -u)
}}
# _galyleo_modules: module names, from Lmod or Environment Modules if either answers within 2 s.
_galyleo_modules() {{
  local tool=${{LMOD_CMD:-${{MODULES_CMD:-}}}}
  [[ -n $tool ]] || return 0
  timeout 2 "$tool" bash -t avail 2>&1 >/dev/null | sed -n '/:$/d; s/(.*)$//; /^[^ ]/p'
}}
_galyleo() {{
  local cur=${{COMP_WORDS[COMP_CWORD]}} prev=${{COMP_WORDS[COMP_CWORD-1]}} opts words='' files=-f
  if [[ $COMP_CWORD -eq 1 ]]; then
    COMPREPLY=($(compgen -W {sh(names)} -- "$cur"))
    return
  fi
  if [[ $prev == = && $COMP_CWORD -gt 2 ]]; then  # --option=value: bash splits at '='
    prev=${{COMP_WORDS[COMP_CWORD-2]}}
  fi
  case $prev in
    -i|--interface) COMPREPLY=($(compgen -W {sh(interfaces)} -- "$cur")); return ;;
    --connect) COMPREPLY=($(compgen -W {sh(connects)} -- "$cur")); return ;;
    --preset) COMPREPLY=($(compgen -W {sh(presets)} -- "$cur")); return ;;
    -c|--cpus|-m|--memory|-g|--gpus|-t|--time-limit|--idle-timeout|--older-than|-A|--account|-R|--reservation|\
    -q|--qos|-C|--constraint|--gres|-w|--nodelist|-x|--exclude|--sbatch) COMPREPLY=(); return ;;  # no file names
    -p|--partition) COMPREPLY=($(compgen -W "$({slurm.SHELL_PARTITIONS} 2>/dev/null)" -- "$cur")); return ;;
    -e|--env-modules)
      local head=''
      [[ $cur == *,* ]] && head=${{cur%,*}},
      COMPREPLY=($(compgen -P "$head" -W "$(_galyleo_modules)" -- "${{cur##*,}}"))
      return ;;
  esac
  case ${{COMP_WORDS[1]}} in
{body}
    *) opts='' ;;
  esac
  case ${{COMP_WORDS[1]}} in
    launch|generate) ;;
    stop|open) files=''; [[ $cur == -* ]] || words=$(_galyleo_live) ;;
    status|logs|relaunch|clean) files=''; [[ $cur == -* ]] || words=$(_galyleo_sessions) ;;
    config) files=''; [[ $COMP_CWORD -eq 2 ]] && words='show set unset check'
      [[ $COMP_CWORD -eq 3 && ${{COMP_WORDS[2]}} == *set ]] && words={sh(keys)} ;;
    cache) files=''; [[ $COMP_CWORD -eq 2 ]] && words='list rm' ;;
    completion) files=''; words='bash zsh' ;;
    help) files=''; words={sh(names)} ;;
    *) files='' ;;
  esac
  [[ -n $words && $cur != -* ]] && opts=''  # values first; options once a '-' is typed
  COMPREPLY=($(compgen -W "$opts $words" $files -- "$cur"))
}}
"""
    if shell == "zsh":
        return script + "autoload -U +X bashcompinit && bashcompinit\ncomplete -F _galyleo galyleo\n"
    return script + "complete -F _galyleo galyleo\n"
