"""`galyleo --host HOST COMMAND ...`: run galyleo on HOST from a laptop, over the system's ssh.

The command line is checked here first (bad input: one line, exit 2, no ssh run), then
galyleo runs on HOST over one shared login (sshmaster.py) after a version check. What the
laptop needs from a session (mode, URL, node and port for a tunnel) comes from the remote
galyleo's `--json` documents (docs/session.schema.json), never from its internals.
launch/relaunch and open get a tunnel in ssh mode (localtunnel.py); other commands pass through.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

from galyleo import __version__, localtunnel, sshmaster
from galyleo.errors import GalyleoError, UsageError, bad

HOST = re.compile(r"([A-Za-z0-9_][A-Za-z0-9_.-]{0,63}@)?[A-Za-z0-9_][A-Za-z0-9_.-]{0,252}\Z")
HOST_ACCEPTED = "a host as your ssh config names it, or user@host (letters, digits, '_', '.', '-')"
COMMANDS = ("launch", "relaunch", "generate", "list", "status", "open", "logs", "stop", "clean", "config",
            "cache", "help")
TUNNEL_COMMANDS = ("launch", "relaunch", "open")  # the ones --browser and --stop-on-exit go with
FLAGS = ("--browser", "--stop-on-exit")
USAGE = """usage: galyleo --host HOST [--remote-galyleo PATH] COMMAND [--browser] [--stop-on-exit] ...

Run `galyleo COMMAND ...` on HOST (as `ssh HOST` reaches it: your ssh config, ProxyJump,
keys, known_hosts) over one shared ssh login: a second-factor code is asked once, and not
again for `ssh_persist` minutes (default 30).
  launch, relaunch  satellite mode: print the URL (last line); ssh mode: open the tunnel here,
                    print the local URL and hold it until Ctrl-C (the session keeps running;
                    `galyleo --host HOST open ID` reopens it)
  open [ID]         the same for a running session
  list, status, logs [-f], stop, clean, config, cache, generate, help: as on HOST
laptop options:
  --remote-galyleo PATH  galyleo's command or path on HOST (setting remote_galyleo)
  --browser              open the URL in your browser too
  --stop-on-exit         ssh mode: stop the session when the tunnel closes (Ctrl-C)
settings (your config file, or GALYLEO_<KEY>): ssh_config (ssh -F FILE), ssh_jump
(ProxyJump), ssh_persist (minutes), remote_galyleo.
"""


@dataclass(frozen=True)
class Request:
    """The laptop's part of the command line; `words` go to the remote galyleo."""

    host: str
    words: List[str]
    remote_galyleo: Optional[str] = None
    flags: List[str] = field(default_factory=list)

    @property
    def command(self) -> str:
        return self.words[0]


def parse(argv: List[str]) -> Optional[Request]:
    """`--host HOST [laptop options] COMMAND WORDS...`; None for --help. UsageError otherwise."""
    rest = list(argv)
    host = take_value(rest, "--host")
    if host is None or host in ("-h", "--help"):
        return None
    if not HOST.match(host) or host.startswith("-"):
        raise bad("--host", host, HOST_ACCEPTED)
    path = None
    flags: List[str] = []
    while rest and rest[0].startswith("-"):
        if rest[0] in ("-h", "--help"):
            return None
        if rest[0].partition("=")[0] == "--remote-galyleo":
            path = take_value(rest, "--remote-galyleo")
            if not path or path.startswith("-") or "\n" in path or "\0" in path:
                raise bad("--remote-galyleo", path or "", "galyleo's command or path on the remote host")
        elif rest[0] in FLAGS:
            flags.append(rest.pop(0))
        else:
            raise UsageError(f"--host {host}: {rest[0]!r} is not a laptop option (--remote-galyleo, --browser, "
                             f"--stop-on-exit); the command's options go after it")
    if not rest or rest[0] not in COMMANDS:
        given = repr(rest[0]) if rest else "nothing"
        raise UsageError(f"--host {host}: expected a command to run there ({', '.join(COMMANDS)}), got {given}")
    flags += [w for w in rest if w in FLAGS]
    words = [w for w in rest if w not in FLAGS]
    if flags and words[0] not in TUNNEL_COMMANDS:
        raise UsageError(f"{flags[0]}: only with {', '.join(TUNNEL_COMMANDS)}")
    return Request(host, words, path, flags)


def take_value(rest: List[str], option: str) -> Optional[str]:
    """Remove `OPTION VALUE` or `OPTION=VALUE` from the front of REST and return VALUE."""
    word = rest.pop(0)
    if word.startswith(option + "="):
        return word.split("=", 1)[1]
    if not rest:
        raise UsageError(f"{option}: expected a value")
    return rest.pop(0)


def remote_line(path: str, words: List[str]) -> str:
    """The command line the remote shell runs: every word quoted; a leading `~/` stays expandable."""
    head = "~/" + shlex.quote(path[2:]) if path.startswith("~/") and len(path) > 2 else shlex.quote(path)
    return " ".join([head] + [shlex.quote(word) for word in words])


