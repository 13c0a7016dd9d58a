"""SSH-tunnel mode: the browser reaches the session through an `ssh -L` tunnel from the laptop.

For sites without a Satellite proxy. The server listens on the node's cluster address
with its token, as in satellite mode; the user forwards a port of the laptop's loopback
through the login node with `ssh -L`. Owned here, and rendered into the job (which
restates none of them): the local port (random in a fixed range: launch chooses it, a
plain-`sbatch` job draws it by the rendered rule); the origin the browser has through the
tunnel; the URL file (its two lines: the ssh command, then the local URL) that the job
writes and launch/open read back; and the record a plain-`sbatch` job writes. The job's
node and port are known only once it runs, so launch always waits (`waits`) for the URL file.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

from galyleo import TYPE_CHECKING, contract
from galyleo.connect.base import Connection, Handoff
from galyleo.contract import Record, SessionFiles
from galyleo.errors import GalyleoError, bad

if TYPE_CHECKING:
    from galyleo.slurm import JobInfo

# "Every interface", refused in ssh mode (never bound: the cluster address only): the unspecified
# addresses however spelt ('::', '[::]', '0:0:0:0:0:0:0:0', '::ffff:0.0.0.0', '0', ...) and Jupyter's '*'.
EVERY_INTERFACE = (ipaddress.ip_address("0.0.0.0"), ipaddress.ip_address("::"))  # noqa: S104 (refused, never bound)
WILDCARD = "*"
LOCAL_HOST = "127.0.0.1"  # the laptop end of the tunnel: its loopback only, never a shared address
# The local port: LOCAL_PORT_MIN + a random number % LOCAL_PORT_SPAN, i.e. 20000-29999, never
# derived from the job id (another user of the laptop could bind a port she can predict first;
# the ssh command's ExitOnForwardFailure makes a taken port an error all the same). Below the
# ephemeral ranges of Linux (32768+), macOS and Windows (49152+), so an outgoing connection
# never holds it; not 8888 (a laptop's own Jupyter); two sessions rarely draw the same one.
LOCAL_PORT_MIN = 20000
LOCAL_PORT_SPAN = 10000
RANDOM_VARIABLE = "galyleo_random"  # the job's name for its random draw (32 bits) in the rendered rule
ORIGIN_FORMAT = f"http://{LOCAL_HOST}:%s"  # printf/%-format: local port
LOCAL_URL_FORMAT = ORIGIN_FORMAT + "/?token=%s"  # local port, token
# The URL file: what the user runs on the laptop, then (last line) what the browser opens.
# ExitOnForwardFailure: if another user holds the local port, ssh stops with an error
# instead of running on without the forward (her listener would get the browser's token).
SSH_OPTIONS = "-o ExitOnForwardFailure=yes"
URL_FORMAT = f"ssh -N {SSH_OPTIONS} -L {LOCAL_HOST}:%s:%s:%s %s\n{LOCAL_URL_FORMAT}\n"
URL_ARGS = ("local_port", "node", "port", "target", "local_port", "token")  # URL_FORMAT's slots, in order
NON_SPACE = r"\S+?"
# A bracketed IPv6 node holds ':' too; the target may start with the site's jump host (`-J HOST `).
SLOT_PATTERNS = {"local_port": "[0-9]+", "port": "[0-9]+", "target": r"(?:-J \S+ )?\S+?"}
USER_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._@-]*\Z")  # also safe in a printf format and a shell line
HOST_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]*\Z")


def every_interface(address: str) -> bool:
    """ADDRESS, as Jupyter and the C library would read it, means every interface of the node."""
    text = address.strip()
    if text == WILDCARD:
        return True
    text = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    text = text.split("%", 1)[0]  # an IPv6 scope ('::%eth0') does not narrow the unspecified address
    try:
        parsed = ipaddress.ip_address(text)
    except ValueError:
        try:  # inet_aton's short and old forms ('0', '0.0', '0x0', '00.0.0.0'), which getaddrinfo takes too
            parsed = ipaddress.ip_address(socket.inet_aton(text))
        except (OSError, ValueError):
            return False  # a host name, or no address at all (empty: resolved in the job)
    mapped = getattr(parsed, "ipv4_mapped", None)
    return (mapped or parsed) in EVERY_INTERFACE


def local_port() -> int:
    """A new session's laptop port: random in the range, chosen by launch before it renders."""
    import secrets

    return LOCAL_PORT_MIN + secrets.randbelow(LOCAL_PORT_SPAN)


