"""The start-up layer owns the speed-ups: importing a domain module touches no cache, and
the HTTPS stack is compiled once, just before its first import, whoever imports it.
The same in a real pyz: tests/py/test_pyz.py."""

from __future__ import annotations

from conftest import run_galyleo

# Each in a fresh interpreter: in this one, other tests have already imported requests.
PLAIN_IMPORT = """
import sys
from galyleo import shivcache

def refuse(*args):
    raise AssertionError("importing a domain module compiled the HTTPS stack")

shivcache.compile_network = shivcache.compile_bytecode = refuse
import galyleo.satellite, galyleo.launch, galyleo.render, galyleo.config
print("requests" in sys.modules)
"""

FIRST_IMPORT = """
import sys
from galyleo import shivcache, startup

calls = []
shivcache.compile_network = lambda package_file: calls.append((package_file, "requests" in sys.modules))
sys.meta_path.insert(0, startup.CompileHTTPSFirst("/unpacked/galyleo/shivcache.py"))
import json, shlex  # not the HTTPS stack: nothing compiled
print(len(calls))
import galyleo.satellite, certifi, requests.adapters
print(calls)
"""


def test_importing_domain_modules_has_no_side_effect_on_the_shiv_cache() -> None:
    result = run_galyleo([], python_code=PLAIN_IMPORT)
    assert (result.status, result.out.split()) == (0, ["True"]), result.err


def test_https_stack_is_compiled_once_before_its_first_import() -> None:
    result = run_galyleo([], python_code=FIRST_IMPORT)
    assert result.status == 0, result.err
    assert result.out.splitlines() == ["0", "[('/unpacked/galyleo/shivcache.py', False)]"]


def test_outside_a_pyz_no_finder_is_installed() -> None:
    code = "import sys; from galyleo import shivcache, startup; n = len(sys.meta_path); " \
           "startup.compile_https_first(shivcache.__file__); print(len(sys.meta_path) - n)"
    result = run_galyleo([], python_code=code)
    assert (result.status, result.out.strip()) == (0, "0"), result.err
