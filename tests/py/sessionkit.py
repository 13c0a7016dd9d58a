"""What the fast tier's session-command tests share: a scripted Slurm on PATH (squeue, scancel,
sinfo answering from files, every call's argv logged, in batchspawner's style), a Satellite
client that only logs its calls, a session record written as launch writes one, the CLI run
in-process, and the shell completion function run on a line being typed.
Fixtures (`env`, `satellite`) are imported by the test files that use them.
"""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path
from typing import Any, Callable, List, Tuple

import pytest

from galyleo import cli, slurm


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
    made: List[object] = []  # one entry per client made (a command should make one)

    def __init__(self, config: object) -> None:
        self.made.append(config)

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
    monkeypatch.setattr(FakeSatellite, "made", [])
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


@pytest.fixture
def user_file(test_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The user's config file, and a scripted Slurm whose sinfo does not answer (no partition check)."""
    fake_slurm(tmp_path / "bin", "")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    path = test_home / ".config" / "galyleo" / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text("# my defaults\ncpus = 2\n")
    return path


def proxy_answers(url: str, config: Any) -> bool:
    """Satellite mode's readiness probe, for a Jupyter app (apps.REDIRECTS)."""
    from galyleo import apps
    from galyleo.connect import satellite as satellite_mode

    return satellite_mode.answers(url, config, apps.REDIRECTS)


def proxy_ready(url: str, config: Any) -> Callable[[], bool]:
    """What launch --wait asks in Satellite mode, less the job's own word (routed_by_job)."""
    return lambda: proxy_answers(url, config)


def withdraw(client: Any, alias: str, job_id: str, keep_unsure: bool = False) -> bool:
    """Satellite mode's withdraw with CLIENT as its proxy client."""
    from galyleo.config import Config
    from galyleo.connect import satellite as satellite_mode
    from galyleo.connect.base import Handoff

    mode = satellite_mode.Satellite(Config())
    mode._client = client
    return bool(mode.withdraw(Handoff(alias, "", ""), job_id, "", keep_unsure))