def main(argv: List[str], fail: Callable[..., Any]) -> int:
    """The whole laptop side, with galyleo's one-line errors (FAIL prints one and exits)."""
    try:
        request = parse(argv)
        if request is None:
            sys.stdout.write(USAGE)
            return 0
        from galyleo import configfiles

        config = configfiles.load().config  # a laptop has no site file: no warning about it
        return run(request, config)
    except UsageError as exc:
        return int(fail(str(exc)))
    except sshmaster.SshFailed as exc:
        return int(fail(str(exc), exc.exit_status))
    except GalyleoError as exc:
        return int(fail(str(exc), exc.exit_status))
    except FileNotFoundError as exc:
        if exc.filename == sshmaster.SSH:
            return int(fail("ssh: not found: --host needs OpenSSH's ssh client on PATH", 127))
        raise
    except KeyboardInterrupt as exc:  # Ctrl-C while ssh logs in or a remote command runs
        from galyleo.interrupts import Terminated

        if isinstance(exc, Terminated):
            return int(fail(exc.words, 128 + exc.signum))
        return int(fail("interrupted", 130))


class Remote:
    """HOST's galyleo over the shared login."""

    def __init__(self, request: Request, config: Any) -> None:
        self.request = request
        self.config = config
        self.host = request.host
        self.path = request.remote_galyleo or config.remote_galyleo
        self.master = sshmaster.make(request.host, config)

    def argv(self, words: List[str]) -> List[str]:
        return self.master.command_argv(remote_line(self.path, words))

    def passthrough(self, words: List[str]) -> int:
        """WORDS run there with this terminal's stdin, stdout and stderr; its exit status."""
        return subprocess.run(self.argv(words)).returncode

    def capture(self, words: List[str]) -> "subprocess.CompletedProcess[str]":
        """WORDS run there, stdout kept (stderr shown as it comes)."""
        return subprocess.run(self.argv(words), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)

    def document(self, words: List[str]) -> Dict[str, Any]:
        """The JSON document WORDS (with --json) print; a failure there (already on stderr) ends here."""
        done = self.capture(words)
        if done.returncode != 0:
            raise Quiet(done.returncode)
        try:
            doc = json.loads(done.stdout)
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            raise GalyleoError(f"{self.host}: galyleo answered something else than a JSON document")
        return doc

    def check_version(self) -> None:
        """HOST's galyleo answers `--version`, at least as new as this one; else one line saying so."""
        done = subprocess.run(self.master.command_argv(remote_line(self.path, ["--version"])),
                              stdin=subprocess.DEVNULL, capture_output=True, text=True)
        if done.returncode == 255:
            sys.stderr.write(done.stderr)
            raise sshmaster.SshFailed(f"ssh to {self.host} failed")
        found = re.match(r"galyleo (\d+(?:\.\d+)*)", done.stdout)
        where = "give its path with --remote-galyleo PATH or the setting remote_galyleo"
        if done.returncode != 0 or not found:
            said = (done.stderr.strip().splitlines() or ["no answer"])[-1][:200]
            raise GalyleoError(f"{self.host}: no galyleo at {self.path!r} ({said}): install it there, or {where}")
        if numbers(found.group(1)) < numbers(__version__):
            raise GalyleoError(f"{self.host}: galyleo {found.group(1)} at {self.path!r} is older than this one "
                               f"({__version__}): update it there, or {where}")


class Quiet(GalyleoError):
    """The remote command failed and said why on stderr: exit with its status, nothing more."""

    def __init__(self, status: int) -> None:
        super().__init__("")
        self.exit_status = status


def numbers(version: str) -> List[int]:
    return [int(part) for part in re.findall(r"\d+", version.split("+")[0])[:3]]


def run(request: Request, config: Any) -> int:
    remote = Remote(request, config)
    sshmaster.ensure(remote.master)
    remote.check_version()
    try:
        if request.command in ("launch", "relaunch"):
            return launch(remote, request.words)
        if request.command == "open":
            return reopen(remote, request.words)
        return remote.passthrough(request.words)
    except Quiet as exc:
        return exc.exit_status


def launch(remote: Remote, words: List[str]) -> int:
    """launch/relaunch there (--json); ssh mode: the tunnel here. --json/--dry-run/--help: as there."""
    if any(w in ("--json", "--dry-run", "-h", "--help") for w in words):
        return remote.passthrough(words)
    quiet = any(w in ("-Q", "--quiet") for w in words)
    doc = remote.document([w for w in words if w not in ("-Q", "--quiet")] + ["--json"])
    if holds_tunnel(doc, remote.config):
        return localtunnel.hold(remote, doc, remote.request.flags, quiet)
    if not quiet:
        print(f"Submitted batch job {doc.get('job_id')} (session {doc.get('name')}) on {remote.host}")
    return localtunnel.show_url(str(doc.get("url", "")), remote.request.flags)


def reopen(remote: Remote, words: List[str]) -> int:
    """open there: a satellite session's URL, or an ssh-mode session's tunnel, here."""
    doc = remote.document(["status", "--json", *words[1:]])
    if holds_tunnel(doc, remote.config):
        return localtunnel.hold(remote, doc, remote.request.flags, quiet=False)
    done = remote.capture(words)
    if done.returncode != 0:
        return done.returncode
    lines = done.stdout.strip().splitlines()
    return localtunnel.show_url(lines[-1] if lines else "", remote.request.flags)


def holds_tunnel(doc: Dict[str, Any], config: Any) -> bool:
    """Whether the session's connection mode (its `connect`) is reached through a tunnel the
    laptop holds (connect/: `laptop_tunnel`); a mode this galyleo does not know: no."""
    from galyleo import connect

    try:
        return bool(connect.of(str(doc.get("connect") or connect.MODES[0]), config).laptop_tunnel)
    except ValueError:
        return False
