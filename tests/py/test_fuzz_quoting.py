"""Quoting, fuzzed: hostile text in every user value that reaches the job script.

Hypothesis builds values from quotes, $(...), backticks, ;, &&, |, newlines, globs,
leading dashes, `~`, `#`, `%`, backslashes and non-ASCII. Shell-bound values
(notebook dir, module names and paths, conda env name, image path or URI, bind
paths) must come out of `bash -n`-clean scripts and, when the script runs
against the recording stand-ins in tests/bats/stubs, arrive in the stand-ins'
argv (or cwd) byte for byte while the canary command inside them never runs.
`#SBATCH` values (account, partition, qos, reservation, constraint) are parsed
by sbatch, not bash: anything outside Slurm's own alphabet is rejected up front
(exit 2, one line naming the option), and every value Slurm takes appears verbatim
(fuzzed from each option's alphabet, and counted, so refusing everything fails).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import string
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
from conftest import DATA, ROOT, bash_n
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

STUBS = ROOT / "tests" / "bats" / "stubs"
pytestmark = pytest.mark.skipif(not (STUBS / "bin" / "jupyter").exists(), reason="tests/bats/stubs missing")

CANARY_TOKEN = "@CANARY@"
ATOMS = [
    "'", '"', "$(touch @CANARY@)", "`touch @CANARY@`", "; touch @CANARY@", " && touch @CANARY@", "|", "\n",
    "$(touch${IFS}@CANARY@)", "`touch${IFS}@CANARY@`", ";touch${IFS}@CANARY@", "&&touch${IFS}@CANARY@",
    "*", "?", "[a]", "{a,b}", "~", "#", "%", "%j", "\\", "$HOME", "${HOME}", "$", " ", "\t", "é", "日本", "🙂",
    "-", "--", "!", "<", ">", "&", "=",
]
hostile = st.lists(st.one_of(st.sampled_from(ATOMS), st.text(st.characters(codec="utf-8", exclude_characters="\0,"),
                                                              min_size=1, max_size=3)),
                   min_size=1, max_size=6).map("".join)
# Commas split comma lists, so list items never hold one. Module names, image URIs and conda
# env names are refused with spaces or control characters in them (no such thing exists):
# those get their own test, and hostile text without them must arrive verbatim.
item = hostile.filter(lambda s: "," not in s and s.strip() != "")


def has_control(text: str) -> bool:
    return any(ord(c) < 32 or ord(c) == 127 for c in text)


one_line = item.filter(lambda s: not has_control(s))
name = one_line.filter(lambda s: " " not in s)
module_name = name.filter(lambda s: not s.startswith("-"))
FAST = settings(max_examples=12, phases=[Phase.explicit, Phase.generate], deadline=None,
                suppress_health_check=list(HealthCheck), derandomize=True)


class Sandbox:
    """A site config, a home, and the stand-ins' log for one generated script."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="galyleo-fuzz-"))
        self.canary = self.root / "pwned"
        for sub in ("home", "out", "scratch", "tmp", "log"):
            (self.root / sub).mkdir()
        (self.root / "ca.pem").write_text("")
        config = {
            "satellite_domain": "example.test", "ca_bundle": str(self.root / "ca.pem"), "http_timeout": 5,
            "require_account": False, "bind_address": "127.0.0.1", "ready_timeout": 10,
            "module_init": [str(STUBS / "modules" / "init.bash")], "module_reset": "reset",
            "output_dir": str(self.root / "out"), "scratch_dir": str(self.root / "scratch"),
        }
        self.config = self.root / "galyleo.toml"
        self.config.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in config.items()))

    def evil(self, text: str) -> str:
        return text.replace(CANARY_TOKEN, str(self.canary))

    def generate(self, *args: str) -> "subprocess.CompletedProcess[str]":
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GALYLEO_", "SBATCH_", "SLURM_"))}
        env.update(GALYLEO_CONFIG=str(self.config), HOME=str(self.root / "home"), PYTHONPATH=str(ROOT))
        # bytes, not text=True: universal newlines would turn a '\r' in a value into '\n'
        done = subprocess.run([os.sys.executable, "-m", "galyleo", "generate", *args], capture_output=True,
                              env=env, cwd=str(ROOT), timeout=60, stdin=subprocess.DEVNULL)
        return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode("utf-8", "surrogateescape"),
                                           done.stderr.decode("utf-8", "replace"))

    def run_job(self, script: str, **stub_knobs: str) -> subprocess.CompletedProcess:
        path = self.root / "job.sh"
        path.write_bytes(script.encode("utf-8", "surrogateescape"))
        assert bash_n(path) == ""
        env = {"HOME": str(self.root / "home"), "USER": "tester", "LANG": "C.UTF-8", "TMPDIR": str(self.root / "tmp"),
               "PATH": f"{STUBS / 'bin'}:/usr/local/bin:/usr/bin:/bin", "SLURM_JOB_ID": "4242",
               "STUB_LOG": str(self.root / "log"), "STUB_ALIAS": "wages-astonish-recapture", **stub_knobs}
        job = subprocess.Popen(["bash", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                               stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            out, err = job.communicate(timeout=20)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(job.pid, signal.SIGKILL)  # a hung job, or a Jupyter it failed to stop, goes too
        return subprocess.CompletedProcess(job.args, job.returncode, out, err)

    def calls(self, cmd: str, event: str = "call") -> List[Dict[str, Any]]:
        log = self.root / "log" / "calls.jsonl"
        lines = log.read_text(encoding="utf-8", errors="surrogateescape").splitlines() if log.exists() else []
        return [r for r in map(json.loads, lines) if r["cmd"] == cmd and r["event"] == event]

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


@FAST
@given(notebook=item.filter(lambda s: "/" not in s and s not in (".", "..")), modules=st.lists(module_name,
       min_size=1, max_size=2), modulepath=item, env_name=one_line)
def test_shell_values_arrive_verbatim_and_nothing_runs(notebook: str, modules: List[str], modulepath: str,
                                                       env_name: str) -> None:
    box = Sandbox()
    try:
        notebook_dir = box.root / "nb" / box.evil(notebook)
        notebook_dir.mkdir(parents=True)
        modules = [box.evil(m) for m in modules]
        modulepath, env_name = box.evil(modulepath), box.evil(env_name)
        # OPTION=VALUE: a value may start with '-' (argparse would take `OPTION -x` for an option)
        done = box.generate(f"--notebook-dir={notebook_dir}", f"--env-modules={','.join(modules)}",
                            f"--append-modulepath={modulepath}", f"--conda-env={env_name}",
                            f"--conda-init={STUBS / 'conda/etc/profile.d/conda.sh'}")
        assert done.returncode == 0, done.stderr
        job = box.run_job(done.stdout)
        assert job.returncode == 0, job.stderr[-2000:]
        argvs = [c["argv"] for c in box.calls("module")]
        assert argvs == [["reset"], ["use", "--append", modulepath]] + [["load", m] for m in modules]
        assert [c["argv"] for c in box.calls("conda")] == [["activate", env_name]]
        (jupyter,) = box.calls("jupyter")
        assert jupyter["cwd"] == os.path.realpath(notebook_dir)
        assert jupyter["conda"] == env_name
        assert not box.canary.exists()
    finally:
        box.close()


@FAST
@given(image=item.filter(lambda s: "/" not in s and s not in (".", "..")), uri=st.booleans(),
       binds=st.lists(item, min_size=1, max_size=2))
def test_container_values_arrive_verbatim_and_nothing_runs(image: str, uri: bool, binds: List[str]) -> None:
    if uri and (" " in image or has_control(image)):
        image = "".join(c for c in image if c != " " and not has_control(c)) or "x"  # a URI never has them
    box = Sandbox()
    try:
        image = box.evil(image)
        if uri:
            sif = "docker://" + image
        else:
            sif = str(box.root / "img" / image)
            Path(sif).parent.mkdir(parents=True, exist_ok=True)
            Path(sif).write_text("")
        binds = [box.evil(b) for b in binds]
        done = box.generate(f"--notebook-dir={box.root / 'home'}", f"--sif={sif}", f"--bind={','.join(binds)}")
        assert done.returncode == 0, done.stderr
        job = box.run_job(done.stdout)
        assert job.returncode == 0, job.stderr[-2000:]
        calls = [c["argv"] for c in box.calls("apptainer")]
        if uri:
            assert calls[0][:2] == ["pull", "--force"] and calls[0][3] == sif
            image_path = calls[0][2]
        else:
            image_path = sif
        assert calls[-1][:4] == ["exec", "--bind", ",".join(binds), image_path], calls
        assert not box.canary.exists()
    finally:
        box.close()


UNSPACED = {"--env-modules": "gcc/{}", "--sif": "docker://{}", "--conda-env": "{}"}


@settings(max_examples=40, deadline=None, derandomize=True)
@given(option=st.sampled_from(sorted(UNSPACED)), value=item.filter(lambda s: " " in s or has_control(s)))
def test_names_with_spaces_or_control_characters_are_refused(option: str, value: str) -> None:
    if option == "--conda-env" and not has_control(value):
        value += "\n"  # an env given as a path may hold spaces, never a newline
    box = Sandbox()
    try:
        done = box.generate(f"--notebook-dir={box.root / 'home'}", f"{option}={UNSPACED[option].format(value)}")
        assert done.returncode == 2 and done.stdout == "", done
        lines = done.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"galyleo: error: {option} "), done.stderr
    finally:
        box.close()


SBATCH_OPTIONS = {"--account": "account", "--partition": "partition", "--qos": "qos",
                  "--reservation": "reservation", "--constraint": "constraint"}


# What Slurm takes in each #SBATCH value, written here independently of spec.py (the oracle).
SLURM_NAME = string.ascii_letters + string.digits + "_.-"
SLURM_ALPHABET = {"--account": SLURM_NAME, "--qos": SLURM_NAME, "--reservation": SLURM_NAME,
                  "--partition": SLURM_NAME + ",", "--constraint": SLURM_NAME + "&|,*[]()!:"}


def slurm_takes(option: str, value: str) -> bool:
    if not value or any(c not in SLURM_ALPHABET[option] for c in value):
        return False
    return option != "--partition" or all(value.split(","))  # a partition list has no empty item


def sbatch_outcome(option: str, value: str) -> Optional[str]:
    """The rendered script for `OPTION=VALUE`, or None when spec refuses it (one line naming OPTION)."""
    from galyleo import cli, configfiles, render, spec
    from galyleo.errors import UsageError

    site = configfiles.parse_file(str(DATA / "site.toml"))
    args = cli.make_parser(site).parse_args(["generate", f"{option}={value}", "-d", "/"])
    try:
        launch_spec = spec.build(args, site, home="/")
    except UsageError as exc:
        message = str(exc)
        assert message.startswith(option) and "\n" not in message, message
        return None
    return render.render(launch_spec, site)


def assert_verbatim(option: str, value: str, script: str) -> None:
    assert f"#SBATCH --{SBATCH_OPTIONS[option]}={value}\n" in script
    with tempfile.NamedTemporaryFile("w", suffix=".sh", delete=False) as handle:
        handle.write(script)
    try:
        assert bash_n(Path(handle.name)) == ""
    finally:
        os.unlink(handle.name)


def slurm_value(option: str) -> "st.SearchStrategy[str]":
    word = st.text(st.sampled_from(SLURM_ALPHABET[option].replace(",", "")), min_size=1, max_size=12)
    if option == "--partition":
        return st.lists(word, min_size=1, max_size=3).map(",".join)
    return st.text(st.sampled_from(SLURM_ALPHABET[option]), min_size=1, max_size=16) if option == "--constraint" \
        else word


def test_sbatch_values_slurm_takes_all_reach_the_script() -> None:
    # No early return: a validator that refused everything (or anything Slurm takes) fails here.
    reached: List[str] = []

    @settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(data=st.data(), option=st.sampled_from(sorted(SBATCH_OPTIONS)))
    def one(data: st.DataObject, option: str) -> None:
        value = data.draw(slurm_value(option).filter(lambda v: v != "--"))  # argparse drops `--opt=--`
        script = sbatch_outcome(option, value)
        assert script is not None, f"{option}={value!r} refused although Slurm takes it"
        assert_verbatim(option, value, script)
        reached.append(option)

    one()
    assert len(reached) >= 50 and set(reached) == set(SBATCH_OPTIONS), reached


def test_sbatch_values_hostile_refused_exactly_when_slurm_cannot_take_them() -> None:
    # The oracle, not the validator, says which outcome is right; both must occur.
    outcomes: List[bool] = []

    @settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(option=st.sampled_from(sorted(SBATCH_OPTIONS)),
           value=st.one_of(hostile, st.text(st.sampled_from(SLURM_NAME + "&|,*[]()!:$; '\n"), min_size=1,
                                            max_size=8)).filter(lambda s: s != "--"))
    @example(option="--qos", value="normal\n")  # a trailing newline: `$` instead of `\Z` lets it through
    @example(option="--account", value="abc\n#SBATCH --qos=high")
    @example(option="--partition", value="debug,\ngpu")
    def one(option: str, value: str) -> None:
        script = sbatch_outcome(option, value)
        assert (script is not None) == slurm_takes(option, value), (option, value)
        if script is not None:
            assert_verbatim(option, value, script)
        outcomes.append(script is not None)

    one()
    assert sum(outcomes) >= 5 and outcomes.count(False) >= 20, outcomes


@pytest.mark.parametrize("option", sorted(SBATCH_OPTIONS))
@pytest.mark.parametrize("value", ["a\nb", "a b", "a;b", "$(x)", "`x`", "'a'", "a=b", "é", "a\\b"])
def test_sbatch_values_that_slurm_cannot_take_exit_2(option: str, value: str, cli: Any, test_home: Path) -> None:
    result = cli(["launch", f"{option}={value}", "-d", str(test_home)])
    assert result.status == 2 and len(result.err_lines) == 1 and option in result.err, result
