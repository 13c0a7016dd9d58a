"""The user's path end to end (issue 16), against scripted Slurm replies and a fake Satellite:
plain-sbatch sessions found while pending, `--wait` giving up on a job that can never start,
`--dry-run` running the login-node checks, what status/logs/clean/stop say, one vocabulary
for endings, `config show`/`config set` telling the truth, no argparse abbreviations.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import List, Optional, Sequence

import pytest
import sessionkit
from conftest import Clock
from sessionkit import FakeSatellite, calls, fake_slurm, record, run

from galyleo import session_commands, slurm, watch

env = sessionkit.env  # the shared fixture
satellite = sessionkit.satellite  # the shared fixture

PENDING = "101|PENDING|Priority|||N/A|debug\n"
# A plain `sbatch` of a generated script, not yet running: no record, only its job name says it is galyleo's.
STANDALONE = "205|PENDING|Priority|||N/A|debug|2026-11-29T05:00:00|galyleo\n"
OTHER = "300|PENDING|Priority|||N/A|debug|2026-11-29T05:00:00|my-simulation\n"


# --- 1. a plain-sbatch session is known while it is pending --------------------------------------


def test_plain_sbatch_session_is_listed_while_pending(env: Path, tmp_path: Path, capsys) -> None:
    fake_slurm(tmp_path / "bin", STANDALONE + OTHER)
    status, out, _ = run(capsys, "list", "--json")
    assert status == 0
    sessions = json.loads(out)["sessions"]
    assert [s["job_id"] for s in sessions] == ["205"]  # not the user's other job
    assert sessions[0]["state"] == "PENDING" and sessions[0]["name"] == "galyleo-205"
    assert sessions[0]["alias"] == "" and sessions[0]["url"] == ""
    assert sessions[0]["record"] == str(env / ".galyleo" / "galyleo-205.json")  # where the job will write it
    status, out, _ = run(capsys, "list")
    assert "205" in out and "PENDING (waiting for jobs with higher priority)" in out


def test_plain_sbatch_session_status_and_open_while_pending(env: Path, tmp_path: Path, capsys, satellite) -> None:
    fake_slurm(tmp_path / "bin", STANDALONE)
    status, out, _ = run(capsys, "status", "205")
    assert status == 0
    assert "state      PENDING (waiting for jobs with higher priority)" in out
    assert "proxy      no alias yet (the job gets one when it starts)" in out
    assert satellite == []  # no alias to ask the proxy about
    status, out, err = run(capsys, "open")  # the only live session
    assert (status, out) == (1, "")
    assert err == ("galyleo: error: job 205 has no URL yet: PENDING (waiting for jobs with higher priority); "
                   "it gets one when it starts\n")


def test_plain_sbatch_session_is_stopped_while_pending(env: Path, tmp_path: Path, capsys, satellite) -> None:
    squeue_out = tmp_path / "bin" / "squeue.out"
    log = fake_slurm(tmp_path / "bin", STANDALONE, scancel_then=f': > "{squeue_out}"')
    status, out, err = run(capsys, "stop", "205")
    assert (status, err) == (0, "")
    assert out == "stopped job 205\n"
    assert calls(log, "scancel") == [["--state=PENDING", "205"]]
    assert satellite == []  # it never made an alias: nothing to destroy


def test_a_recorded_session_is_not_listed_twice(env: Path, tmp_path: Path, capsys) -> None:
    fake_slurm(tmp_path / "bin", "101|RUNNING|None|node7|9:58|2026|debug|2026-11-29T05:00:00|galyleo\n")
    record(env / ".galyleo", "101", "aa-bb-cc")
    status, out, _ = run(capsys, "list", "--json")
    assert [s["alias"] for s in json.loads(out)["sessions"]] == ["aa-bb-cc"]


# --- 2. --wait gives up on a job that can never start ------------------------------------------


class Slurm:
    """slurm.call scripted for watch: squeue answers ROWS in turn, then the last one for good; sinfo
    answers SINFO (None: fails)."""

    def __init__(self, rows: Sequence[str], sinfo: Optional[str]) -> None:
        self.rows = list(rows)
        self.sinfo = sinfo
        self.asked: List[List[str]] = []

    def call(self, argv: Sequence[str], timeout: int = 60, **_: object) -> subprocess.CompletedProcess:
        self.asked.append(list(argv))
        if argv[0] == "sinfo":
            return subprocess.CompletedProcess(list(argv), 0 if self.sinfo is not None else 1, self.sinfo or "", "")
        if "--sort=-p,i" in argv:
            return subprocess.CompletedProcess(list(argv), 0, "101\n", "")
        return subprocess.CompletedProcess(list(argv), 0, self.rows.pop(0) if len(self.rows) > 1 else self.rows[0], "")


def wait_for(monkeypatch: pytest.MonkeyPatch, scripted: Slurm, clock: Clock) -> tuple:
    """`--wait` on job 101 against SCRIPTED, polling at the real POLL on CLOCK (no real wait)."""
    withdrawn: List[str] = []
    monkeypatch.setattr(slurm, "call", scripted.call)
    stream = io.StringIO()
    status = watch.follow("101", lambda: pytest.fail("a job that never started answered"),
                          lambda: withdrawn.append("101"), stream, holds="its alias")
    return status, [line.split("] ", 1)[1] for line in stream.getvalue().splitlines()], withdrawn


@pytest.mark.parametrize("reason, sinfo, said", [
    ("PartitionTimeLimit", "debug*|2:00:00|4|8000\n",
     "the time limit is above the partition's maximum (the debug partition allows at most 02:00:00); "
     "lower --time-limit"),
    ("PartitionTimeLimit", None, "the time limit is above the partition's maximum; lower --time-limit"),
    ("PartitionConfig", "debug|2:00:00|4|8000\ndebug|2:00:00|8+|16000\n",
     "the partition's nodes cannot give what the job asks for (CPUs, memory, GPUs or node features) "
     "(the largest node in the debug partition has 8 CPUs and 15 GB of memory); "
     "lower --cpus, --memory or --gpus, or choose another --partition"),
])
def test_wait_gives_up_on_a_job_that_can_never_start(monkeypatch: pytest.MonkeyPatch, clock: Clock, reason: str,
                                                      sinfo: Optional[str], said: str) -> None:
    never = f"101|PENDING|{reason}|||N/A|debug\n"
    scripted = Slurm([PENDING, never], sinfo)
    status, lines, withdrawn = wait_for(monkeypatch, scripted, clock)
    assert status == 1 and withdrawn == ["101"]  # cancelled and its alias released, once
    assert lines[-1] == f"job 101 can never start as submitted: {said}; cancelling it and releasing its alias"
    assert "PartitionConfig" not in "\n".join(lines) and scripted.rows == [never]
    if sinfo is not None:
        assert ["sinfo", "--noheader", "--Node", "--format", "%P|%l|%c|%m", "--partition", "debug"] in scripted.asked


def test_every_reason_wait_shows_is_in_words(monkeypatch: pytest.MonkeyPatch, clock: Clock) -> None:
    scripted = Slurm(["101|PENDING|PartitionConfig|||N/A|debug\n"], None)
    _, lines, _ = wait_for(monkeypatch, scripted, clock)
    assert "PartitionConfig" not in lines[0] and "cannot give what the job asks for" in lines[0]
    assert watch.progress(slurm.JobInfo("PENDING", "SomethingNew")) == \
        "queued: Slurm's reason: SomethingNew"


def test_wait_names_the_reason_slurm_settles_on_not_its_first(monkeypatch: pytest.MonkeyPatch, clock: Clock) -> None:
    """Over the time limit, squeue says PartitionConfig for about a second, then PartitionTimeLimit."""
    first = ["101|PENDING|PartitionConfig|||N/A|debug\n"] * 2
    scripted = Slurm([*first, "101|PENDING|PartitionTimeLimit|||N/A|debug\n"], "debug*|2:00:00|4|8000\n")
    status, lines, withdrawn = wait_for(monkeypatch, scripted, clock)
    assert status == 1 and withdrawn == ["101"]
    assert lines[-1] == ("job 101 can never start as submitted: the time limit is above the partition's maximum "
                         "(the debug partition allows at most 02:00:00); lower --time-limit; "
                         "cancelling it and releasing its alias")
    assert "--cpus" not in lines[-1] and len(scripted.rows) == 1


def test_a_passing_never_start_reason_cancels_nothing(monkeypatch: pytest.MonkeyPatch, clock: Clock) -> None:
    """Never-start reasons that each last less than NEVER_SETTLE, with a normal reason between, add up to nothing."""
    brief = ["101|PENDING|PartitionConfig|||N/A|debug\n"] * int(watch.NEVER_SETTLE / watch.POLL)
    ended = "101|COMPLETED|None|node7|0:00|2026|debug\n"
    scripted = Slurm([*brief, PENDING, *brief, "101|PENDING|Resources|||N/A|debug\n", ended], None)
    status, lines, withdrawn = wait_for(monkeypatch, scripted, clock)
    assert withdrawn == [] and not any("can never start" in line for line in lines)
    assert status == 1 and lines[-1].startswith("job 101 ended (") and scripted.rows == [ended]


class LaunchSatellite(FakeSatellite):
    def getlink(self) -> str:
        self.log.append(("getlink", ""))
        return "aa-bb-cc"

    def linktoken(self, alias: str, job_id: str) -> None:
        self.log.append(("linktoken", alias))


@pytest.fixture
def launchable(env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, satellite, site_toml,
               clock: Clock) -> Path:
    """`launch` with the fake Satellite, sbatch answering job 101, a site without default modules, and
    `--wait` on the fake clock."""
    from galyleo import satellite as real

    monkeypatch.setattr(real, "Client", LaunchSatellite)
    monkeypatch.setattr(slurm, "submit", lambda script: ("101", ""))
    monkeypatch.setenv("GALYLEO_CONFIG", str(site_toml('require_account = false\nsatellite_domain = "x.test"\n')))
    return env / ".galyleo"


@pytest.mark.parametrize("how", ["never starts", "Ctrl-C"])
def test_wait_that_cancels_a_pending_job_leaves_no_token(launchable: Path, tmp_path: Path, capsys, satellite,
                                                         monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    if how == "never starts":
        fake_slurm(tmp_path / "bin", "101|PENDING|PartitionTimeLimit|||N/A|debug\n")
    else:
        fake_slurm(tmp_path / "bin", PENDING)
        monkeypatch.setattr(watch, "time", SimpleNamespace(sleep=lambda s: (_ for _ in ()).throw(KeyboardInterrupt),
                                                           strftime=lambda f: "00:00:00"))
    status, out, err = run(capsys, "launch", "--wait", "--no-preflight")
    assert status == (1 if how == "never starts" else 130), err
    assert ("destroy", "aa-bb-cc") in satellite
    assert calls(tmp_path / "bin" / "calls.log", "scancel") == [["--state=PENDING", "101"]]
    assert sorted(p.suffix for p in launchable.iterdir()) == [".ended", ".json", ".out", ".sh"]  # no token left


# --- 4. --dry-run runs the login-node checks ---------------------------------------------------


def test_dry_run_runs_the_login_node_checks(launchable: Path, tmp_path: Path, capsys) -> None:
    fake_slurm(tmp_path / "bin", "")  # sbatch on PATH: a login node; no Jupyter anywhere
    status, out, err = run(capsys, "launch", "--dry-run", "-i", "voila")
    assert (status, out) == (2, "")
    assert err.startswith("galyleo: error: --interface voila: no voila on PATH") and len(err.splitlines()) == 1
    status, out, _ = run(capsys, "launch", "--dry-run", "--no-preflight", "-i", "voila")
    assert status == 0 and "nothing below was called or written" in out
    assert not launchable.exists() or list(launchable.iterdir()) == []


# --- 5. status of a session that ended ----------------------------------------------------------


@pytest.mark.parametrize("held, said", [(False, "alias aa-bb-cc released"),
                                        (True, "alias still held (`galyleo clean` releases it)")])
def test_status_of_an_ended_session_says_what_became_of_its_alias(env: Path, tmp_path: Path, capsys, satellite,
                                                                  monkeypatch: pytest.MonkeyPatch, held: bool,
                                                                  said: str) -> None:
    fake_slurm(tmp_path / "bin", "")
    record(env / ".galyleo", "101", "aa-bb-cc")
    (env / ".galyleo" / "galyleo-20261129-050000-101.out").write_text("[galyleo] session ended (exit status 0)\n")
    monkeypatch.setattr(FakeSatellite, "known", lambda self, alias: self.log.append(("known", alias)) or held)
    status, out, _ = run(capsys, "status", "101")
    assert status == 0
    assert "state      ENDED (completed)" in out
    assert f"proxy      {said}" in out
    assert "unavailable" not in out and ("jobstate", "aa-bb-cc") not in satellite


# --- 6. logs of a pending job ---------------------------------------------------------------------


def test_logs_of_a_pending_job_says_so(env: Path, tmp_path: Path, capsys) -> None:
    fake_slurm(tmp_path / "bin", PENDING)
    record(env / ".galyleo", "101", "aa-bb-cc")
    status, out, err = run(capsys, "logs", "101")
    assert (status, out) == (0, "")
    assert err == "galyleo: job 101 is PENDING (waiting for jobs with higher priority): no output yet\n"


def test_logs_follow_waits_for_a_pending_job_then_prints(env: Path, tmp_path: Path, capsys,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    squeue_out = tmp_path / "bin" / "squeue.out"
    fake_slurm(tmp_path / "bin", PENDING)
    record(env / ".galyleo", "101", "aa-bb-cc")
    output = env / ".galyleo" / "galyleo-20261129-050000-101.out"
    steps: List[int] = []

    def step(seconds: float) -> None:
        steps.append(1)
        assert len(steps) < 20, "still following after the job ended"
        if len(steps) == 3:  # it starts, writes, and ends
            output.write_text("started\n")
            squeue_out.write_text("")

    monkeypatch.setattr(session_commands, "time", SimpleNamespace(sleep=step))
    monkeypatch.setattr(session_commands, "FOLLOW_IDLE", 0.0)
    status, out, err = run(capsys, "logs", "-f", "101")
    assert (status, out) == (0, "started\n")
    assert err == ("galyleo: job 101 is PENDING (waiting for jobs with higher priority): "
                   "waiting for it to start (Ctrl-C stops waiting)\n")


def test_ctrl_c_on_logs_follow_is_a_quiet_exit(env: Path, tmp_path: Path, capsys,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    fake_slurm(tmp_path / "bin", "101|RUNNING|None|node7|9:58|2026|debug\n")
    record(env / ".galyleo", "101", "aa-bb-cc")
    (env / ".galyleo" / "galyleo-20261129-050000-101.out").write_text("line\n")

    def interrupt(seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(session_commands, "time", SimpleNamespace(sleep=interrupt))
    status, out, err = run(capsys, "logs", "-f", "101")
    assert (status, out, err) == (130, "line\n", "")


# --- 8. one vocabulary ----------------------------------------------------------------------------


@pytest.mark.parametrize("squeue_out", ["101|FAILED|NonZeroExitCode|||N/A|debug\n", ""])
def test_a_failure_reads_the_same_whether_slurm_remembers_it_or_not(env: Path, tmp_path: Path, capsys,
                                                                    squeue_out: str) -> None:
    fake_slurm(tmp_path / "bin", squeue_out)
    record(env / ".galyleo", "101", "aa-bb-cc")
    (env / ".galyleo" / "galyleo-20261129-050000-101.out").write_text("[galyleo] session ended (exit status 1)\n")
    status, out, _ = run(capsys, "list", "--all")
    assert status == 0 and "ENDED (failed, exit status 1)" in out


@pytest.mark.parametrize("state, how", [("TIMEOUT", "time limit reached"), ("CANCELLED", "cancelled"),
                                        ("OUT_OF_MEMORY", "out of memory"), ("COMPLETED", "completed")])
def test_slurm_final_states_in_words(env: Path, tmp_path: Path, capsys, state: str, how: str) -> None:
    fake_slurm(tmp_path / "bin", f"101|{state}|None|||N/A|debug\n")
    record(env / ".galyleo", "101", "aa-bb-cc")
    status, out, _ = run(capsys, "list", "--all", "--json")
    assert json.loads(out)["sessions"][0]["ended"] == how


def test_an_unknown_id_points_at_what_list_shows(env: Path, tmp_path: Path, capsys) -> None:
    fake_slurm(tmp_path / "bin", "")
    status, _, err = run(capsys, "stop", "nosuch")
    assert status == 2
    assert err == ("galyleo: error: session 'nosuch': not a job id, alias or session name galyleo knows "
                   "(`galyleo list --all` shows the job ids)\n")


# --- 9. config show and config set ---------------------------------------------------------------


def test_config_show_prints_the_effective_satellite_url(env: Path, capsys) -> None:
    status, out, _ = run(capsys, "config", "show", "--json")
    assert json.loads(out)["satellite_url"] == {"value": "https://manage.proxy.example.org",
                                                "from": "derived from satellite_domain"}
    status, out, _ = run(capsys, "config", "show")
    line = next(line for line in out.splitlines() if line.startswith("satellite_url"))
    assert '"https://manage.proxy.example.org"' in line and line.endswith("derived from satellite_domain")


def test_config_set_help_lists_the_keys(env: Path, capsys) -> None:
    status, out, _ = run(capsys, "config", "set", "--help")
    assert status == 0
    for key in ("time_limit", "partition", "satellite_url", "default_modules"):
        assert key in out


@pytest.fixture
def user_config(env: Path, tmp_path: Path) -> Path:
    fake_slurm(tmp_path / "bin", "")
    (tmp_path / "bin" / "sinfo.out").write_text("site-part|2:00:00|4|8000\n")
    path = env / ".config" / "galyleo" / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text("# mine\n")
    return path


def test_config_set_refuses_a_time_limit_above_the_partition_maximum(user_config: Path, tmp_path: Path,
                                                                     capsys) -> None:
    status, out, err = run(capsys, "config", "set", "time_limit", "3:00:00")
    assert (status, out) == (2, "")
    assert err == ("galyleo: error: config set time_limit '03:00:00': time_limit 03:00:00 is above the maximum: "
                   "the site-part partition allows at most 02:00:00 (a launch would never start)\n")
    assert user_config.read_text() == "# mine\n"
    assert ["--partition", "site-part"] == calls(tmp_path / "bin" / "calls.log", "sinfo")[0][-2:]
    assert run(capsys, "config", "set", "time_limit", "2:00:00")[0] == 0


def test_config_set_partition_checks_the_time_limit_in_effect(user_config: Path, capsys) -> None:
    user_config.write_text('time_limit = "03:00:00"\n')  # the partition in effect allows 2 h
    status, _, err = run(capsys, "config", "set", "partition", "site-part")
    assert status == 2 and "allows at most 02:00:00" in err


# --- 10. stop --all asks ---------------------------------------------------------------------------


def test_stop_all_without_a_terminal_needs_yes(env: Path, tmp_path: Path, capsys, satellite,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    log = fake_slurm(tmp_path / "bin", PENDING)
    record(env / ".galyleo", "101", "aa-bb-cc")
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    status, _, err = run(capsys, "stop", "--all")
    assert status == 1
    assert err == "galyleo: error: not stopping anything without a terminal to ask: use --yes\n"
    assert calls(log, "scancel") == [] and satellite == []
    status, out, _ = run(capsys, "stop", "--all", "--yes")
    assert status == 0 and "stopped job 101 (aa-bb-cc)" in out
    assert calls(log, "scancel") == [["--state=PENDING", "101"]]


@pytest.mark.parametrize("answer, stopped", [("n\n", False), ("y\n", True)])
def test_stop_all_on_a_terminal_asks(env: Path, tmp_path: Path, capsys, satellite, monkeypatch: pytest.MonkeyPatch,
                                     answer: str, stopped: bool) -> None:
    log = fake_slurm(tmp_path / "bin", PENDING)
    record(env / ".galyleo", "101", "aa-bb-cc")
    terminal = io.StringIO(answer)
    terminal.isatty = lambda: True  # type: ignore[method-assign]
    monkeypatch.setattr(sys, "stdin", terminal)
    status, out, _ = run(capsys, "stop", "--all")
    assert "job 101  PENDING (waiting for jobs with higher priority)" in out
    assert "stop these 1 session(s)? [y/N]" in out
    assert (status == 0) == stopped and (calls(log, "scancel") != []) == stopped
    assert ("nothing stopped" in out) != stopped


# --- 11. no abbreviations -------------------------------------------------------------------------


@pytest.mark.parametrize("argv, word", [(["generate", "--tim", "5"], "--tim"), (["stop", "--al"], "--al"),
                                        (["list", "--al"], "--al"), (["launch", "--dry", "-A", "x"], "--dry")])
def test_abbreviated_options_are_refused(env: Path, tmp_path: Path, capsys, argv: List[str], word: str) -> None:
    log = fake_slurm(tmp_path / "bin", PENDING)
    status, out, err = run(capsys, *argv)
    assert (status, out) == (2, "")
    assert err.startswith("galyleo: error: unrecognized arguments: ") and word in err
    assert calls(log, "scancel") == [] and calls(log, "squeue") == []


# --- 13. clean says what it skipped -------------------------------------------------------------


def test_clean_says_what_it_skipped_and_why(env: Path, tmp_path: Path, capsys, satellite) -> None:
    fake_slurm(tmp_path / "bin", "101|COMPLETING|None|node7|0:00|2026|debug\n102|RUNNING|None|node7|9:00|x|debug\n")
    just_stopped = record(env / ".galyleo", "101", "aa-bb-cc")
    running = record(env / ".galyleo", "102", "dd-ee-ff")
    ended = record(env / ".galyleo", "103", "gg-hh-ii")
    status, out, _ = run(capsys, "clean", "--yes")
    assert status == 0
    assert "skipped job 101: COMPLETING, still ending: clean again in a moment" in out.splitlines()
    assert "skipped job 102: RUNNING (9:00 left), not ended" in out.splitlines()
    assert just_stopped.exists() and running.exists() and not ended.exists()

