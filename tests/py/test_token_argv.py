"""The Jupyter token is never on the server's command line, in any rendered script.

Every user on a node can read every process's argv (`ps`); the token reaches Jupyter
and Voila through the environment or a private file only. Checked over a matrix of
rendered scripts (every interface and connection mode, standalone and launch mode,
each software environment, idle culling on and off), without running them: the
server's argv is every array or command that names `jupyter` or `voila`, every line
that runs such an array, and every variable or array those expand, followed to its
assignments. None of it may name a token.
"""

from __future__ import annotations

import itertools
import re
from typing import Dict, List, Optional, Sequence, Set

import pytest

from galyleo import apps, cli, render, spec
from galyleo.config import Config

CONF = Config(account="abc123", satellite_domain="proxy.example.org", login_host="login.example.org")
# jupyter or voila as a command word (first in a statement, an array, after exec or an expansion),
# not as a value (GALYLEO_APP_COMMAND=voila) or a file name (voila.py).
SERVER = re.compile(r'(?:^|[(;&|]|\bexec\b|\})["\s]*(jupyter|voila)(?![\w.-])', re.MULTILINE)
REFERENCE = re.compile(r"\$\{?(\w+)")
ASSIGNMENT = re.compile(r"^\s*(?:local\s+|export\s+|declare\s+-\w+\s+)?(\w+)\+?=")

INTERFACES = apps.NAMES
MODES = ("satellite", "ssh")
ENVIRONMENTS = ((), ("--env-modules", "python/3.11"), ("--conda-env", "myenv"), ("--sif", "docker://org/image:1"))
IDLE = ((), ("--idle-timeout", "30"))
HANDOFFS = (None, render.Handoff("wages-astonish-recapture", "/t/x.token", "/t/x.out"))


def statements(text: str) -> List[str]:
    """The script's statements: continued lines and multi-line arrays `name=( ... )` joined; comments dropped."""
    joined: List[str] = []
    pending = ""
    for line in text.splitlines():
        if line.lstrip().startswith("#") and not pending:
            continue
        pending += line.split(" #", 1)[0] + "\n"
        if pending.rstrip().endswith("\\") or pending.count("(") > pending.count(")"):
            continue
        joined.append(pending)
        pending = ""
    return joined + ([pending] if pending else [])


def server_argv(text: str) -> str:
    """Every statement that builds or runs the server's argv, and what those expand, transitively."""
    parts = statements(text)
    assigned: Dict[str, List[str]] = {}
    for part in parts:
        match = ASSIGNMENT.match(part)
        if match:
            assigned.setdefault(match.group(1), []).append(part)
    chosen = [p for p in parts if SERVER.search(p)]
    names: Set[str] = set()
    while True:  # the arrays that hold the argv, and the arrays built from them, down to the lines that run them
        found = {ASSIGNMENT.match(p).group(1) for p in chosen if ASSIGNMENT.match(p)} - names  # type: ignore[union-attr]
        if not found:
            break
        names |= found
        chosen += [p for p in parts if p not in chosen and any(f"${{{name}[@]}}" in p for name in found)]
    seen: Set[str] = set()
    queue = [name for part in chosen for name in REFERENCE.findall(part)]
    while queue:
        name = queue.pop()
        if name in seen:
            continue
        seen.add(name)
        for part in assigned.get(name, []):
            chosen.append(part)
            queue += REFERENCE.findall(part)
    return "".join(chosen)


def rendered(interface: str, mode: str, environment: Sequence[str], idle: Sequence[str],
             handoff: Optional[render.Handoff]) -> str:
    argv = ["generate", "--interface", interface, "--connect", mode, *environment, *idle]
    launch_spec = spec.build(cli.make_parser(CONF).parse_args(argv), CONF, home="/")
    return render.render(launch_spec, CONF, handoff)


MATRIX = [
    pytest.param(interface, mode, environment, idle, handoff,
                 id=f"{interface}-{mode}-{environment[0] if environment else 'plain'}-"
                    f"{'idle' if idle else 'noidle'}-{'launch' if handoff else 'generate'}")
    for interface, mode, environment, idle, handoff
    in itertools.product(INTERFACES, MODES, ENVIRONMENTS, IDLE, HANDOFFS)
    if not (idle and interface == "voila")  # voila cannot cull: --idle-timeout is refused with it
]


@pytest.mark.parametrize("interface, mode, environment, idle, handoff", MATRIX)
def test_no_server_argv_names_the_token(interface: str, mode: str, environment: Sequence[str],
                                        idle: Sequence[str], handoff: Optional[render.Handoff]) -> None:
    text = rendered(interface, mode, environment, idle, handoff)
    argv = server_argv(text)
    assert "--no-browser" in argv and SERVER.search(argv)  # the server's argv was found (not vacuous)
    if environment and environment[0] == "--sif":
        assert "exec" in argv  # the container's part of the argv is followed too
    named = [line for line in argv.splitlines() if "token" in line.lower()]
    assert named == [], "the server's argv names the token:\n" + "\n".join(named)