def port_rule() -> str:
    """local_port() as bash arithmetic over RANDOM_VARIABLE (drawn from /dev/urandom in the job,
    for a plain `sbatch`); the job evaluates `$((rule))`."""
    return f"{LOCAL_PORT_MIN} + {RANDOM_VARIABLE} % {LOCAL_PORT_SPAN}"


def local_url(port: int, token: str) -> str:
    return LOCAL_URL_FORMAT % (port, token)


def login_host(config: Any) -> str:
    """Where users ssh to: the site's `login_host`, else this host's fully qualified name."""
    import socket  # only ssh mode needs it (generate's start-up)

    host = str(config.login_host) or socket.getfqdn()
    if not HOST_NAME.match(host):
        raise GalyleoError(f"ssh mode: this host's name {host!r} is not one to ssh to: set the site key login_host")
    return host


def user_name() -> str:
    """The user's name on the cluster (the account that owns this process)."""
    import pwd

    try:
        name = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        name = os.environ.get("USER", "")
    if not USER_NAME.match(name):
        raise GalyleoError(f"ssh mode: user name {name!r} cannot be put in an ssh command")
    return name


def target(config: Any) -> str:
    """Where the laptop's ssh goes: `user@login_host` (pwd, getfqdn), after `-J JUMP` when the
    site names a bastion (setting ssh_jump, checked by config.py)."""
    jump = f"-J {config.ssh_jump} " if config.ssh_jump else ""
    return f"{jump}{user_name()}@{login_host(config)}"


@dataclass(frozen=True)
class Tunnel:
    """What the job wrote once Jupyter answered: enough to print the two lines again."""

    local_port: int
    node: str
    port: int
    target: str
    token: str

    def text(self) -> str:
        return URL_FORMAT % tuple(getattr(self, name) for name in URL_ARGS)

    def ssh_line(self) -> str:
        return self.text().splitlines()[0]

    def ssh_argv(self) -> List[str]:
        return self.ssh_line().split()

    def url(self) -> str:
        return self.text().splitlines()[-1]


def url_pattern() -> "re.Pattern[str]":
    """URL_FORMAT as a regex, each slot a named group (a repeated slot must repeat its value)."""
    pieces = URL_FORMAT.split("%s")
    seen: List[str] = []
    text = re.escape(pieces[0])
    for name, piece in zip(URL_ARGS, pieces[1:]):
        text += f"(?P={name})" if name in seen else f"(?P<{name}>{SLOT_PATTERNS.get(name, NON_SPACE)})"
        seen.append(name)
        text += re.escape(piece)
    return re.compile(text + r"\Z")


