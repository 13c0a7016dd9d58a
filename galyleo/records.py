"""Files under ~/.galyleo: the directory is 0700 and every file 0600, whatever the umask.

launch names a session `galyleo-<UTC time>-<random>` before submission (the job id
comes later), so two launches in the same second never share a name; where its files
are is contract.py's.
"""

from __future__ import annotations

import os
import secrets
import stat
import time

from galyleo import contract
from galyleo.contract import Record, SessionFiles
from galyleo.errors import GalyleoError


def ensure_dir(path: str) -> None:
    """Create the galyleo directory 0700 (and any missing parent), whatever the umask.

    A directory that exists is used as it is (a site's shared 2770 folder keeps its
    mode: the files in it are 0600 all the same), unless anyone could swap files in it:
    writable by others without the sticky bit."""
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
        info = os.stat(path)
    except OSError as exc:
        raise GalyleoError(f"cannot use {path}: {exc.strerror}") from None
    if info.st_mode & stat.S_IWOTH and not info.st_mode & stat.S_ISVTX:
        raise GalyleoError(f"cannot use {path}: anyone can replace files in it (mode "
                           f"{stat.S_IMODE(info.st_mode):04o}); make it 0700 or set the sticky bit")
    if not os.access(path, os.W_OK | os.X_OK):
        raise GalyleoError(f"cannot write in {path}")


def new_session(folder: str) -> SessionFiles:
    return contract.files(folder, f"{contract.PREFIX}{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-"
                                  f"{secrets.token_hex(3)}")


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
    """`~` in a configured directory means the user's home."""
    return os.path.abspath(os.path.expanduser(path))
