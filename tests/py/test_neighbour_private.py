"""A shared node (issue 24, items 1 and 4), fast tier: no command line the job starts names
the session, and `launch --wait` reports ready only on the job's own word.

- Every rendered script (each interface, each connection, launch and plain sbatch,
  with and without idle culling) starts Jupyter, Voila and curl with argv that names no
  alias, port or token; those reach them through the environment or a config file.
  The same scripts, run against the recording stand-ins, show it (tests/bats too).
- The job's word that its own route is live (connect/satellite.py routed_by_job) is a regular file of the
  user's own; `launch --wait` waits for it, even when the proxy already answers (a
  route someone else made with a stolen alias answers too).
"""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path
from typing import Iterator, List

import pytest
from test_fuzz_quoting import Sandbox
from test_secrets import FakeClient

from galyleo import cli as galyleo_cli
from galyleo import contract, launch, render, slurm, spec, stop, watch
from galyleo.config import Config
from galyleo.connect import satellite as satellite_mode
from galyleo.slurm import JobInfo

ALIAS = "wages-astonish-recapture"
VARIANTS = [["-i", "lab"], ["-i", "notebook", "--idle-timeout", "5"], ["-i", "voila"],
            ["-i", "lab", "--connect", "ssh"], ["-i", "voila", "--connect", "ssh"]]
NAMES_THE_SESSION = re.compile(r"GALYLEO_ALIAS|GALYLEO_PORT|JUPYTER_TOKEN|galyleo_addr|galyleo_origin|\$[0-9@*]")


def scripts(argv: List[str]) -> Iterator[str]:
    """ARGV's script as `generate` writes it (plain sbatch) and as `launch` does (a handoff)."""
    conf = Config(account="a", satellite_domain="example.test", login_host="login.example.org")
    built = spec.build(galyleo_cli.make_parser(conf).parse_args(["generate", *argv]), conf, home="/")
    yield render.render(built, conf)
    yield render.render(built, conf, render.Handoff(ALIAS, "/t/x.token", "/t/x.out"))


def command_arrays(script: str) -> List[str]:
    """The text of every `galyleo_cmd=(...)` (Jupyter's or Voila's argv)."""
    return re.findall(r"^ *galyleo_cmd=\((.*?)\)$", script, re.M | re.S)


@pytest.mark.parametrize("argv", VARIANTS, ids=" ".join)
def test_jupyter_argv_names_nothing_of_the_session(argv: List[str]) -> None:
    for script in scripts(argv):
        found = command_arrays(script)
        assert found, "no Jupyter command in the script"
        for text in found:
            # the idle settings are the only expansion (numbers that name nothing)
            assert not NAMES_THE_SESSION.search(text.replace('"${GALYLEO_IDLE_SETTINGS[@]}"', "")), text
            assert not re.search(r"--(ServerApp\.|Voila\.)?(ip|port|allow_origin|token)\b", text), text


@pytest.mark.parametrize("argv", VARIANTS, ids=" ".join)
def test_every_curl_takes_what_names_the_session_from_a_config_file(argv: List[str]) -> None:
    for script in scripts(argv):
        calls = [line for line in script.splitlines() if re.search(r"(^|[\s(])curl\s", line)
                 and not line.lstrip().startswith("#")]
        assert calls, "no curl in the script"
        for line in calls:
            assert "-K <(galyleo_curl_config" in line, line
            argv_part = line.split("-K <(", 1)[0]
            assert not NAMES_THE_SESSION.search(argv_part.replace('"$@"', "")), line
        assert "--data-urlencode \"${pair}\"" not in script and "args+=(--data-urlencode" not in script


def test_the_port_probe_takes_address_and_port_from_its_environment() -> None:
    (script, _) = scripts(["-i", "lab"])
    (probe,) = [line for line in script.splitlines() if "/dev/tcp/" in line]
    assert "'exec 3<>\"/dev/tcp/${GALYLEO_PROBE_ADDRESS}/${GALYLEO_PROBE_PORT}\"'" in probe, probe
    assert '"$1"' not in probe and '"$2"' not in probe, probe


