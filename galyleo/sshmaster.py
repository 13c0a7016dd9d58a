"""One OpenSSH connection per remote host, shared by every ssh galyleo runs on the laptop.

The system's `ssh` only (the user's ssh config, ProxyJump, keys, known_hosts and any
second factor apply as for `ssh HOST`). The first command logs in once as a master
(ControlMaster, ControlPersist: `ssh_persist` minutes after its last use); the others ride
on it through a control socket in a private folder (0700, owner checked), so a two-factor
prompt comes once. Port forwards are given to the master from a private config file
(0600), never in argv: another user's `ps` shows no port. Input: host, Config; output:
argv lists and the calls that run them.
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
from dataclasses import dataclass
from typing import Any, List

from galyleo.errors import GalyleoError

SSH = "ssh"  # OpenSSH's client, found on PATH (never a Python ssh library)
SOCKET_ROOM = 103  # sun_path is 104 bytes on macOS, 108 on Linux (with the final NUL)
SOCKET_NAME = len("/m-") + 20 + len(".XXXXXXXXXXXXXXXX")  # ssh binds a temporary name first


@dataclass(frozen=True)
class Master:
    """How galyleo reaches HOST: the ssh options every call shares."""

    host: str
    control_dir: str
    config_file: str = ""  # ssh -F; "" = ssh's own (~/.ssh/config, then the system's)
    jump: str = ""  # ProxyJump
    persist: int = 30  # minutes

    @property
    def control_path(self) -> str:
        """One socket per (host, config, jump): a short hash, so long names still fit a socket path."""
        key = "\0".join((self.host, self.config_file, self.jump)).encode()
        return os.path.join(self.control_dir, "m-" + hashlib.sha256(key).hexdigest()[:20])

    def base(self, config_file: str = "") -> List[str]:
        """ssh and the options every call shares (ControlPath is '%'-escaped: ssh expands tokens there)."""
        argv = [SSH]
        if config_file or self.config_file:
            argv += ["-F", config_file or self.config_file]
        argv += ["-o", "ControlPath=" + self.control_path.replace("%", "%%")]
        if self.jump:
            argv += ["-o", f"ProxyJump={self.jump}"]
        return argv

    def start_argv(self) -> List[str]:
        """The master: logs in (prompts on the terminal), then stays in the background."""
        return self.base() + ["-o", "ControlMaster=yes", "-o", f"ControlPersist={self.persist}m", "-f", "-N",
                              "--", self.host]

    def control_argv(self, operation: str, config_file: str = "") -> List[str]:
        """`ssh -O check|exit|forward|cancel` to the running master."""
        return self.base(config_file) + ["-O", operation, "--", self.host]

    def command_argv(self, remote: str) -> List[str]:
        """REMOTE (one shell command line, quoted by the caller) run on HOST over the master."""
        return self.base() + ["-o", "ControlMaster=no", "-T", "--", self.host, remote]


def make(host: str, config: Any, environ: Any = None) -> Master:
    """The Master for HOST from the settings ssh_config, ssh_jump, ssh_persist."""
    config_file = os.path.expanduser(config.ssh_config) if config.ssh_config else ""
    return Master(host, control_dir(environ), config_file, config.ssh_jump, config.ssh_persist)


def control_dir(environ: Any = None) -> str:
    """A private folder for the control sockets: $XDG_RUNTIME_DIR/galyleo-ssh, else ~/.galyleo/ssh,
    else (a home too deep for a socket's path) /tmp/galyleo-ssh-UID, which must then be ours."""
    environ = os.environ if environ is None else environ
    runtime = environ.get("XDG_RUNTIME_DIR", "")
    home = environ.get("HOME") or os.path.expanduser("~")
    if runtime and os.path.isabs(runtime) and os.path.isdir(runtime):
        parent, base = runtime, os.path.join(runtime, "galyleo-ssh")
    else:
        parent, base = os.path.join(home, ".galyleo"), os.path.join(home, ".galyleo", "ssh")
    if len(base) + SOCKET_NAME > SOCKET_ROOM:
        import tempfile

        parent, base = "", os.path.join(tempfile.gettempdir(), f"galyleo-ssh-{os.getuid()}")
    if parent:
        private_dir(parent, runtime != parent)
    private_dir(base)
    if len(base) + SOCKET_NAME > SOCKET_ROOM:
        raise GalyleoError(f"ssh control folder {base}: too long a path for a socket; set XDG_RUNTIME_DIR "
                           "to a short folder of your own")
    return base


def private_dir(path: str, tighten: bool = True) -> None:
    """PATH exists as a real folder (no symlink) of this user's, made 0700 if missing (and if
    TIGHTEN, made 0700 if it was not); else an error."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise GalyleoError(f"{path}: not a folder of your own; remove it or set XDG_RUNTIME_DIR")
    if tighten and stat.S_IMODE(info.st_mode) & 0o077:
        os.chmod(path, 0o700)


def ensure(master: Master) -> None:
    """A live master for HOST: the running one, else a new login. ssh's own words (a changed host
    key, a refused code) are shown as ssh wrote them; then one line and exit status 255."""
    if run_quiet(master.control_argv("check")) == 0:
        return
    try:  # a socket left by a master that died: a new master would not replace it (and share nothing)
        os.unlink(master.control_path)
    except FileNotFoundError:
        pass
    log = master.control_path + ".log"
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:  # not a pipe: the master (and a ProxyJump ssh) keep it for as long as they live
        status = subprocess.run(master.start_argv(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=fd).returncode
    finally:
        os.close(fd)
    if status != 0:
        with open(log, encoding="utf-8", errors="replace") as handle:
            sys.stderr.write(handle.read())
        raise SshFailed(f"ssh could not log in to {master.host} (ssh exit status {status})", status)


class SshFailed(GalyleoError):
    """ssh itself failed (exit 255): its own words are already on stderr."""

    def __init__(self, message: str, status: int = 255) -> None:
        super().__init__(message)
        self.exit_status = status if 0 < status < 256 else 255


def run_quiet(argv: List[str]) -> int:
    return subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode


def forward_spec(local_port: int, node: str, port: int) -> str:
    """LocalForward's two words: the laptop's loopback port, the node's address and port."""
    return f"127.0.0.1:{local_port} {node}:{port}"


def forward(master: Master, spec: str, operation: str = "forward") -> subprocess.CompletedProcess:
    """Add (or cancel) the forward SPEC on the master; SPEC goes through a 0600 file, not argv.
    ExitOnForwardFailure: a port another user holds is an error, not a silent fallback."""
    path = master.control_path + ".fwd"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(f"ExitOnForwardFailure yes\nLocalForward {spec}\n")
        handle.write(f"Include {master.config_file or '~/.ssh/config'}\n")
        if not master.config_file:
            handle.write("Include /etc/ssh/ssh_config\n")
    try:
        return subprocess.run(master.control_argv(operation, path), stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    finally:
        os.unlink(path)
