"""Daily use (issue 23): the time-limit check on every launch, memory as Slurm writes it,
node choice and other sbatch options, `config unset`, `clean` by id or age, and the small
things a user meets every morning. Scripted Slurm and a fake Satellite; no cluster.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sessionkit
from sessionkit import calls, fake_slurm, run

env = sessionkit.env  # the shared fixtures
satellite = sessionkit.satellite


# --- the time limit is checked against the partition's maximum on every launch ----------------


@pytest.mark.parametrize("extra", [[], ["--dry-run"], ["--json", "--wait"]])
def test_launch_refuses_a_time_limit_above_the_partition_maximum(env: Path, tmp_path: Path, capsys, satellite,
                                                                 extra) -> None:
    log = fake_slurm(tmp_path / "bin", "")
    (tmp_path / "bin" / "sinfo.out").write_text("site-part|2:00:00|4|8000\n")
    status, out, err = run(capsys, "launch", "-t", "3:00:00", *extra)
    assert status == 2
    assert err.count("\n") == 1 and "at most 02:00:00" in err and err.startswith("galyleo: error: --time-limit")
    if "--json" in extra:  # the same error as one JSON object on stdout, for a portal
        assert json.loads(out) == {"error": err[len("galyleo: error: "):-1], "exit": 2}
    else:
        assert out == ""
    assert satellite == [] and calls(log, "sbatch") == []
    assert not list((env / ".galyleo").glob("*")) if (env / ".galyleo").exists() else True


def test_launch_within_the_partition_maximum_is_not_refused_for_it(env: Path, tmp_path: Path, capsys,
                                                                  satellite) -> None:
    fake_slurm(tmp_path / "bin", "")
    (tmp_path / "bin" / "sinfo.out").write_text("site-part|2:00:00|4|8000\n")
    _, _, err = run(capsys, "launch", "-t", "1:00:00", "--dry-run")
    assert "at most" not in err


# --- memory as Slurm writes it ----------------------------------------------------------------


@pytest.mark.parametrize("given, line", [("4G", "4G"), ("4g", "4G"), ("4096M", "4G"), ("4096m", "4G"),
                                         ("1500M", "1500M"), ("1T", "1024G"), ("1t", "1024G"), ("4", "4G"),
                                         ("4GB", "4G"), ("2tb", "2048G")])
def test_memory_as_slurm_writes_it(given: str, line: str) -> None:
    from test_render import sbatch_lines, script

    assert sbatch_lines(script(["-m", given]), "mem") == [f"#SBATCH --mem={line}"]


@pytest.mark.parametrize("given", ["4K", "4X", "0M", "1025T", "4 G", "4\nG", "G", "-4G", "4GiB"])
def test_memory_forms_slurm_would_not_take_are_refused(given: str) -> None:
    from galyleo import rules
    from galyleo.errors import UsageError

    with pytest.raises(UsageError, match="--memory"):
        rules.RULES["memory"]("--memory", given)


@pytest.mark.parametrize("given, stored", [("4g", "4"), ("4096M", "4"), ("1T", "1024")])
def test_config_set_memory_takes_slurm_units_as_whole_gb(env: Path, capsys, given: str, stored: str) -> None:
    status, out, _ = run(capsys, "config", "set", "memory", given)
    assert status == 0 and out.rstrip().endswith(f"memory = {stored}")


def test_config_set_memory_refuses_a_part_of_a_gb(env: Path, capsys) -> None:
    status, out, err = run(capsys, "config", "set", "memory", "1500M")
    assert (status, out) == (2, "") and "whole GB" in err and err.count("\n") == 1


# --- node choice and other sbatch options -------------------------------------------------------


def header(argv: list) -> list:
    from test_render import script

    return [line for line in script(argv).splitlines() if line.startswith("#SBATCH")]


def test_node_choice_becomes_sbatch_lines() -> None:
    lines = header(["-w", "node[01-04],gpu7", "-x", "node9", "--exclusive"])
    assert {"#SBATCH --nodelist=node[01-04],gpu7", "#SBATCH --exclude=node9", "#SBATCH --exclusive"} <= set(lines)
    assert not [line for line in header([]) if "nodelist" in line or "exclu" in line]


def test_sbatch_options_are_rendered_one_line_each_in_order() -> None:
    lines = header(["--sbatch=--mail-type=END,FAIL", "--sbatch=--mail-user=me@example.org", "--sbatch=--hold"])
    assert lines[-4:-1] == ["#SBATCH --mail-type=END,FAIL", "#SBATCH --mail-user=me@example.org", "#SBATCH --hold"]


@pytest.mark.parametrize("given, said", [
    ("--output=/tmp/x", "--output is not for --sbatch"), ("--out=/tmp/x", "--output is not for --sbatch"),
    ("--job-name=x", "--job-name"), ("--signal=B:USR1@5", "--signal"), ("--parsable", "--parsable"),
    ("--wrap=id", "--wrap"), ("--chdir=/", "--chdir"), ("--export=ALL", "--export"), ("--error=e", "--error"),
    ("--time=10", "use galyleo's -t"), ("--nodelist=n1", "use galyleo's -w"),
    ("--mail-type=END\n#SBATCH --output=/tmp/x", "expected one long sbatch option"),
    ("--mail-user=a b", "expected one long sbatch option"), ("-N2", "expected one long sbatch option"),
    ("--mail-user=$(id)", "expected one long sbatch option"), ("mail-type=END", "expected one long sbatch option"),
])
def test_sbatch_options_galyleo_owns_or_unsafe_are_refused(env: Path, capsys, given: str, said: str) -> None:
    status, out, err = run(capsys, "generate", f"--sbatch={given}")
    assert (status, out) == (2, "") and err.count("\n") == 1 and said in err


@pytest.mark.parametrize("option", ["-w", "-x"])
@pytest.mark.parametrize("given", ["node1\n#SBATCH --output=/tmp/x", "/etc/hosts", "node 1", "n;id"])
def test_node_lists_are_checked(env: Path, capsys, option: str, given: str) -> None:
    status, out, err = run(capsys, "generate", option, given)
    assert (status, out) == (2, "") and err.count("\n") == 1 and "node names or ranges" in err


# --- config unset; clean by id or by age --------------------------------------------------------


def test_config_unset_removes_only_that_key(env: Path, capsys) -> None:
    path = env / ".config" / "galyleo" / "config.toml"
    assert run(capsys, "config", "set", "interface", "notebook")[0] == 0
    assert run(capsys, "config", "set", "cpus", "3")[0] == 0
    status, out, _ = run(capsys, "config", "unset", "interface")
    assert status == 0 and out.rstrip().endswith("interface removed")
    assert path.read_text() == "cpus = 3\n"
    shown = next(line for line in run(capsys, "config", "show")[1].splitlines() if line.startswith("interface"))
    assert "user file" not in shown and '"notebook"' in shown  # the site file's value again
    status, out, _ = run(capsys, "config", "unset", "interface")
    assert status == 0 and out.rstrip().endswith("no interface set")


def test_config_unset_of_an_unknown_key_is_refused(env: Path, capsys) -> None:
    status, out, err = run(capsys, "config", "unset", "colour")
    assert (status, out) == (2, "") and "unknown key" in err and err.count("\n") == 1


def test_clean_by_id_removes_only_that_ended_session_without_asking(env: Path, tmp_path: Path, capsys,
                                                                    satellite) -> None:
    from sessionkit import record

    fake_slurm(tmp_path / "bin", "101|RUNNING|None|n|1:00|x|debug\n")
    live = record(env / ".galyleo", "101", "aa-bb-cc")
    one = record(env / ".galyleo", "102", "dd-ee-ff")
    other = record(env / ".galyleo", "103", "gg-hh-ii")
    status, out, _ = run(capsys, "clean", "102")  # no --yes, no terminal: no question for named sessions
    assert status == 0 and not one.exists() and other.exists() and live.exists()
    status, _, err = run(capsys, "clean", "101")
    assert status == 1 and "not ended" in err and live.exists()


def test_clean_older_than_keeps_newer_ended_sessions(env: Path, tmp_path: Path, capsys, satellite) -> None:
    import time

    from sessionkit import record

    from galyleo import contract

    fake_slurm(tmp_path / "bin", "")
    recent = time.strftime(contract.TIME_FORMAT, time.gmtime(time.time() - 86400))
    old = record(env / ".galyleo", "102", "dd-ee-ff", created="2020-01-01T00:00:00Z")
    new = record(env / ".galyleo", "103", "gg-hh-ii", created=recent)
    status, out, _ = run(capsys, "clean", "--older-than", "7", "--yes")
    assert status == 0 and not old.exists() and new.exists()
    assert run(capsys, "clean", "--older-than", "x")[0] == 2
    assert run(capsys, "clean", "--older-than", "7", "103")[0] == 2


class Client:
    """A Satellite that always gives alias aa-bb-cc and takes every linktoken."""

    def __init__(self, config: object) -> None:
        pass

    def getlink(self) -> str:
        return "aa-bb-cc"

    def linktoken(self, alias: str, job_id: str) -> None:
        pass


def fake_submit(monkeypatch) -> None:
    """launch against Client and an sbatch that answers job 4242."""
    from galyleo import satellite, slurm

    monkeypatch.setattr(satellite, "Client", Client)
    monkeypatch.setattr(slurm, "available", lambda: True)
    monkeypatch.setattr(slurm, "submit", lambda script: ("4242", ""))


# --- what a session says about itself; --json --wait; did you mean ----------------------------


def test_a_mistyped_option_gets_a_suggestion(env: Path, capsys) -> None:
    status, out, err = run(capsys, "launch", "--time-limt", "10")
    assert (status, out) == (2, "") and err.count("\n") == 1
    assert err.rstrip().endswith("(did you mean --time-limit?)")


def test_open_of_an_ended_session_says_it_ended(env: Path, tmp_path: Path, capsys) -> None:
    from sessionkit import record

    fake_slurm(tmp_path / "bin", "")  # Slurm has forgotten the job
    record(env / ".galyleo", "102", "dd-ee-ff")
    status, out, err = run(capsys, "open", "102")
    assert (status, out) == (1, "") and "job 102 has ended" in err and "https://" not in err


def test_past_its_time_limit_a_session_is_ending_not_invalid(env: Path, tmp_path: Path, capsys) -> None:
    from sessionkit import record

    fake_slurm(tmp_path / "bin", "101|RUNNING|None|n7|INVALID|x|debug\n")
    record(env / ".galyleo", "101", "aa-bb-cc")
    for command in ("list", "status"):
        status, out, _ = run(capsys, command)
        assert status == 0 and "ENDING (time limit)" in out and "INVALID" not in out


@pytest.mark.parametrize("left, said", [("4:00", "RUNNING (ends in 4 min)"), ("0:30", "RUNNING (ends in 1 min)"),
                                        ("1:00:00", "RUNNING (1:00:00 left)")])
def test_status_and_list_say_when_a_session_ends_soon(env: Path, tmp_path: Path, capsys, left: str,
                                                      said: str) -> None:
    from sessionkit import record

    fake_slurm(tmp_path / "bin", f"101|RUNNING|None|n7|{left}|x|debug\n")
    record(env / ".galyleo", "101", "aa-bb-cc")
    assert said in run(capsys, "list")[1] and said in run(capsys, "status")[1]


def test_launch_json_wait_reports_the_state_it_waited_for(env: Path, capsys, monkeypatch) -> None:
    import json

    from galyleo import slurm, watch

    fake_submit(monkeypatch)
    monkeypatch.setattr(watch, "follow", lambda *args, **kw: 0)
    status, out, _ = run(capsys, "launch", "--no-preflight", "--json", "--wait")
    assert status == 0 and json.loads(out)["state"] == "RUNNING"  # one document, after the wait
    monkeypatch.setattr(watch, "follow", lambda *args, **kw: 1)
    monkeypatch.setattr(slurm, "job", lambda *args, **kw: slurm.JobInfo("ENDED"))
    status, out, _ = run(capsys, "launch", "--no-preflight", "--json", "--wait")
    assert status == 1 and json.loads(out)["state"] == "ENDED"


# --- presets ------------------------------------------------------------------------------------


@pytest.fixture
def presets(env: Path, tmp_path: Path, monkeypatch) -> Path:
    """A site file with a workshop preset and a `short` one; the user's file overrides `short`."""
    from conftest import DATA

    site = tmp_path / "site.toml"
    site.write_text((DATA / "site.toml").read_text() + '\n[presets.workshop]\npartition = "debug"\n'
                    'reservation = "ws1"\ntime_limit = "01:00:00"\nexclusive = true\nenv_modules = ["a/1", "b/2"]\n'
                    '\n[presets.short]\ntime_limit = "10"\n')
    monkeypatch.setenv("GALYLEO_CONFIG", str(site))
    user = env / ".config" / "galyleo" / "config.toml"
    user.parent.mkdir(parents=True)
    user.write_text('[presets.short]\ntime_limit = "20"\n')
    return site