@pytest.mark.parametrize("interface", ["lab", "voila"])
def test_a_real_run_shows_no_alias_port_or_token_on_any_command_line(interface: str) -> None:
    box = Sandbox()
    try:
        done = box.generate(f"--notebook-dir={box.root / 'home'}", "-i", interface)
        assert done.returncode == 0, done.stderr
        job = box.run_job(done.stdout)
        assert job.returncode == 0, job.stderr[-2000:]
        (listening,) = box.calls(interface if interface == "voila" else "jupyter", "listening")
        token = (box.root / "out" / "galyleo-4242.url").read_text().split("token=")[1].strip()
        log = (box.root / "log" / "calls.jsonl").read_text().splitlines()
        argvs = [" ".join(r.get("argv") or []) for r in map(json.loads, log)]
        assert len([a for a in argvs if a]) >= 5, argvs  # Jupyter, curl's readiness, the Satellite calls
        for value in (ALIAS, str(listening["port"]), token):
            assert not [a for a in argvs if value in a], value
    finally:
        box.close()


def test_routed_is_only_the_users_own_regular_file(tmp_path: Path) -> None:
    path = tmp_path / "galyleo-1.routed"
    assert not satellite_mode.routed_by_job(str(path))
    path.write_text("2026-12-07T10:00:00Z\n")
    assert satellite_mode.routed_by_job(str(path))
    link = tmp_path / "galyleo-2.routed"
    link.symlink_to(path)
    assert not satellite_mode.routed_by_job(str(link))  # a link someone planted is not the job's word
    os.mkfifo(str(tmp_path / "galyleo-3.routed"))
    assert not satellite_mode.routed_by_job(str(tmp_path / "galyleo-3.routed"))
    if os.getuid() == 0:
        os.chown(str(path), 65534, 65534)
        assert not satellite_mode.routed_by_job(str(path))  # another user's file


def test_clean_removes_the_routed_word_of_a_job_killed_before_its_clean_up(tmp_path: Path) -> None:
    paths = contract.files(str(tmp_path), "galyleo-20261207-101010-abcdef")
    session = contract.Record(name=paths.name, job_id="7", output=paths.output, record=paths.record)
    assert paths.routed in stop.session_files(session)


def wait_for_ready(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, job_routes_at: int) -> List[str]:
    """`launch --wait` whose job runs for 6 polls then fails, its route written by the job at poll
    JOB_ROUTES_AT (0: never: its redeem was refused), the proxy answering from the first poll:
    its exit status, the polls, what it said."""
    polls: List[int] = []
    said = io.StringIO()
    follow = watch.follow
    out = tmp_path / "out"

    def job(job_id: str, retry: bool = True, cluster: str = "") -> JobInfo:
        polls.append(1)
        if len(polls) == job_routes_at:
            output = next(out.glob("*.out"))
            Path(contract.files_of_output(str(output)).routed).write_text("now\n")
        return JobInfo("RUNNING", node="n1") if len(polls) <= 6 else JobInfo("FAILED")

    monkeypatch.setattr("galyleo.satellite.Client", FakeClient)
    monkeypatch.setattr(slurm, "available", lambda: True)
    monkeypatch.setattr(slurm, "submit", lambda path: ("4242", ""))
    monkeypatch.setattr(slurm, "job", job)
    monkeypatch.setattr(watch, "POLL", 0)
    monkeypatch.setattr(watch, "follow", lambda *args, **kw: follow(*args, stream=said, **kw))
    monkeypatch.setattr(satellite_mode, "answers", lambda *a: True)  # someone's route answers at once
    monkeypatch.setattr(satellite_mode.Satellite, "withdraw", lambda *a, **k: pytest.fail("nothing to withdraw"))
    conf = Config(account="a", output_dir=str(out), satellite_domain="example.test")
    args = galyleo_cli.make_parser(conf).parse_args(["launch", "-i", "lab"])
    status = launch.run(spec.build(args, conf, home=str(tmp_path)), conf, launch.Options(quiet=True, wait=True))
    return [str(status), str(len(polls)), said.getvalue()]


def test_wait_is_not_ready_while_the_job_has_not_routed_its_own_alias(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    status, polls, err = wait_for_ready(tmp_path, monkeypatch, job_routes_at=0)
    assert (status, polls) == ("1", "7"), err
    assert "ready" not in err.replace("before the session was ready", ""), err
    assert "job 4242 ended (failed) before the session was ready" in err


def test_wait_is_ready_once_the_job_says_its_route_is_live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    status, polls, err = wait_for_ready(tmp_path, monkeypatch, job_routes_at=3)
    assert (status, polls) == ("0", "3") and "ready: job 4242 on n1" in err, err
