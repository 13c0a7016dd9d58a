"""`galyleo --host HOST ...` on the laptop, without a network: the ssh argv galyleo builds.

A stand-in `ssh` on PATH logs its argv and plays the master (`-O check`, `-f -N`), the
forwards (it records the private config file it is given) and the remote shell: it runs the
remote command line with `sh -c`, as sshd would, against a stand-in remote galyleo that logs
the argv it receives. So the quoting of every value is checked by a real shell.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List

import pytest

from galyleo import connect, localtunnel, remote, sshmaster
from galyleo.config import Config
from galyleo.connect import ssh as tunnel

FAKE_SSH = r'''#!PYTHON
import json, os, subprocess, sys
argv = sys.argv[1:]
state = os.environ["FAKE_STATE"]
with open(os.path.join(state, "ssh.log"), "a") as log:
    log.write(json.dumps(argv) + "\n")
if "-O" in argv:
    op = argv[argv.index("-O") + 1]
    if op == "check":
        sys.exit(0 if os.path.exists(os.path.join(state, "master")) else 255)
    conf = argv[argv.index("-F") + 1]
    info = os.stat(conf)
    with open(conf) as handle, open(os.path.join(state, "forwards.log"), "a") as log:
        log.write(json.dumps([op, oct(info.st_mode & 0o777), handle.read()]) + "\n")
    sys.exit(0)
if "-f" in argv:
    if os.environ.get("FAKE_LOGIN_FAILS"):
        sys.stderr.write("Host key verification failed.\n")
        sys.exit(255)
    open(os.path.join(state, "master"), "w").close()
    sys.exit(0)
sys.exit(subprocess.run(["sh", "-c", argv[-1]]).returncode)
'''
FAKE_GALYLEO = r'''#!PYTHON
import json, os, sys
state = os.environ["FAKE_STATE"]
args = sys.argv[1:]
if args == ["--version"]:
    print(os.environ.get("FAKE_VERSION", "galyleo 0.9.0 (build 123456789abc)"))
    sys.exit(0)
with open(os.path.join(state, "remote.log"), "a") as log:
    log.write(json.dumps(args) + "\n")
if args[0] in ("launch", "status") and "--json" in args:
    print(os.environ["FAKE_DOC"])
else:
    print("remote said " + " ".join(args))
'''
SSH_DOC = {"job_id": "77", "name": "s", "connect": "ssh", "state": "RUNNING",
           "url": "http://127.0.0.1:23456/?token=" + "ab" * 32,
           "ssh_argv": ["ssh", "-N", "-o", "ExitOnForwardFailure=yes", "-L", "127.0.0.1:23456:node9:51234",
                        "-J", "gw.example.org", "me@login.example.org"]}


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest,
         clean_env: None) -> Dict[str, Any]:
    """The stand-in ssh on PATH, a remote galyleo whose path needs quoting, HOME in tmp_path."""
    state = tmp_path / "state"
    state.mkdir()
    bin_dir, remote_dir = tmp_path / "bin", tmp_path / "remote bin; $(touch pwned)"
    for folder, name, text in ((bin_dir, "ssh", FAKE_SSH), (remote_dir, "galyleo", FAKE_GALYLEO)):
        folder.mkdir()
        (folder / name).write_text(text.replace("PYTHON", sys.executable))
        (folder / name).chmod(0o755)
    home = Path(tempfile.mkdtemp(prefix="h", dir="/tmp"))  # short: a socket path has about 100 bytes
    request.addfinalizer(lambda: shutil.rmtree(home))
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("FAKE_STATE", str(state))
    monkeypatch.setenv("GALYLEO_CONFIG", str(tmp_path / "site.toml"))
    (tmp_path / "site.toml").write_text(f'remote_galyleo = {json.dumps(str(remote_dir / "galyleo"))}\n'
                                        'ssh_jump = "gw.example.org"\nssh_config = "~/my ssh config"\n')
    monkeypatch.chdir(tmp_path)
    return {"state": state, "home": home, "tmp": tmp_path}


def logged(state: Path, name: str) -> List[Any]:
    path = state / name
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_every_ssh_shares_one_private_master_and_every_word_arrives_whole(fake, cli) -> None:
    words = ["it's", "a b", "$(touch pwned)", "`x`", "*", "--x=;|&", "new\nline", "~", ""]
    result = cli(["--host", "me@hpc.example.org", "logs", *words])
    assert result.status == 0, result.err
    calls = logged(fake["state"], "ssh.log")
    assert logged(fake["state"], "remote.log") == [["logs", *words]]
    assert not (fake["tmp"] / "pwned").exists()
    control = os.path.join(str(fake["home"]), ".galyleo", "ssh")
    assert stat.S_IMODE(os.stat(control).st_mode) == 0o700
    config_file = os.path.join(str(fake["home"]), "my ssh config")
    for argv in calls:  # check, master, version, command: one control path, the config, the jump
        assert argv[:3] == ["-F", config_file, "-o"] and argv[3].startswith(f"ControlPath={control}/m-")
        assert argv[4:6] == ["-o", "ProxyJump=gw.example.org"] and "--" in argv
        assert argv[argv.index("--") + 1] == "me@hpc.example.org"
        assert "StrictHostKeyChecking=no" not in " ".join(argv) and "/dev/null" not in argv
    assert len({argv[3] for argv in calls}) == 1
    assert [argv[6:] for argv in calls[:2]] == [
        ["-O", "check", "--", "me@hpc.example.org"],
        ["-o", "ControlMaster=yes", "-o", "ControlPersist=30m", "-f", "-N", "--", "me@hpc.example.org"]]
    assert calls[3][6:10] == ["-o", "ControlMaster=no", "-T", "--"]
    assert stat.S_IMODE(os.stat(calls[3][3].split("=", 1)[1] + ".log").st_mode) == 0o600


def test_a_running_master_is_reused_and_persist_is_a_setting(fake, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GALYLEO_SSH_PERSIST", "90")
    assert cli(["--host", "hpc", "list"]).status == 0
    assert cli(["--host", "hpc", "status"]).status == 0
    starts = [argv for argv in logged(fake["state"], "ssh.log") if "-f" in argv]
    assert len(starts) == 1 and "ControlPersist=90m" in starts[0]


def test_ssh_mode_forward_goes_through_a_private_file_never_argv(fake, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_DOC", json.dumps(SSH_DOC))
    monkeypatch.setattr(localtunnel, "POLL_SECONDS", 0)
    ended = dict(SSH_DOC, state="ENDED")
    calls = {"n": 0}
    real_capture = remote.Remote.capture

    def capture(self: remote.Remote, words: List[str]):  # the first status poll: the session ended
        calls["n"] += 1
        if words[:1] == ["status"]:
            monkeypatch.setenv("FAKE_DOC", json.dumps(ended))
        return real_capture(self, words)

    monkeypatch.setattr(remote.Remote, "capture", capture)
    result = cli(["--host", "hpc", "launch", "-t", "10", "--stop-on-exit"])
    assert result.status == 0, result.err
    assert result.out.strip().splitlines()[-1] == SSH_DOC["url"]
    assert "has ended" in result.err
    assert logged(fake["state"], "remote.log")[0] == ["launch", "-t", "10", "--json"]
    forwards = logged(fake["state"], "forwards.log")
    assert [f[0] for f in forwards] == ["forward", "cancel"] and {f[1] for f in forwards} == {"0o600"}
    assert forwards[0][2].splitlines()[:2] == ["ExitOnForwardFailure yes",
                                               "LocalForward 127.0.0.1:23456 node9:51234"]
    every_word = " ".join(" ".join(argv) for argv in logged(fake["state"], "ssh.log"))
    assert "23456" not in every_word and "51234" not in every_word and "node9" not in every_word
    assert not list(Path(sshmaster.control_dir()).glob("*.fwd")), "the private forward file is removed"


@pytest.mark.parametrize("argv", [
    ["--host"], ["--host", ""], ["--host", "-oProxyCommand=sh"], ["--host", "a b", "list"],
    ["--host", "h;rm", "list"], ["--host", "h\n", "list"], ["--host", "user@@h", "list"],
    ["--host", "h"], ["--host", "h", "completion", "bash"], ["--host", "h", "--verbose", "list"],
    ["--host", "h", "list", "--browser"], ["--host", "h", "--stop-on-exit", "stop"],
    ["--host", "h", "--remote-galyleo", "-x", "list"], ["--host", "h", "--remote-galyleo"],
    ["--host=", "list"],
])
def test_bad_host_command_lines_are_one_line_exit_2_and_run_no_ssh(fake, cli, argv: List[str]) -> None:
    result = cli(argv)
    assert result.status == 2 and len(result.err_lines) == 1 and result.err.startswith("galyleo: error: ")
    assert not (fake["state"] / "ssh.log").exists()
    assert not (fake["home"] / ".galyleo").exists()


def test_a_refused_login_shows_ssh_words_and_runs_nothing_there(fake, cli, monkeypatch) -> None:
    monkeypatch.setenv("FAKE_LOGIN_FAILS", "1")
    result = cli(["--host", "hpc", "launch"])
    assert result.status == 255
    assert "Host key verification failed." in result.err and "could not log in to hpc" in result.err
    assert not logged(fake["state"], "remote.log")


@pytest.mark.parametrize("answer, words", [("galyleo 0.1.0", "is older than this one"), ("", "no galyleo at")])
def test_missing_or_older_remote_galyleo_is_one_line(fake, cli, monkeypatch, answer: str, words: str) -> None:
    monkeypatch.setenv("FAKE_VERSION", answer)
    result = cli(["--host", "hpc", "list"])
    assert result.status == 1 and len(result.err_lines) == 1 and words in result.err
    assert "--remote-galyleo PATH" in result.err and not logged(fake["state"], "remote.log")


def test_control_folder_is_private_and_must_be_ours(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    short = Path(tempfile.mkdtemp(prefix="r", dir="/tmp"))
    request.addfinalizer(lambda: shutil.rmtree(short))
    runtime, other, theirs = short / "run", short / "other", short / "theirs"
    for folder in (runtime, other, theirs, runtime / "galyleo-ssh", theirs / "galyleo-ssh"):
        folder.mkdir(mode=0o755)
    assert sshmaster.control_dir({"XDG_RUNTIME_DIR": str(runtime)}) == str(runtime / "galyleo-ssh")
    assert stat.S_IMODE((runtime / "galyleo-ssh").stat().st_mode) == 0o700
    assert stat.S_IMODE(runtime.stat().st_mode) == 0o755, "the runtime folder itself is left as it is"
    (other / "galyleo-ssh").symlink_to(tmp_path)
    with pytest.raises(sshmaster.GalyleoError, match="not a folder of your own"):
        sshmaster.control_dir({"XDG_RUNTIME_DIR": str(other)})
    if os.getuid() == 0:  # another user's folder, made first where ours would be
        os.chown(theirs / "galyleo-ssh", 65534, 65534)
        with pytest.raises(sshmaster.GalyleoError, match="not a folder of your own"):
            sshmaster.control_dir({"XDG_RUNTIME_DIR": str(theirs)})
    deep = sshmaster.control_dir({"XDG_RUNTIME_DIR": "", "HOME": str(tmp_path / ("x" * 90))})
    assert deep == os.path.join(tempfile.gettempdir(), f"galyleo-ssh-{os.getuid()}")
    assert stat.S_IMODE(os.lstat(deep).st_mode) == 0o700 and not (tmp_path / ("x" * 90)).exists()


def test_remote_line_keeps_a_home_relative_path_expandable() -> None:
    assert remote.remote_line("~/bin/gal yleo", ["list"]) == "~/'bin/gal yleo' list"
    assert remote.remote_line("/opt/galyleo", ["a b"]) == "/opt/galyleo 'a b'"


def test_the_sites_jump_host_goes_into_the_printed_ssh_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tunnel, "user_name", lambda: "me")
    conf = Config(login_host="login.example.org", ssh_jump="me@gw.example.org:2222,gw2")
    found = tunnel.Tunnel(23456, "node9", 51234, tunnel.target(conf), "ab" * 32)
    assert found.ssh_argv()[5:] == ["127.0.0.1:23456:node9:51234", "-J", "me@gw.example.org:2222,gw2",
                                    "me@login.example.org"]
    assert tunnel.url_pattern().match(found.text())["target"] == tunnel.target(conf)
    assert connect.of("ssh", conf).job_values(None)["GALYLEO_SSH_TARGET"] == \
        "-J me@gw.example.org:2222,gw2 me@login.example.org"
    plain = tunnel.Tunnel(23456, "node9", 51234, tunnel.target(Config(login_host="l")), "ab" * 32)
    assert "-J" not in plain.ssh_argv() and tunnel.url_pattern().match(plain.text())
    assert localtunnel.forward_of({"ssh_argv": found.ssh_argv(), "url": found.url()}).spec == \
        "127.0.0.1:23456 node9:51234"


@pytest.mark.parametrize("value", ["-oProxyCommand=x", "gw example", "gw;x", "gw,", ",gw"])
def test_a_bad_ssh_jump_setting_is_refused(site_toml, subprocess_cli, value: str) -> None:
    result = subprocess_cli(["list"], env={"GALYLEO_CONFIG": str(site_toml(f"ssh_jump = {json.dumps(value)}\n"))})
    assert result.status == 2 and "ssh_jump" in result.err and len(result.err_lines) == 1


def test_a_dead_masters_socket_is_removed_before_a_new_login(fake, cli) -> None:
    from galyleo import configfiles as site

    master = sshmaster.make("hpc", site.load().config)
    open(master.control_path, "w").close()  # left behind: `-O check` fails on it
    assert cli(["--host", "hpc", "list"]).status == 0
    assert not os.path.exists(master.control_path)
    assert sum("-f" in argv for argv in logged(fake["state"], "ssh.log")) == 1