def test_a_preset_fills_in_what_the_command_line_does_not_give(presets: Path, capsys) -> None:
    status, out, err = run(capsys, "generate", "--preset", "workshop", "-t", "30")
    assert status == 0, err
    for line in ("#SBATCH --partition=debug", "#SBATCH --reservation=ws1", "#SBATCH --exclusive",
                 "#SBATCH --time=00:30:00"):  # the command line's -t wins
        assert line in out.splitlines()
    assert "a/1" in out and "b/2" in out


def test_the_users_preset_overrides_the_sites(presets: Path, capsys) -> None:
    status, out, _ = run(capsys, "generate", "--preset", "short")
    assert status == 0 and "#SBATCH --time=00:20:00" in out.splitlines()


def test_presets_are_listed_by_config_show_help_and_completion(presets: Path, capsys) -> None:
    shown = run(capsys, "config", "show")[1]
    assert 'preset workshop: partition="debug"' in shown and 'preset short: time_limit="20"' in shown
    assert "short, workshop" in " ".join(run(capsys, "help", "launch")[1].split())
    assert "--preset) COMPREPLY=($(compgen -W 'short workshop'" in run(capsys, "completion", "bash")[1]


@pytest.mark.parametrize("table, said", [('[presets.short]\noutput = "x"\n', "not a launch option"),
                                         ('[presets.short]\ncpus = [true]\n', "expected text"),
                                         ('[presets.short]\nexclusive = "yes"\n', "true or false")])
