"""Idle culling without a cluster: which timeout a launch gets (command line, settings,
the site's cap, Voila), the Jupyter settings it becomes, the activity file the job
keeps (read back by galyleo.idle), and how an idle ending is reported."""

import json
import os
import re
import time
from pathlib import Path
from typing import Callable

import pytest
from conftest import Result

from galyleo import contract, idle, sessions, slurm

SITE = 'require_account = false\n'


def script(cli: Callable[..., Result], *args: str) -> str:
    result = cli(["generate", *args])
    assert result.status == 0, result.err
    return result.out


def minutes_in(text: str) -> int:
    for line in text.splitlines():
        if line.startswith("GALYLEO_IDLE_MINUTES="):
            return int(line.split("=", 1)[1])
    return 0


@pytest.fixture
def site(test_home: Path, site_toml, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    def write(extra: str) -> None:
        monkeypatch.setenv("GALYLEO_CONFIG", str(site_toml(SITE + extra)))
    return write


def test_off_by_default_and_with_zero(site, cli) -> None:
    site("")
    assert minutes_in(script(cli)) == 0
    assert minutes_in(script(cli, "--idle-timeout", "0")) == 0
    # No culling setting reaches Jupyter (the script's own extension reads the timeout, and only acts on it if set).
    assert not re.search(r"--\w+\.(shutdown_no_activity_timeout|cull_\w+)=", script(cli, "--idle-timeout", "0"))
    assert "--ServerApp.shutdown_no_activity_timeout=" in script(cli, "--idle-timeout", "5")


def test_command_line_beats_the_site_default(site, cli) -> None:
    site("idle_timeout = 90\n")
    assert minutes_in(script(cli)) == 90
    assert minutes_in(script(cli, "--idle-timeout", "15")) == 15
    assert minutes_in(script(cli, "--idle-timeout", "0")) == 0  # no cap: users may keep it alive


def test_environment_and_user_file(site, cli, test_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site("idle_timeout = 90\n")
    user = test_home / ".config" / "galyleo" / "config.toml"
    user.parent.mkdir(parents=True)
    user.write_text("idle_timeout = 45\n")
    assert minutes_in(script(cli)) == 45
    monkeypatch.setenv("GALYLEO_IDLE_TIMEOUT", "20")
    assert minutes_in(script(cli)) == 20


def test_site_cap(site, cli) -> None:
    site("idle_timeout_max = 120\n")
    assert minutes_in(script(cli)) == 120  # "never" is not the user's to choose under a cap
    assert minutes_in(script(cli, "--idle-timeout", "30")) == 30
    for bad in ("0", "121", "99999"):
        result = cli(["generate", "--idle-timeout", bad])
        assert result.status == 2 and result.out == ""
        assert result.err_lines == [f"galyleo: error: --idle-timeout '{bad}': expected whole minutes from 1 to 120"
                                    " (this site's idle_timeout_max)"]


def test_a_setting_over_the_cap_names_the_setting(site, cli) -> None:
    site("idle_timeout = 500\nidle_timeout_max = 120\n")
    result = cli(["generate"])
    assert result.status == 2
    assert result.err_lines[-1].startswith("galyleo: error: setting idle_timeout '500': expected whole minutes")


def test_voila_refuses_a_typed_timeout_and_ignores_the_default(site, cli) -> None:
    site("idle_timeout = 60\n")
    result = cli(["generate", "-i", "voila", "--idle-timeout", "5"])
    assert result.status == 2 and result.out == ""
    assert "--idle-timeout: not available with --interface voila" in result.err
    text = script(cli, "-i", "voila")
    assert minutes_in(text) == 0 and "cull" not in text.lower().replace("culling", "")
    assert minutes_in(script(cli, "-i", "voila", "--idle-timeout", "0")) == 0


def test_five_thousand_digits_is_a_usage_error(site, cli) -> None:
    site("")
    result = cli(["generate", "--idle-timeout", "9" * 5000])
    assert result.status == 2 and len(result.err_lines) == 1
    assert result.err_lines[0].startswith("galyleo: error: --idle-timeout ")


def test_settings_follow_the_timeout() -> None:
    assert idle.jupyter_settings(0) == ()
    settings = dict(s.split("=", 1) for s in idle.jupyter_settings(60))
    assert settings == {
        "--ServerApp.shutdown_no_activity_timeout": "3600",
        "--MappingKernelManager.cull_idle_timeout": "3600",
        "--MappingKernelManager.cull_interval": "60",
        "--MappingKernelManager.cull_connected": "True",
        "--MappingKernelManager.cull_busy": "False",
        "--TerminalManager.cull_inactive_timeout": "3600",
        "--TerminalManager.cull_interval": "60",
    }
    assert idle.cull_interval(60) == 15 and idle.cull_interval(20) == 10 and idle.cull_interval(86400) == 60
    assert idle.watch_interval(0) == idle.WATCH_INTERVAL and idle.watch_interval(1) == 15


def write_activity(out: Path, timeout: int, kernels: int, last: str) -> None:
    path = Path(idle.activity_path(str(out)))
    status = {"connections": 0, "kernels": kernels, "last_activity": last, "started": last}
    path.write_text(json.dumps({"idle_timeout": timeout, "status": status}) + "\n")


def test_activity_round_trip_and_estimate(tmp_path: Path) -> None:
    out = tmp_path / "galyleo-7.out"
    assert idle.read_activity(str(out)) is None
    write_activity(out, 600, 0, "2026-12-02T10:50:50.028352Z")
    activity = idle.read_activity(str(out))
    assert activity is not None
    assert activity.last_activity == 1796208650.0  # 2026-12-02T10:50:50Z
    assert activity.ends_around() == activity.last_activity + 600 + idle.SERVER_CHECK
    write_activity(out, 600, 3, "2026-12-02T10:50:50Z")
    busy = idle.read_activity(str(out))
    assert busy is not None and busy.ends_around() == busy.last_activity + 600 + 60 + idle.SERVER_CHECK


@pytest.mark.parametrize("text", ["", "{", '{"idle_timeout": 60}', '{"idle_timeout": "x", "status": {}}',
                                  '{"idle_timeout": 60, "status": {"last_activity": "yesterday"}}', "[]"])
def test_a_damaged_activity_file_is_no_activity(tmp_path: Path, text: str) -> None:
    out = tmp_path / "galyleo-7.out"
    Path(idle.activity_path(str(out))).write_text(text)
    assert idle.read_activity(str(out)) is None


def test_an_idle_ending_is_reported_as_idle(tmp_path: Path) -> None:
    out = tmp_path / "galyleo-9.out"
    out.write_text(f"[galyleo] {idle.ended_message(30)}\n[galyleo] session ended (exit status 0)\n")
    Path(contract.files_of_output(str(out)).ending).write_text(idle.ending(30) + "\n")  # the job's own word
    session = contract.Record("galyleo-9", "9", "a-b-c", "", str(out), "", "lab", "", "")
    assert sessions.ended_how(session, "") == "idle for 30 min"


def test_status_line_for_an_idle_estimate(tmp_path: Path) -> None:
    out = tmp_path / "galyleo-5.out"
    now = time.time()
    last = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(now - 120))
    write_activity(out, 600, 0, last)
    line = idle.words(idle.read_activity(str(out)), now)
    assert line.startswith("ends if idle: after 10 min without activity; last activity 2 min ago; by about ")
    assert idle.words(None, now) == ""
    os.remove(idle.activity_path(str(out)))


def test_status_and_list_show_idle_state(test_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys) -> None:
    """Scripted Slurm (sessionkit's fake squeue): a running session with an activity file shows
    when it ends if idle; an ended one whose output says idle is ENDED (idle ...), also in --json."""
    from sessionkit import fake_slurm, record, run

    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    monkeypatch.setattr(slurm, "BACKOFF", (0.0, 0.0, 0.0))
    from galyleo import satellite as real

    monkeypatch.setattr(real.Client, "jobstate", lambda self, alias: "PR")
    fake_slurm(tmp_path / "bin", "101|RUNNING|None|node1|9:58|2026|debug\n102|COMPLETED|None|node1|0:00|x|debug\n")
    folder = test_home / ".galyleo"
    record(folder, "101", "aa-bb-cc")
    record(folder, "102", "dd-ee-ff")
    last = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() - 300))
    write_activity(folder / "galyleo-20261129-050000-101.out", 1800, 1, last)
    (folder / "galyleo-20261129-050000-102.out").write_text(f"[galyleo] {idle.ended_message(30)}\n")
    (folder / "galyleo-20261129-050000-102.ending").write_text(idle.ending(30) + "\n")
    status, out, _ = run(capsys, "status", "101")
    assert status == 0
    assert "idle       ends if idle: after 30 min without activity; last activity 5 min ago; by about " in out
    status, out, _ = run(capsys, "list", "--all", "--json")
    docs = {s["job_id"]: s for s in json.loads(out)["sessions"]}
    expected = idle.read_activity(str(folder / "galyleo-20261129-050000-101.out"))
    assert expected is not None
    assert docs["101"]["idle_ends"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expected.ends_around()))
    assert docs["102"]["state"] == "ENDED" and docs["102"]["ended"] == "idle for 30 min"
    assert docs["102"]["idle_ends"] == ""
