"""A folder of ours inside the pyz's own unpacked build, for work worth keeping between
runs: compiled snippets (Jinja's bytecode cache) and parsed config files.

Why: each start would otherwise compile the ten snippets and import a TOML parser again,
which together cost more than the rest of `generate`. shivcache makes the folder (0700)
on a build's first start, and it goes when the build is removed. It holds code and
settings that will be used, so it is used only if it is ours and nobody else can write
to it; outside a pyz (a checkout, a venv) there is none and nothing is cached.
"""

from __future__ import annotations

import os
import stat

from galyleo import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any, Callable, Optional

NAME = "__galyleocache__"
RACY_SECONDS = 2.0


def path() -> str:
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), NAME)


def create() -> None:
    os.makedirs(path(), mode=0o700, exist_ok=True)


def folder() -> Optional[str]:
    """The folder if it is safe to use: a real directory of ours that only we can write."""
    where = path()
    try:
        info = os.lstat(where)
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o022:
        return None
    return where if os.access(where, os.W_OK) else None


def load(name: str, key: Any) -> Any:
    """The value stored under `name` if it was stored with this `key`, else None."""
    import marshal

    where = folder()
    if where is None:
        return None
    try:
        with open(os.path.join(where, name), "rb") as handle:
            stored_key, value = marshal.loads(handle.read())  # noqa: S302 (our own 0700 folder)
    except (OSError, EOFError, ValueError, TypeError):
        return None
    return value if stored_key == key else None


def store(name: str, key: Any, value: Any) -> None:
    """Keep `value` under `name` with `key` (plain data only); written whole or not at all."""
    import marshal

    where = folder()
    if where is None:
        return
    try:
        data = marshal.dumps((key, value))
    except ValueError:  # not plain data (e.g. a TOML date): not worth caching
        return
    partial = os.path.join(where, f".{name}.{os.getpid()}")
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(partial, os.path.join(where, name))
    except OSError:
        try:
            os.unlink(partial)
        except OSError:
            pass


def template_cache(jinja2: Any) -> Any:
    """Jinja's bytecode cache in our folder, if there is one: compiling the snippets costs
    more than the rest of `generate`."""
    where = folder()
    return jinja2.FileSystemBytecodeCache(where) if where else None


def parsed(path: str, parse: Callable[[bytes], Any]) -> Any:
    """`parse` of the file's bytes; a file parsed before and unchanged since (same inode,
    size, mtime and ctime) comes from the cache. A file changed in the last RACY_SECONDS
    is not kept: a second change within one tick of the file system's clock would not show.
    OSError and `parse`'s errors reach the caller."""
    import time
    import zlib

    with open(path, "rb") as handle:
        info = os.fstat(handle.fileno())
        key = (os.path.abspath(path), info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
        name = f"parsed-{zlib.crc32(key[0].encode()):08x}"
        cached = load(name, key)
        if cached is not None:
            return cached
        value = parse(handle.read())
    if time.time() - max(info.st_mtime, info.st_ctime) > RACY_SECONDS:
        store(name, key, value)
    return value