def test_a_bad_preset_is_one_line(presets: Path, env: Path, capsys, table: str, said: str) -> None:
    (env / ".config" / "galyleo" / "config.toml").write_text(table)
    status, out, err = run(capsys, "generate", "--preset", "short")
    assert (status, out) == (2, "") and said in err and err.count("\n") == 1
    status, _, err = run(capsys, "generate", "--preset", "nosuch")
    assert status == 2 and "no such preset" in err


# --- relaunch -------------------------------------------------------------------------------------


def launched(env: Path, capsys, monkeypatch, *argv: str) -> dict:
    """`launch ARGV` against a fake Satellite and sbatch; the record it wrote."""
    import json

    fake_submit(monkeypatch)
    status, out, err = run(capsys, "launch", "--no-preflight", *argv)
    assert status == 0, err
    found = [json.loads(p.read_text()) for p in (env / ".galyleo").glob("*.json")]
    return next(r for r in found if r.get("job_id") == "4242")


def test_the_record_keeps_what_the_user_asked_for(env: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    fake_slurm(tmp_path / "bin", "")
    kept = launched(env, capsys, monkeypatch, "-t", "45", "-w", "n1", "--exclusive", "--sbatch=--hold", "-Q")
    assert sorted(kept["options"]["asked"]) == ["--exclusive", "--nodelist=n1", "--sbatch=--hold", "--time-limit=45"]


def test_relaunch_takes_the_earlier_options_and_those_given_override(env: Path, tmp_path: Path, capsys,
                                                                     monkeypatch) -> None:
    fake_slurm(tmp_path / "bin", "")  # the earlier job has ended (Slurm forgot it)
    launched(env, capsys, monkeypatch, "-t", "45", "-w", "n1", "--exclusive", "-c", "2")
    status, out, err = run(capsys, "relaunch", "4242", "-c", "3", "--dry-run", "--no-preflight")
    assert status == 0, err
    lines = out.splitlines()
    for line in ("#SBATCH --time=00:45:00", "#SBATCH --nodelist=n1", "#SBATCH --exclusive",
                 "#SBATCH --cpus-per-task=3"):
        assert line in lines
    assert "relaunching job 4242" in err


def test_relaunch_of_a_record_without_asked_uses_its_options(env: Path, tmp_path: Path, capsys) -> None:
    import json

    from sessionkit import record

    fake_slurm(tmp_path / "bin", "")
    path = record(env / ".galyleo", "102", "dd-ee-ff")
    data = json.loads(path.read_text())
    data["options"] = {"time_limit": "01:15:00", "memory_gb": 6, "partition": "debug", "modules": []}
    path.write_text(json.dumps(data))
    status, out, err = run(capsys, "relaunch", "--dry-run", "--no-preflight")  # the newest session
    assert status == 0, err
    assert {"#SBATCH --time=01:15:00", "#SBATCH --mem=6G", "#SBATCH --partition=debug"} <= set(out.splitlines())


# --- endings that stay true -----------------------------------------------------------------------


def ended_as(capsys, job_id: str) -> str:
    import json

    found = json.loads(run(capsys, "list", "--all", "--json")[1])["sessions"]
    return next(s["ended"] for s in found if s["job_id"] == job_id)


@pytest.mark.parametrize("state, said", [("RUNNING", "stopped by the user"), ("PENDING", "cancelled while pending")])
def test_a_stopped_session_says_so_after_slurm_forgets_it(env: Path, tmp_path: Path, capsys, satellite,
                                                          state: str, said: str) -> None:
    from sessionkit import record

    squeue_out = tmp_path / "bin" / "squeue.out"
    fake_slurm(tmp_path / "bin", f"101|{state}|None|n7|9:00|x|debug\n",
               scancel_then=f'echo "101|CANCELLED|None|n7|0:00|x|debug" > "{squeue_out}"')
    record(env / ".galyleo", "101", "aa-bb-cc")
    assert run(capsys, "stop", "101")[0] == 0
    assert ended_as(capsys, "101") == said  # while Slurm remembers: CANCELLED, but we know better
    squeue_out.write_text("")  # Slurm has forgotten the job
    assert ended_as(capsys, "101") == said


def test_slurms_final_state_is_kept_once_it_forgets_the_job(env: Path, tmp_path: Path, capsys) -> None:
    from sessionkit import record

    squeue_out = tmp_path / "bin" / "squeue.out"
    fake_slurm(tmp_path / "bin", "101|NODE_FAIL|None|n7|0:00|x|debug\n")
    record(env / ".galyleo", "101", "aa-bb-cc")
    assert ended_as(capsys, "101") == "node failure"
    squeue_out.write_text("")
    assert ended_as(capsys, "101") == "node failure"
    assert (env / ".galyleo" / "galyleo-20261129-050000-101.ended").stat().st_mode & 0o077 == 0


def test_slurms_time_limit_line_in_the_output_is_a_time_limit(env: Path, tmp_path: Path, capsys) -> None:
    from sessionkit import record

    fake_slurm(tmp_path / "bin", "")
    path = record(env / ".galyleo", "101", "aa-bb-cc")
    (path.parent / f"{path.stem}.out").write_text(
        "slurmstepd: error: *** JOB 101 ON n7 CANCELLED AT 2026-12-07T20:00:00 DUE TO TIME LIMIT ***\n")
    assert ended_as(capsys, "101") == "time limit reached"


# --- completion -----------------------------------------------------------------------------------


@pytest.mark.parametrize("words, expected", [
    (["galyleo", "stop", ""], ["205"]), (["galyleo", "open", ""], ["205"]),  # 101 has ended
    (["galyleo", "status", ""], ["101", "205"]), (["galyleo", "relaunch", ""], ["101", "205"]),
    (["galyleo", "launch", "--idle-timeout", ""], []), (["galyleo", "launch", "-c", ""], []),
    (["galyleo", "clean", "--older-than", ""], []), (["galyleo", "launch", "-t", ""], []),
])
def test_completion_offers_live_sessions_only_where_they_make_sense(env: Path, tmp_path: Path, capsys,
                                                                    words: list, expected: list) -> None:
    import shutil

    from sessionkit import completions, record

    if shutil.which("bash") is None:
        pytest.skip("bash is not installed")
    fake_slurm(tmp_path / "bin", "205\n")  # every squeue answers job 205 (live, no record yet)
    record(env / ".galyleo", "101", "aa-bb-cc")
    script = tmp_path / "completion.bash"
    script.write_text(run(capsys, "completion", "bash")[1])
    assert completions("bash", script, words) == expected