def read(path: str) -> Optional[Tunnel]:
    """The URL file at PATH, or None while the job has not written it (or it is not one)."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read(4096)
    except (OSError, UnicodeDecodeError):
        return None
    match = url_pattern().match(text)
    if not match:
        return None
    return Tunnel(int(match["local_port"]), match["node"], int(match["port"]), match["target"], match["token"])


def url_path(record: str) -> str:
    """The URL file of the session whose record is RECORD."""
    return contract.files_of_record(record).url


def for_printf(form: str) -> str:
    """One of the formats above (only %s slots and safe text) as bash printf spells a newline."""
    return form.replace("\n", "\\n")


class Ssh(Connection):
    name = "ssh"
    snippet = "tunnel.sh.j2"
    waits = True
    laptop_tunnel = True
    tag = " (ssh)"
    note = "ssh tunnel (no Satellite proxy)"
    dry_run_words = " (ssh tunnel mode, no Satellite call)"

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self._target = ""

    def check_settings(self) -> None:
        if every_interface(self.config.bind_address):
            raise bad("setting bind_address", self.config.bind_address,
                      "the node's cluster address (or empty: resolved in the job), never every interface, in ssh mode")

    def target(self) -> str:
        """user@login host, resolved once (pwd, getfqdn): a name ssh cannot take is an error
        before any side effect."""
        if not self._target:
            self._target = target(self.config)
        return self._target

    def prepare(self) -> None:
        self.target()

    def reserve(self) -> Handoff:
        return Handoff("", "", "", local_port=local_port())

    def job_values(self, handoff: Optional[Handoff]) -> Dict[str, Any]:
        """TOKEN_FILE and LOCAL_PORT are launch's ("" for a plain sbatch, whose job draws its port by the rule)."""
        return {
            "GALYLEO_TOKEN_FILE": handoff.token_file if handoff else "",
            "GALYLEO_LOCAL_PORT": (handoff.local_port if handoff else 0) or "",
            "GALYLEO_LOCAL_PORT_RULE": port_rule(),
            "GALYLEO_ORIGIN_FORMAT": ORIGIN_FORMAT,
            "GALYLEO_URL_FORMAT": for_printf(URL_FORMAT),
            "GALYLEO_SSH_TARGET": self.target(),
        }

    def record_fields(self, handoff: Handoff, token: str) -> Dict[str, Any]:
        return {"url": local_url(handoff.local_port, token), "connect": self.name, "ssh_target": self.target(),
                "local_port": handoff.local_port}

    def standalone_record(self, interface: str, folder: str) -> Record:
        """No alias; the laptop's URL."""
        url = LOCAL_URL_FORMAT % (contract.slot("local_port"), contract.slot("token"))
        return contract.standalone_record(folder, interface, url, self.name)

    def ready(self, session: Record) -> Callable[[], bool]:
        path = url_path(session.record)
        return lambda: read(path) is not None

    def report(self, session: Record, words: bool) -> bool:
        found = read(url_path(session.record))
        if found is None:
            return False
        print_lines(found, words)
        return True

    def json_fields(self, session: Record) -> Dict[str, Any]:
        found = read(url_path(session.record))
        return {"state": "RUNNING", "connect": self.name, "ssh_argv": found.ssh_argv() if found else [],
                "url": found.url() if found else session.url}

    def plan(self, paths: SessionFiles) -> List[List[str]]:
        ports = f"random in {LOCAL_PORT_MIN}-{LOCAL_PORT_MIN + LOCAL_PORT_SPAN - 1}"
        return [[], [
            f"wait until the job writes {paths.url} (0600)",
            "print: " + URL_FORMAT.splitlines()[0] % ("<local port>", "<node>", "<port>", self.target()),
            f"print {ORIGIN_FORMAT % '<local port>'}/?token=<token>  (local port {ports}, chosen now)",
        ]]

    def withdraw(self, handoff: Handoff, job_id: Optional[str], cluster: str, keep_unsure: bool = False) -> bool:
        """Only the job to cancel: nothing else was reserved."""
        from galyleo import cancel  # not at import: rendering a script needs no Slurm command
        if job_id is None:
            return False
        try:
            cancel.end_job(job_id, cluster)
        except cancel.NotCancelled as exc:
            cancel.warn(f"could not cancel job {job_id}: {exc}")
            if keep_unsure:
                raise
        return False

    def session_fields(self, session: Record, info: JobInfo) -> Dict[str, Any]:
        """The tunnel command as argv, once the job wrote it."""
        found = read(url_path(session.record)) if info.live else None
        return {"ssh_argv": found.ssh_argv() if found else []}

    def status_fields(self, session: Record, info: JobInfo) -> Dict[str, str]:
        return {"satellite": ""}

    def status_lines(self, doc: Dict[str, Any], info: JobInfo) -> List[Tuple[str, str]]:
        waiting = "(written by the job once Jupyter answers)" if info.live else ""
        return [("ssh", " ".join(doc["ssh_argv"]) or waiting)]

    def open(self, session: Record, info: JobInfo, state: str) -> int:
        """The two lines again, once the job wrote them."""
        found = read(url_path(session.record))
        if found is None or not info.live:
            raise GalyleoError(f"job {session.job_id} has no tunnel to open: {state}; "
                               "the job writes the ssh command once Jupyter answers")
        print_lines(found)
        return 0


MODE = Ssh


def print_lines(found: Tunnel, words: bool = True) -> None:
    if words:
        print("On your laptop, open the tunnel (it stays open until you press Ctrl-C there):")
    print(found.ssh_line())
    if words:
        print("then open in your browser:")
    print(found.url(), flush=True)
