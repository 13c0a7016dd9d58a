"""The demo's plumbing, without the cluster: `make demo-shell` hands its stdin to the
shell although its set-up steps run first; the Satellite stand-in restarts only when what
it serves changed (content, not file dates) and keeps its aliases and routes when it must.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from conftest import ROOT

HARNESS = ROOT / "tests" / "harness"


def stub(path: Path, body: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/usr/bin/env bash\n" + body + "\n")
    path.chmod(0o755)


def test_make_demo_shell_passes_its_stdin_to_the_shell(tmp_path: Path) -> None:
    # The real Makefile and demo-shell over stand-in steps: the set-up (`up`) and the install
    # read stdin as ssh does; `on` (the login shell) echoes what it is given.
    for name in ("Makefile", "requirements-dev.txt"):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / ".done").touch()
    harness = tmp_path / "tests" / "harness"
    harness.mkdir(parents=True)
    shutil.copy(HARNESS / "demo-shell", harness / "demo-shell")
    stub(harness / "up", "cat >/dev/null")
    stub(harness / "install-galyleo", "cat >/dev/null")
    stub(harness / "on", "cat")
    (tmp_path / "env.sh").write_text(f"GALYLEO_TEST_USER=../{tmp_path}\nLOGIN_HOST=login\n"
                                     "CLUSTER_NODES=node1\nJUPYTER_MODULE=jupyter\n")
    env = dict(os.environ, GALYLEO_HARNESS_ROOT=str(tmp_path))
    done = subprocess.run(["make", "-s", "demo-shell", "VPY=true"], cwd=tmp_path, input="galyleo list\n",
                          capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "galyleo list\n"


def serves_other(tmp: Path, src: Path, *words: str) -> bool:
    """lib.sh's restart decision for a stand-in started from src (stamp, pid file in tmp)."""
    script = ('. "$1/lib.sh"; shift; src=$1; shift; sum=$(served_sum "$src" "$@"); '
              'serves_other "$ROOT/standin.sum" "$sum" "$ROOT/standin.pid" "$src"')
    env = dict(os.environ, GALYLEO_HARNESS_ROOT=str(tmp), ROOT=str(tmp))
    done = subprocess.run(["bash", "-c", script, "x", str(HARNESS), str(src), *words], env=env,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode in (0, 1), done.stderr
    return done.returncode == 0


def stamp(tmp: Path, src: Path, *words: str) -> None:
    """What satellite-up writes when it starts the stand-in."""
    script = ('. "$1/lib.sh"; shift; src=$1; shift; '
              'echo "$(<"$ROOT/standin.pid") $(served_sum "$src" "$@")" >"$ROOT/standin.sum"')
    env = dict(os.environ, GALYLEO_HARNESS_ROOT=str(tmp), ROOT=str(tmp))
    subprocess.run(["bash", "-c", script, "x", str(HARNESS), str(src), *words], env=env, check=True)


def test_the_stand_in_restarts_only_when_what_it_serves_changed(tmp_path: Path) -> None:
    src = tmp_path / "satellite_standin.py"
    src.write_text("print('stand-in')\n")
    (tmp_path / "standin.pid").write_text("1\n")
    stamp(tmp_path, src, "--subnet", "198.18.0.0/24")
    # A newer clone: the same file, a newer date.
    os.utime(src, (2e9, 2e9))
    assert not serves_other(tmp_path, src, "--subnet", "198.18.0.0/24")
    assert serves_other(tmp_path, src, "--subnet", "10.0.0.0/8")
    src.write_text("print('stand-in, changed')\n")
    os.utime(src, (1e9, 1e9))
    assert serves_other(tmp_path, src, "--subnet", "198.18.0.0/24")


def test_a_stand_in_started_before_stamps_is_kept_unless_its_source_is_newer(tmp_path: Path) -> None:
    src = tmp_path / "satellite_standin.py"
    src.write_text("print('stand-in')\n")
    pidfile = tmp_path / "standin.pid"
    pidfile.write_text("1\n")
    os.utime(src, (1e9, 1e9))
    assert not serves_other(tmp_path, src)
    assert (tmp_path / "standin.sum").exists()
    (tmp_path / "standin.sum").unlink()
    os.utime(src, (2e9, 2e9))
    assert serves_other(tmp_path, src)


def test_a_stamp_of_another_process_does_not_vouch_for_the_running_one(tmp_path: Path) -> None:
    # Started again by a script that writes no stamp (an older clone): the stamp is stale.
    src = tmp_path / "satellite_standin.py"
    src.write_text("print('stand-in')\n")
    pidfile = tmp_path / "standin.pid"
    pidfile.write_text("1\n")
    stamp(tmp_path, src)
    os.utime(src, (1e9, 1e9))
    pidfile.write_text("2\n")
    os.utime(src, (2e9, 2e9))
    assert serves_other(tmp_path, src)
    os.utime(src, (1e9, 1e9))
    assert not serves_other(tmp_path, src)
    assert (tmp_path / "standin.sum").read_text().startswith("2 ")


def standin(root: Path, saved: object = None) -> object:
    import importlib.util

    spec = importlib.util.spec_from_file_location("satellite_standin", HARNESS / "satellite_standin.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module.Satellite(str(root), "satellite.test", ["alpha", "beta", "gamma"], saved)


def test_a_restarted_stand_in_keeps_aliases_and_routes(tmp_path: Path) -> None:
    import json

    first = standin(tmp_path)
    reply = first.handle("getlink", "GET", {}, "127.0.0.1")  # type: ignore[attr-defined]
    alias = reply.split()[-1]
    first.handle("redeemtoken", "GET", {"token": alias, "port": "8888"}, "127.0.0.5")  # type: ignore[attr-defined]
    pending = first.handle("getlink", "GET", {}, "127.0.0.1").split()[-1]  # type: ignore[attr-defined]
    state = tmp_path / "state.json"
    first.save(str(state))  # type: ignore[attr-defined]
    assert state.stat().st_mode & 0o077 == 0
    routes = tmp_path / "routes.txt"
    routes.unlink()
    second = standin(tmp_path, json.loads(state.read_text()))
    assert f"{alias} 127.0.0.5:8888\n" in routes.read_text()
    assert {r["alias"]: r["state"] for r in second.state()} == {alias: "proxied", pending: "pending"}  # type: ignore[attr-defined]
    second.handle("destroytoken", "GET", {"token": alias}, "127.0.0.5")  # type: ignore[attr-defined]
    assert alias not in routes.read_text()


ON_STUB = r'''
state=$(dirname "$0")/../state
case " $* " in
  *" launch "*) echo launch >>"$state/launches"
    printf '%s\n' "Submitted batch job 42 (session s)" "Job output: /out" \
      "ssh -N -o ExitOnForwardFailure=yes -L 127.0.0.1:8001:node1:9001 galytest@198.19.0.3" \
      "http://127.0.0.1:8001/?token=t" ;;
  *" %i "*) [[ -e $state/running ]] && echo 42 || true ;;
  *" %N "*) echo node1 ;;
esac
'''


def fake_demo(tmp: Path) -> Path:
    """The real demo script over stand-ins for the cluster: `on` answers launch and squeue."""
    harness = tmp / "harness"
    harness.mkdir()
    shutil.copy(HARNESS / "demo", harness / "demo")
    stub(harness / "install-galyleo", "cat >/dev/null")
    stub(harness / "on", ON_STUB)
    (tmp / "state").mkdir()
    (tmp / "ssh").mkdir()
    (tmp / "ssh" / "host_ed25519.pub").write_text("ssh-ed25519 AAAAhostkey root@login\n")
    (tmp / "env.sh").write_text(f"GALYLEO_TEST_USER=../{tmp}\nLOGIN_HOST=login\nJUPYTER_MODULE=jupyter\n"
                                "LOGIN_PUBLIC_ADDR=198.19.0.3\nLAPTOP_SSH_KEY=/keys/laptop\n")
    return harness / "demo"


def run_demo(tmp: Path, demo: Path) -> str:
    env = dict(os.environ, GALYLEO_HARNESS_ROOT=str(tmp))
    done = subprocess.run(["bash", str(demo), "ssh"], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_demo_ssh_prints_the_command_to_run_here_and_how_to_stop(tmp_path: Path) -> None:
    out = run_demo(tmp_path, fake_demo(tmp_path))
    known = tmp_path / "ssh" / "known_hosts"
    assert (f"  ssh -i /keys/laptop -o UserKnownHostsFile={known} -N -o ExitOnForwardFailure=yes"
            " -L 127.0.0.1:8001:node1:9001 galytest@198.19.0.3\n") in out
    assert known.read_text() == "198.19.0.3 ssh-ed25519 AAAAhostkey\n"
    assert "  printf 'galyleo stop 42\\n' | make demo-shell\n" in out
    assert (tmp_path / "demo-ssh.session").stat().st_mode & 0o077 == 0


def test_demo_shows_its_running_session_again_instead_of_launching_another(tmp_path: Path) -> None:
    demo = fake_demo(tmp_path)
    launches = tmp_path / "state" / "launches"
    run_demo(tmp_path, demo)
    (tmp_path / "state" / "running").touch()
    again = run_demo(tmp_path, demo)
    assert launches.read_text() == "launch\n"
    assert "job 42, still runs" in again and "http://127.0.0.1:8001/?token=t" in again
    (tmp_path / "state" / "running").unlink()
    run_demo(tmp_path, demo)
    assert launches.read_text() == "launch\nlaunch\n"
