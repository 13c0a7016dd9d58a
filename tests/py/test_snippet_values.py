"""Snippets stay shell and carry no policy: the job's numbers come from galyleo/jobnumbers.py
(each bound in the script, each used, none restated as a literal), the container part
calls only the preamble's fixed hook, and the nounset wrapper, run by bash, restores
nounset and passes the command's status through.
"""

from __future__ import annotations

import re
import subprocess
from typing import Set

import pytest
from conftest import ROOT

from galyleo import cli as galyleo_cli
from galyleo import contract, joblog, jobnumbers, render, spec
from galyleo.config import Config

SNIPPETS = ROOT / "galyleo" / "snippets"
NUMBERED = ("server.sh.j2", "cleanup.sh.j2")  # the parts whose numbers jobnumbers owns
# A literal where the job's policy would be: an option's number, a loop's bound, a list of
# attempts, a fraction of a second, or one of the port-range numbers.
POLICY_LITERAL = re.compile(
    r"(--max-time|timeout|sleep|-t)\s+[0-9]"
    r"|while\b.*\(\(\s*\w+\s*<=?\s*[0-9]"
    r"|\bfor\s+\w+\s+in\s+[0-9]"
    r"|\b[0-9]+\.[0-9]+\b"
    r"|\b(32768|60999|64535|65535|10000)\b"
)
BASH_RANDOM = "RANDOM * 32768"  # 2**15, bash's own: RANDOM is below it (not a port number)


def rendered(argv: list, conf: Config) -> str:
    args = galyleo_cli.make_parser(conf).parse_args(["generate", *argv])
    return render.render(spec.build(args, conf, home="/"), conf)


def names_used(text: str) -> Set[str]:
    """The GALYLEO_* names in a snippet's shell code (its header and comment lines left out)."""
    code = [line for line in re.sub(r"\{##.*?##\}", "", text, flags=re.S).splitlines()
            if not line.lstrip().startswith("#")]
    return set(re.findall(r"\bGALYLEO_[A-Z0-9_]+\b", "\n".join(code)))


@pytest.mark.parametrize("grace", [5, 12])
def test_every_number_is_bound_in_the_script_and_used_by_a_snippet(grace: int) -> None:
    conf = Config(account="a", stop_grace=grace)
    lines = rendered(["--idle-timeout", "30"], conf).splitlines()
    numbers = jobnumbers.values(conf)
    assert numbers["GALYLEO_STOP_GRACE"] == grace and numbers["GALYLEO_STOP_POLLS"] == grace * 10
    used = set().union(*(names_used((SNIPPETS / name).read_text()) for name in NUMBERED))
    for name, value in numbers.items():
        assert isinstance(value, int) or name == "GALYLEO_POLL_SLEEP", name
        assert lines.count(f"{name}={render.sh(value)}") == 1, name
        assert name in used, f"{name} is bound but no snippet uses it"


def test_every_name_the_numbered_snippets_use_is_bound_or_set() -> None:
    """A snippet that spells a number's name wrong, or uses one nobody binds, fails here."""
    text = rendered(["--idle-timeout", "30"], Config(account="a"))
    text += "".join(p.read_text() for p in SNIPPETS.glob("*.j2"))
    assigned = set(re.findall(r"^\s*(?:export\s+)?(GALYLEO_[A-Z0-9_]+)\+?=", text, re.M))
    for name in NUMBERED:
        source = (SNIPPETS / name).read_text()
        assert names_used(source) - assigned == set(), name


@pytest.mark.parametrize("path", sorted(SNIPPETS.glob("*.j2")), ids=lambda p: p.name)
def test_no_snippet_restates_a_policy_number(path) -> None:
    found = [f"{path.name}:{number}: {line.strip()}"
             for number, line in enumerate(path.read_text().splitlines(), 1)
             if not line.lstrip().startswith("#") and POLICY_LITERAL.search(line.replace(BASH_RANDOM, ""))]
    assert found == []


def test_the_guard_sees_the_literals_it_forbids() -> None:
    for line in ('while kill -0 "$p" && ((waited < 50)); do', "    sleep 0.1", "for a in 1 2 3; do",
                 "curl --max-time 2 x", "timeout 2 bash -c x", "read -r -t 5 -u 3", "{ low=32768; high=60999; }"):
        assert POLICY_LITERAL.search(line), line
    assert not POLICY_LITERAL.search('port=$((low + (RANDOM * 32768 + RANDOM) % 9))'.replace(BASH_RANDOM, ""))


def test_the_container_part_calls_only_the_preambles_hook() -> None:
    """It names no other part's function: what runs inside the image is the hook and its list."""
    def defined(text: str) -> Set[str]:
        return set(re.findall(r"^\s*(galyleo_\w+)\(\)", text, re.M))

    preamble = defined((SNIPPETS / "preamble.sh.j2").read_text())
    others = set().union(*(defined(p.read_text()) for p in SNIPPETS.glob("*.j2"))) - preamble
    container = (SNIPPETS / "container.sh.j2").read_text()
    assert "galyleo_inside_exec" in preamble and "GALYLEO_INSIDE_FUNCTIONS" in container
    assert set(re.findall(r"\bgalyleo_\w+", container)) & others == set()


def run_bash(body: str) -> str:
    """The preamble as rendered, then BODY, under bash; stdout."""
    import tempfile

    preamble = render.environment().get_template("preamble.sh.j2").render()
    with tempfile.TemporaryDirectory() as folder:  # private (0700): the preamble refuses a shared one
        values = {**contract.job_values(folder), **joblog.values()}  # what the preamble reads
        bound = "".join(f"{name}={render.sh(value)}\n" for name, value in values.items() if isinstance(value, str))
        done = subprocess.run(["bash", "-c", f"GALYLEO_VERSION=test\n{bound}{preamble}\n{body}"],
                              capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_galyleo_lax_turns_nounset_off_for_one_command_and_back_on() -> None:
    out = run_bash(r"""
reads_unset() { printf 'read [%s]\n' "${GALYLEO_NEVER_SET}"; return 7; }
status=0
galyleo_lax reads_unset || status=$?
echo "status ${status} flags ${-//[^u]/}"
galyleo_lax true && echo "true passes: flags ${-//[^u]/}"
f="$(mktemp)"; printf 'sourced_value="x${GALYLEO_NEVER_SET}y"\nsourced_fn() { echo fn; }\n' >"$f"
galyleo_lax source "$f" && echo "sourced ${sourced_value} $(sourced_fn)"; rm -f "$f"
set +u; galyleo_lax true; echo "was off: flags [${-//[^u]/}]"
""")
    assert out.splitlines() == ["read []", "status 7 flags u", "true passes: flags u", "sourced xy fn",
                                "was off: flags []"]
