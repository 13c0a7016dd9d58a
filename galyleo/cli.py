"""The command line's dispatch: each handler reads as a few calls down the pipeline.

command line + Config -> spec.build -> render -> (launch: launch.run) -> stdout.
The commands and their arguments are arguments.py's; usage errors print one line on stderr
and exit 2 (exits.fail); nothing else happens first.
"""

from __future__ import annotations

import argparse
import sys

from galyleo import TYPE_CHECKING, __version__
from galyleo.arguments import PRESETS, command_parser, make_parser, parse
from galyleo.errors import GalyleoError, UsageError
from galyleo.exits import ERRORS_AS_JSON, PROG, fail, quiet_stdout

if TYPE_CHECKING:
    from typing import Any, List, Optional, Sequence


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
    from galyleo import configfiles

    if args_list[:2] == ["config", "check"] and len(args_list) <= 3 and not any(a.startswith("-") for a in args_list):
        from galyleo import config_commands  # before loading: a broken site file is what it reports

        try:
            return config_commands.config_check(args_list[2] if args_list[2:] else None)
        except UsageError as exc:
            fail(str(exc))
    try:
        loaded = configfiles.load()
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
        return build_and_run(with_preset(args, config), config)
    if args.command == "relaunch":
        from galyleo import relaunch

        return build_and_run(relaunch.fill(with_preset(args, config), config, command_parser("launch", config)), config)
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


def with_preset(args: argparse.Namespace, config: Any) -> argparse.Namespace:
    from galyleo import presets

    return presets.apply(args, PRESETS, command_parser("generate", config))


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


def completion_script(parser: argparse.ArgumentParser, shell: str, config: Any) -> str:
    """`galyleo completion SHELL`'s script for this parser and site (completion.py)."""
    from galyleo import completion

    return completion.script(parser, shell, config, PRESETS)
