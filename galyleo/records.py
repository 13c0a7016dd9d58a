"""Files under ~/.galyleo: the directory is 0700 and every file 0600, whatever the umask.

launch names a session `galyleo-<UTC time>-<random>` before submission (the job id
comes later), so two launches in the same second never share a name; where its files
are is contract.py's.
"""

from __future__ import annotations

import os
import stat
import time

from galyleo import contract
from galyleo.contract import Record, SessionFiles
from galyleo.errors import GalyleoError, UsageError


def ensure_dir(path: str) -> None:
    """Create the galyleo directory 0700 (and any missing parent), whatever the umask.

    A session's token, script, output and record must be where only the user can
    create or replace them: an existing directory that is not the user's, or that its
    group or others can write (a site's shared 2770 folder: any member could `rm` a
    pending session's token and put her own in its place), is refused before anything
    is made (exit 2)."""
    refuse_shared(path)
    try:
        missing = []
        folder = path
        while not os.path.isdir(folder):
            missing.append(folder)
            folder = os.path.dirname(folder)
        for new in reversed(missing):
            try:
                os.mkdir(new, 0o700)
            except FileExistsError:  # a concurrent launch made it
                continue
            os.chmod(new, 0o700)
    except OSError as exc:
        raise GalyleoError(f"cannot use {path}: {exc.strerror}") from None
    refuse_shared(path)  # one made concurrently by someone else
    if not os.access(path, os.W_OK | os.X_OK):
        raise GalyleoError(f"cannot write in {path}")


def refuse_shared(path: str) -> None:
    """UsageError if PATH exists and is not a directory of the user's own that only the user can write."""
    try:
        info = os.stat(path)  # a link to a folder of the user's (~/.galyleo -> /scratch/...) is fine
    except OSError:
        return
    mode = stat.S_IMODE(info.st_mode)
    mine = info.st_uid in (os.getuid(), 0)  # root's (then `cannot write in` below, unless it is shared)
    if not mine or mode & 0o022:
        whose = "not yours" if not mine else f"writable by group or others (mode {mode:04o})"
        raise UsageError(f"setting output_dir {path}: {whose}: another user could replace a session's files; "
                         f"make it yours alone (chmod go-w {path}) or use a 0700 folder of your own")


def new_session(folder: str) -> SessionFiles:
    from secrets import token_hex  # not at import: `generate` (which reads user_folder) names no session

    return contract.files(folder, f"{contract.PREFIX}{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-"
                                  f"{token_hex(3)}")


def write_private(path: str, text: str) -> None:
    """Create PATH 0600 (refusing to follow or reuse an existing file) and write TEXT."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(path, 0o600)
    except OSError as exc:
        raise GalyleoError(f"cannot write {path}: {exc.strerror}") from None


def write_record(record: Record) -> None:
    write_private(record.record, record.to_text())


def remove(*paths: str) -> None:
    for path in paths:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def expand(path: str) -> str:
    """`~` in a configured directory means the user's home, `%u` the user's name."""
    return os.path.abspath(os.path.expanduser(user_folder(path)))


def user_folder(text: str) -> str:
    """A configured folder with `%u` as the user's login name, so one site line
    (`/shared/galyleo/%u`) gives each user a folder of their own."""
    if "%u" not in text:
        return text
    import pwd

    return text.replace("%u", pwd.getpwuid(os.getuid()).pw_name)
