"""Session commands against scripted Slurm replies (no cluster): fake squeue/scancel
on PATH answer from a transcript and log their argv, in batchspawner's style.
Covers the controller being unreachable (UNKNOWN, nothing deleted), the reason
table, ID resolution, and the precedence of settings, case by case.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from galyleo import cli, configfiles, reasons, slurm


def fake_slurm(bin_dir: Path, squeue_out: str, squeue_status: int = 0, scancel_status: int = 0,
               scancel_then: str = "", squeue_empty_then: str = "") -> Path:
    """squeue prints bin/squeue.out and exits with bin/squeue.status (both re-read at every call, so a
    test may change them); scancel exits SCANCEL_STATUS, then runs SCANCEL_THEN; when squeue.out is
    empty, squeue first runs SQUEUE_EMPTY_THEN; sinfo prints bin/sinfo.out, or fails without it.
    Every call's argv is logged."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    log = bin_dir / "calls.log"
    (bin_dir / "squeue.out").write_text(squeue_out)
    (bin_dir / "squeue.status").write_text(str(squeue_status))
    (bin_dir / "scancel.then").write_text(scancel_then)
    for name, body in {
        "squeue": f'[ -s "{bin_dir}/squeue.out" ] || {{ {squeue_empty_then or ":"}; }}\n'
                  f'status=$(cat "{bin_dir}/squeue.status"); cat "{bin_dir}/squeue.out"; [ "$status" = 0 ] || '
                  'echo "slurm_load_jobs error: Unable to contact slurm controller" >&2; exit "$status"',
        "scancel": f'. "{bin_dir}/scancel.then"; [ {scancel_status} = 0 ] || '
                   'echo "scancel: error: Kill job error on job id $2: Unable to contact slurm controller" >&2; '
                   f'exit {scancel_status}',
        "sbatch": "echo should-not-run >&2; exit 1",
        "sinfo": f'[ -e "{bin_dir}/sinfo.out" ] || exit 1; cat "{bin_dir}/sinfo.out"',
    }.items():
        path = bin_dir / name
        logline = f'printf "%s\\0" "$(basename "$0")" "$@" >> "{log}"; printf "\\n" >> "{log}"'
        path.write_text(f"#!/bin/bash\n{logline}\n{body}\n")
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return log


def calls(log: Path, command: str) -> List[List[str]]:
    """The logged argv (without the command name) of each call of COMMAND, in order."""
    lines = log.read_text().splitlines() if log.exists() else []
    found = [line.split("\0")[:-1] for line in lines]
    return [argv[1:] for argv in found if argv and argv[0] == command]


class FakeSatellite:
    """Stands in for satellite.Client: logs each call; known() says whether an alias is still held."""

    log: List[Tuple[str, str]] = []

    def __init__(self, config: object) -> None:
        pass

    def destroy(self, alias: str) -> None:
        self.log.append(("destroy", alias))

    def known(self, alias: str) -> bool:
        self.log.append(("known", alias))
        return True

    def jobstate(self, alias: str) -> str:
        self.log.append(("jobstate", alias))
        return "PE"


@pytest.fixture
def satellite(monkeypatch: pytest.MonkeyPatch) -> List[Tuple[str, str]]:
    """Satellite calls go to FakeSatellite; the list of (call, alias) it logs."""
    from galyleo import satellite as real

    monkeypatch.setattr(real, "Client", FakeSatellite)
    monkeypatch.setattr(FakeSatellite, "log", [])
    return FakeSatellite.log


def record(folder: Path, job_id: str, alias: str, created: str = "2026-11-29T05:00:00Z") -> Path:
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / f"galyleo-20261129-050000-{job_id}.json"
    path.write_text(json.dumps({
        "name": path.stem, "job_id": job_id, "alias": alias, "url": f"https://{alias}.x.test/?token=" + "a" * 64,
        "output": str(folder / f"{path.stem}.out"), "script": str(folder / f"{path.stem}.sh"),
        "interface": "lab", "created": created, "record": str(path),
    }))
    return path


