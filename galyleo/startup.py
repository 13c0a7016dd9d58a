"""The start-up layer's speed-ups, so that the modules doing galyleo's work stay plain Python.

Why: a user waits for every start, and a warm `generate` must stay within 1.10x of a stock
shiv app that only renders one Jinja template (bench/startup.py). The layer is this module,
the pyz's entry (`__main__.py`, after build/fast_start.py), `shivcache` (bytecode of the
unpacked build) and `privatecache` (compiled snippets, parsed config files). Here: the
HTTPS stack compiled just before its first import, and the warm-up that launch runs while
pre-flight waits on its subprocesses. Imports only os and sys at load time:
`--version` and `help` pass through here.
"""

from __future__ import annotations

import os
import sys

from galyleo import TYPE_CHECKING

if TYPE_CHECKING:
    import threading
    from importlib.machinery import ModuleSpec
    from typing import Optional, Sequence


class CompileHTTPSFirst:
    """A meta path finder that never finds anything: on the first import of a package of the
    HTTPS stack, whoever imports it, it compiles that stack's bytecode for this build first."""

    def __init__(self, package_file: str) -> None:
        import _thread

        from galyleo import shivcache

        self.package_file = package_file
        self.packages = shivcache.NETWORK_PACKAGES
        self.compile = shivcache.compile_network
        self.lock = _thread.allocate_lock()  # the warm-up thread and the main thread may race here
        self.done = False

    def find_spec(self, name: str, path: Optional[Sequence[str]] = None, target: object = None) -> Optional[ModuleSpec]:
        if not self.done and name.partition(".")[0] in self.packages:
            with self.lock:
                if not self.done:
                    self.compile(self.package_file)
                    self.done = True
        return None  # the regular finders import it, from the bytecode just written


def compile_https_first(package_file: str) -> None:
    """In a pyz whose HTTPS stack (half its source) has no bytecode yet for this interpreter,
    compile it at its first import, not on the first start: `generate`, `list` and `help`
    never import it."""
    from galyleo import shivcache

    build = shivcache.current_build(package_file)
    if build is not None and not os.path.exists(build.network_marker):
        sys.meta_path.insert(0, CompileHTTPSFirst(package_file))


def warm_up() -> threading.Thread:
    """Load the snippets, then import requests, on the other core while launch's pre-flight
    runs: the pre-flight's module probe is rendered from the snippets (so they come first), and
    the submission needs both right after it."""
    import threading

    def work() -> None:
        from galyleo import render

        for name in ("module_probe.sh.j2", "job.sh.j2"):
            render.environment().get_template(name)
        from galyleo import satellite  # noqa: F401 (requests and certifi)

    thread = threading.Thread(target=work, name="galyleo-warm-up", daemon=True)
    thread.start()
    return thread