@pytest.fixture
def env(test_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The conftest home and site config, with the fake Slurm first on PATH and no back-off waits."""
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    monkeypatch.setattr(slurm, "BACKOFF", (0.0, 0.0, 0.0))
    return test_home


def run(capsys: pytest.CaptureFixture, *argv: str) -> tuple:
    try:
        status = cli.main(list(argv))
    except SystemExit as exc:
        status = exc.code
    out, err = capsys.readouterr()
    return status, out, err


def test_controller_unreachable_is_unknown_and_nothing_is_deleted(env: Path, tmp_path: Path, capsys) -> None:
    log = fake_slurm(tmp_path / "bin", "", squeue_status=1)
    folder = env / ".galyleo"
    path = record(folder, "101", "aa-bb-cc")
    status, out, _ = run(capsys, "list", "--json")
    assert status == 0
    assert json.loads(out)["sessions"][0]["state"] == "UNKNOWN"
    status, _, err = run(capsys, "clean", "--yes")
    assert status == 1 and "does not answer" in err
    assert path.exists()
    assert log.read_text().count("squeue") == 8  # four tries (with back-off) per command
    assert "scancel" not in log.read_text()


def test_states_reasons_and_ended(env: Path, tmp_path: Path, capsys) -> None:
    fake_slurm(tmp_path / "bin",
               "101|PENDING|PartitionTimeLimit|||N/A|debug\n102|RUNNING|None|node7|9:58|2026|debug\n")
    folder = env / ".galyleo"
    record(folder, "101", "aa-bb-cc")
    record(folder, "102", "dd-ee-ff")
    record(folder, "103", "gg-hh-ii")
    (folder / "galyleo-20261129-050000-103.out").write_text("[galyleo] session ended (exit status 0)\n")
    status, out, _ = run(capsys, "list", "--all", "--json")
    states = {s["job_id"]: s for s in json.loads(out)["sessions"]}
    assert states["101"]["state"] == "PENDING" and states["101"]["never_starts"]
    assert "lower --time-limit" in states["101"]["advice"]
    assert states["102"]["state"] == "RUNNING" and states["102"]["time_left"] == "9:58"
    assert states["103"]["state"] == "ENDED" and states["103"]["ended"] == "completed"
    status, out, _ = run(capsys, "list")
    assert "103" not in out and "RUNNING (9:58 left)" in out and "https://dd-ee-ff" in out
    assert "https://aa-bb-cc" not in out  # URLs only for running sessions


def test_resolve_needs_an_id_when_several_are_live(env: Path, tmp_path: Path, capsys) -> None:
    fake_slurm(tmp_path / "bin", "101|RUNNING|None|n|1:00|x|debug\n102|RUNNING|None|n|1:00|x|debug\n")
    record(env / ".galyleo", "101", "aa-bb-cc")
    record(env / ".galyleo", "102", "dd-ee-ff")
    status, _, err = run(capsys, "open")
    assert status == 2 and "2 live sessions" in err
    status, out, _ = run(capsys, "open", "dd-ee-ff")
    assert status == 0 and out.startswith("https://dd-ee-ff.")
    status, _, err = run(capsys, "open", "999")
    assert status == 2 and "999" in err


def test_clean_removes_only_ended_sessions(env: Path, tmp_path: Path, capsys, satellite) -> None:
    fake_slurm(tmp_path / "bin", "101|RUNNING|None|n|1:00|x|debug\n")
    live = record(env / ".galyleo", "101", "aa-bb-cc")
    ended = record(env / ".galyleo", "102", "dd-ee-ff")
    outside = tmp_path / "precious.txt"
    outside.write_text("keep")
    data = json.loads(ended.read_text())
    data["output"] = str(outside)  # a record must never make clean delete files elsewhere
    ended.write_text(json.dumps(data))
    status, out, _ = run(capsys, "clean", "--yes")
    assert status == 0
    assert live.exists() and not ended.exists() and outside.exists()
    assert satellite == [("known", "dd-ee-ff"), ("destroy", "dd-ee-ff")]  # the ended one's alias, once


def test_every_never_reason_names_an_option() -> None:
    for code, reason in reasons.REASONS.items():
        if reason.never:
            assert "--" in reason.advice, code
    assert reasons.advice("Priority") is None
    assert reasons.explain("WeirdNewReason").words == "Slurm's reason: WeirdNewReason"


PRECEDENCE = [
    # (site, user, environment, command line) -> expected partition and where it came from
    ({}, {}, {}, [], None, "built-in"),
    ({"partition": "site"}, {}, {}, [], "site", "site file"),
    ({"partition": "site"}, {"partition": "user"}, {}, [], "user", "user file"),
    ({"partition": "site"}, {"partition": "user"}, {"SBATCH_PARTITION": "sbatchenv"}, [], "sbatchenv",
     "environment SBATCH_PARTITION"),
    ({"partition": "site"}, {"partition": "user"}, {"SBATCH_PARTITION": "sbatchenv", "GALYLEO_PARTITION": "genv"}, [],
     "genv", "environment GALYLEO_PARTITION"),
    ({"partition": "site"}, {"partition": "user"}, {"GALYLEO_PARTITION": "genv"}, ["-p", "cli"], "cli", None),
]


@pytest.mark.parametrize("site, user, environ, argv, expected, origin", PRECEDENCE)
def test_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, site: Dict[str, str],
                    user: Dict[str, str], environ: Dict[str, str], argv: List[str], expected, origin) -> None:
    home = tmp_path / "home"
    (home / ".config" / "galyleo").mkdir(parents=True)
    site_file = tmp_path / "site.toml"
    site_file.write_text("require_account = false\n" + "".join(f'{k} = "{v}"\n' for k, v in site.items()))
    if user:
        (home / ".config" / "galyleo" / "config.toml").write_text("".join(f'{k} = "{v}"\n' for k, v in user.items()))
    for name in ("SBATCH_PARTITION", "GALYLEO_PARTITION", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GALYLEO_CONFIG", str(site_file))
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    loaded = configfiles.load()
    if origin:
        assert loaded.origins["partition"].startswith(origin)
    status, out, err = run(capsys, "generate", *argv)
    assert status == 0, err
    lines = [line for line in out.splitlines() if line.startswith("#SBATCH --partition=")]
    assert lines == ([f"#SBATCH --partition={expected}"] if expected else [])


def test_config_set_then_show(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, data_dir: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.setenv("GALYLEO_CONFIG", str(data_dir / "site.toml"))
    user_file = tmp_path / ".config" / "galyleo" / "config.toml"
    user_file.parent.mkdir(parents=True)
    user_file.write_text("# my defaults\ncpus = 2\n")
    assert run(capsys, "config", "set", "cpus", "8")[0] == 0
    assert run(capsys, "config", "set", "default_modules", "a/1,b/2")[0] == 0
    assert user_file.read_text().startswith("# my defaults\n")
    status, out, _ = run(capsys, "config", "show", "--json")
    shown = json.loads(out)
    assert shown["cpus"] == {"value": 8, "from": f"user file {user_file}"}
    assert shown["default_modules"]["value"] == ["a/1", "b/2"]
    status, _, err = run(capsys, "config", "set", "cpus", "many")
    assert status == 2 and "whole number" in err
    status, _, err = run(capsys, "config", "set", "colour", "blue")
    assert status == 2 and "unknown key" in err
    assert os.stat(user_file).st_size > 0


COMPLETE = {  # how each shell runs the completion function on COMP_WORDS (the words, the last being completed)
    "bash": ["bash", "-c", 'eval "$(cat "$0")"; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _galyleo; '
             'printf "%s\\n" "${COMPREPLY[@]}"'],
    "zsh": ["zsh", "-c", 'autoload -U compinit && compinit -u; source "$0"; f() { emulate -L sh; COMP_WORDS=("$@"); '
            'COMP_CWORD=$(($# - 1)); _galyleo; printf "%s\\n" "${COMPREPLY[@]}"; }; f "$@"'],
}


def completions(shell: str, script: Path, words: List[str]) -> List[str]:
    done = subprocess.run(COMPLETE[shell] + [str(script), *words], capture_output=True, text=True, timeout=30,
                          check=False)
    assert done.returncode == 0, done.stderr
    found = sorted(set(done.stdout.split()))
    # zsh's bashcompinit leaves the matching to zsh: compare what matches the word being completed
    return [w for w in found if w.startswith(words[-1].rsplit(",", 1)[-1])] if shell == "zsh" else found


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_completion_completes_values_keys_sessions_partitions_modules(
        env: Path, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch, shell: str) -> None:
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed")
    fake_slurm(tmp_path / "bin", "")  # squeue --name galyleo: a pending plain-sbatch job with no record yet
    (tmp_path / "bin" / "squeue.out").write_text("205\n")
    (tmp_path / "bin" / "sinfo.out").write_text("debug\ngpu\n")
    record(env / ".galyleo", "101", "aa-bb-cc")
    lmod = tmp_path / "lmod"
    lmod.write_text("#!/bin/sh\nprintf '/opt/modulefiles:\\ngcc/10(default)\\npy-jupyterlab/4\\n' >&2\n")
    lmod.chmod(0o755)
    monkeypatch.setenv("LMOD_CMD", str(lmod))
    status, out, _ = run(capsys, "completion", shell)
    assert status == 0
    script = tmp_path / f"completion.{shell}"
    script.write_text(out)
    assert completions(shell, script, ["galyleo", "launch", "-i", ""]) == ["lab", "notebook", "voila"]
    assert completions(shell, script, ["galyleo", "config", "set", "time"]) == ["time_limit", "time_limit_max"]
    assert completions(shell, script, ["galyleo", "stop", ""]) == ["205"]  # 101 has ended: only live ones
    assert completions(shell, script, ["galyleo", "status", ""]) == ["101", "205"]
    assert completions(shell, script, ["galyleo", "logs", "1"]) == ["101"]
    assert completions(shell, script, ["galyleo", "launch", "--partition", "d"]) == ["debug"]
    if shell == "bash":  # zsh adds the typed prefix itself
        assert completions(shell, script, ["galyleo", "launch", "-e", "gcc/10,py"]) == ["gcc/10,py-jupyterlab/4"]
        assert completions(shell, script, ["galyleo", "launch", "-e", ""]) == ["gcc/10", "py-jupyterlab/4"]
    assert completions(shell, script, ["galyleo", "stop", "--a"]) == ["--all"]


def test_completion_lists_commands_and_options(capsys) -> None:
    status, out, _ = run(capsys, "completion", "bash")
    assert status == 0
    assert "complete -F _galyleo galyleo" in out
    for word in ("launch", "status", "--conda-yml", "--dry-run", "--follow"):
        assert word in out


@pytest.mark.parametrize("text, expected", [
    ("# c\nClusterName=expanse\nSlurmctldHost=a\n", "expanse"),
    ("clustername = my-cluster # comment\n", "my-cluster"),
    ("SlurmctldHost=a\n", ""),
    ("ClusterName=we$ird`x`\n", "weirdx"),
])
def test_cluster_name_from_slurm_conf(tmp_path: Path, text: str, expected: str) -> None:
    from galyleo import slurm

    conf = tmp_path / "slurm.conf"
    conf.write_text(text)
    assert slurm.cluster_name({"SLURM_CONF": str(conf)}) == expected
