"""The login node under hostile conditions, without a cluster: a CA bundle that is not a
readable file, loose umasks, concurrent `config set`s, sbatch's input variables, a job on
another cluster or still CONFIGURING, numbers out of range, and exceptions that are not
galyleo's own (closed pipes, EOF, OSError): never a traceback, always one line. The
Satellite client's own defences (redirects, drips, trust) are in test_satellite.py.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest
from conftest import DATA, ROOT, hermetic
from fakesatellite import FakeSatellite
from test_launch import finish, launch_env, slurm, start, transcript

from galyleo import config as site
from galyleo import configfiles
from galyleo import slurm as real_slurm

# --- the CA bundle -------------------------------------------------------------------------


@pytest.mark.parametrize("bundle", ["missing", "unreadable", "folder"])
def test_bad_ca_bundle_is_one_line_and_nothing_is_made(bundle: str, tmp_path: Path, fake_satellite: FakeSatellite,
                                                       tls_cert) -> None:
    path = tmp_path / "ca.pem"
    if bundle == "unreadable":
        if os.getuid() == 0:
            pytest.skip("root reads a mode-000 file")
        path.write_text("x")
        path.chmod(0)
    elif bundle == "folder":
        path.mkdir()
    log = slurm(tmp_path)
    env = launch_env(tmp_path, fake_satellite, tls_cert[0], GALYLEO_CA_BUNDLE=str(path))
    done = subprocess.run([sys.executable, "-m", "galyleo", "launch", "--no-preflight"], env=env, text=True,
                          capture_output=True, timeout=60)
    assert done.returncode == 1 and done.stderr == f"galyleo: error: site setting ca_bundle '{path}': " \
                                                   "not a readable file\n", done.stderr
    assert transcript(log) == [] and not (tmp_path / "home" / ".galyleo").exists()


# --- files under any umask ----------------------------------------------------------------


def galyleo(*args: str, env: dict, **kw) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    return subprocess.run([sys.executable, "-m", "galyleo", *args], env=env, text=True, capture_output=True,
                          timeout=120, **kw)


def base_env(tmp_path: Path) -> dict:  # type: ignore[type-arg]
    env = hermetic(dict(os.environ))
    env.update({"HOME": str(tmp_path / "home"), "GALYLEO_CONFIG": str(DATA / "site.toml"), "PYTHONPATH": str(ROOT)})
    (tmp_path / "home").mkdir(exist_ok=True)
    return env


def test_config_set_is_private_under_umask_000(tmp_path: Path) -> None:
    env = base_env(tmp_path)
    done = galyleo("config", "set", "qos", "high", env=env, preexec_fn=lambda: os.umask(0))
    assert done.returncode == 0, done.stderr
    folder = tmp_path / "home" / ".config" / "galyleo"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "config.toml").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "home" / ".config").stat().st_mode) == 0o700  # made by galyleo too


def test_sixteen_parallel_config_sets_all_land(tmp_path: Path) -> None:
    env = base_env(tmp_path)
    keys = {"qos": "q", "reservation": "r", "constraint": "c", "account": "a", "partition": "p", "job_name": "j",
            "cpus": "2", "gpus": "1", "memory": "8", "time_limit": "10", "http_timeout": "7", "ready_timeout": "9",
            "preflight_timeout": "11", "signal_lead": "120", "shiv_keep": "3", "interface": "voila"}
    assert len(keys) == 16
    procs = [subprocess.Popen([sys.executable, "-m", "galyleo", "config", "set", key, value], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for key, value in keys.items()]
    assert [p.wait(timeout=120) for p in procs] == [0] * 16
    folder = tmp_path / "home" / ".config" / "galyleo"
    stored = site.toml_loads((folder / "config.toml").read_text())
    assert set(stored) == set(keys)
    assert sorted(os.listdir(folder)) == ["config.toml"]  # no temporary file, no lock file left


def test_output_dir_others_can_write_in_is_refused_with_one_line_before_any_call(
        tmp_path: Path, fake_satellite: FakeSatellite, tls_cert) -> None:
    log = slurm(tmp_path)
    env = launch_env(tmp_path, fake_satellite, tls_cert[0])
    for name, mode in (("shared", 0o2770), ("open", 0o777), ("sticky", 0o1777)):
        folder = tmp_path / name
        folder.mkdir()
        folder.chmod(mode)
        before = transcript(log)
        done = finish(start(dict(env, GALYLEO_OUTPUT_DIR=str(folder))))
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith(f"galyleo: error: setting output_dir {folder}: writable by group or others")
        assert len(done.stderr.splitlines()) == 1 and transcript(log) == before and list(folder.iterdir()) == []
        assert stat.S_IMODE(folder.stat().st_mode) == mode
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    done = finish(start(dict(env, GALYLEO_OUTPUT_DIR=str(private)), "-Q"))
    assert done.returncode == 0, done.stderr
    assert {stat.S_IMODE(p.stat().st_mode) for p in private.iterdir()} == {0o600}


def test_percent_in_output_dir_is_escaped_for_sbatch_in_launch(tmp_path: Path, fake_satellite: FakeSatellite,
                                                               tls_cert) -> None:
    slurm(tmp_path)
    folder = tmp_path / "out%j"
    done = finish(start(launch_env(tmp_path, fake_satellite, tls_cert[0], GALYLEO_OUTPUT_DIR=str(folder)), "-Q"))
    assert done.returncode == 0, done.stderr
    (script,) = folder.glob("*.sh")
    (output,) = [line for line in script.read_text().splitlines() if line.startswith("#SBATCH --output=")]
    (real_output,) = folder.glob("*.out")
    assert output == f"#SBATCH --output={str(real_output).replace('%', '%%')}"


def test_percent_u_in_output_dir_is_the_users_own_folder_for_launch_and_list(
        tmp_path: Path, fake_satellite: FakeSatellite, tls_cert) -> None:
    """A site's `output_dir = "/shared/galyleo/%u"`: each user's sessions in a folder named for them."""
    import pwd

    slurm(tmp_path)
    user = pwd.getpwuid(os.getuid()).pw_name
    env = launch_env(tmp_path, fake_satellite, tls_cert[0], GALYLEO_OUTPUT_DIR=str(tmp_path / "shared" / "%u"))
    done = finish(start(env, "-Q"))
    assert done.returncode == 0, done.stderr
    mine = tmp_path / "shared" / user
    (script,) = mine.glob("*.sh")
    assert f"#SBATCH --output={mine}/" in script.read_text() and not (tmp_path / "shared" / "%u").exists()
    listed = galyleo("list", "--all", "--json", env=env)
    assert listed.returncode == 0 and json.loads(listed.stdout)["sessions"], listed.stderr


# --- Slurm --------------------------------------------------------------------------------


def test_sbatch_never_sees_an_overriding_variable() -> None:
    environ = {"SBATCH_QOS": "high", "SBATCH_MEM_PER_NODE": "1", "SLURM_MEM_PER_CPU": "1", "SBATCH_EXPORT": "NONE",
               "SLURM_JOB_ID": "9", "SBATCH_CLUSTERS": "c", "SLURM_CLUSTERS": "c", "SLURM_CONF": "/etc/x",
               "HOME": "/h", "PATH": "/bin"}
    assert real_slurm.sbatch_environment(environ) == {"SBATCH_CLUSTERS": "c", "SLURM_CLUSTERS": "c",
                                                      "SLURM_CONF": "/etc/x", "HOME": "/h", "PATH": "/bin"}


def test_sbatch_variables_fold_into_settings_and_the_command_line_wins(
        tmp_path: Path, fake_satellite: FakeSatellite, tls_cert) -> None:
    slurm(tmp_path)
    stub = tmp_path / "bin" / "sbatch"
    stub.write_text(stub.read_text().replace("echo 4242", f'env > "{tmp_path}/sbatch.env"; echo 4242'))
    extra = {"SBATCH_QOS": "high", "SBATCH_RESERVATION": "res9", "SBATCH_CONSTRAINT": "skylake",
             "SBATCH_JOB_NAME": "mine", "SBATCH_MEM_PER_NODE": "999999", "SLURM_MEM_PER_CPU": "7", "SBATCH_GRES": "x"}
    env = launch_env(tmp_path, fake_satellite, tls_cert[0], **extra)
    shown = galyleo("config", "show", env=env)
    assert shown.returncode == 0 and [line.split()[-1] for line in shown.stdout.splitlines()
                                      if line.split()[0] in ("qos", "reservation", "constraint", "job_name")] == [
        "SBATCH_QOS", "SBATCH_RESERVATION", "SBATCH_CONSTRAINT", "SBATCH_JOB_NAME"], shown.stdout
    done = finish(start(env, "-Q", "-q", "normal"))
    assert done.returncode == 0, done.stderr
    (script,) = (tmp_path / "home" / ".galyleo").glob("*.sh")
    lines = script.read_text().splitlines()
    assert "#SBATCH --qos=normal" in lines and "#SBATCH --reservation=res9" in lines
    assert "#SBATCH --constraint=skylake" in lines and "#SBATCH --job-name=mine" in lines
    seen = (tmp_path / "sbatch.env").read_text().splitlines()
    assert not [line for line in seen if line.startswith(("SBATCH_", "SLURM_MEM"))], seen


def test_stop_of_a_configuring_job_releases_its_alias(tmp_path: Path, fake_satellite: FakeSatellite,
                                                      tls_cert) -> None:
    """Nodes allocated, batch script not started: its trap will never run, so stop destroys the alias."""
    log = slurm(tmp_path)
    env = launch_env(tmp_path, fake_satellite, tls_cert[0])
    assert finish(start(env, "-Q")).returncode == 0
    (alias,) = fake_satellite.aliases()
    (tmp_path / "bin" / "squeue.out").write_text("4242|CONFIGURING|None|node1|29:59|N/A|site-part\n")
    done = galyleo("stop", "4242", env=env)
    assert done.returncode == 0, done.stderr
    assert fake_satellite.destroyed(alias) == 1 and fake_satellite.aliases() == []
    cancels = [line.split("\0")[1:-1] for line in log.read_text().splitlines() if line.startswith("scancel")]
    assert ["4242"] in cancels, cancels  # a plain scancel: --state=PENDING cannot end it


# --- numbers ------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["0", "abc", "-1", "9" * 5000, "1.5", "²"])
def test_a_bad_number_in_the_environment_is_one_kind_of_error(value: str, tmp_path: Path) -> None:
    env = dict(base_env(tmp_path), GALYLEO_CPUS=value)
    done = galyleo("list", env=env)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("galyleo: error: environment GALYLEO_CPUS: cpus = ")
    assert done.stderr.endswith(": expected a whole number from 1 to 100000\n") and len(done.stderr) < 300


@pytest.mark.parametrize("key, value", [("http_timeout", "0"), ("port_max", "99999"), ("signal_lead", "99999999"),
                                        ("cpus", "9" * 5000), ("ready_timeout", "0")])
def test_config_set_refuses_out_of_range_and_leaves_the_file(key: str, value: str, tmp_path: Path) -> None:
    env = base_env(tmp_path)
    done = galyleo("config", "set", key, value, env=env)
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1 and "expected a whole number" in done.stderr
    assert not (tmp_path / "home" / ".config" / "galyleo" / "config.toml").exists()


def test_http_timeout_zero_stops_stop_before_it_changes_anything(tmp_path: Path) -> None:
    env = dict(base_env(tmp_path), GALYLEO_HTTP_TIMEOUT="0", PATH=f"{tmp_path / 'bin'}:/usr/bin:/bin")
    log = slurm(tmp_path)
    done = galyleo("stop", "4242", env=env)
    assert done.returncode == 2 and done.stderr == ("galyleo: error: environment GALYLEO_HTTP_TIMEOUT: "
                                                    "http_timeout = 0: expected a whole number from 1 to 3600\n")
    assert not log.exists()  # neither squeue nor scancel ran


# --- no traceback, ever -------------------------------------------------------------------


@pytest.mark.parametrize("command", [["generate", "-A", "a"], ["config", "show"], ["help"]])
def test_closed_pipe_is_quiet(command: List[str], tmp_path: Path) -> None:
    env = base_env(tmp_path)
    shell = f"{sys.executable} -m galyleo {' '.join(command)} | head -c 1 >/dev/null; echo ${{PIPESTATUS[0]}} >&2"
    done = subprocess.run(["bash", "-c", shell], env=env, text=True, capture_output=True, timeout=60)
    assert done.stderr.strip() in ("0", "141"), done.stderr  # 0: all of it fitted in the pipe first


@pytest.mark.parametrize("command", [["generate", "-A", "a"], ["--version"], ["config", "show"], ["list"]])
def test_output_into_a_closed_pipe_exits_141_without_a_word(command: List[str], tmp_path: Path) -> None:
    env = base_env(tmp_path)
    stubs = tmp_path / "bin"  # a controller that answers at once, with no jobs (the machine's may be unreachable)
    stubs.mkdir()
    (stubs / "squeue").write_text("#!/bin/sh\nexit 0\n")
    (stubs / "squeue").chmod(0o755)
    env["PATH"] = f"{stubs}{os.pathsep}{env.get('PATH', os.defpath)}"
    read, write = os.pipe()
    os.close(read)
    try:
        done = subprocess.run([sys.executable, "-m", "galyleo", *command], env=env,
                              stdout=write, stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(write)
    assert (done.returncode, done.stderr) == (141, "")


def test_eof_at_the_clean_prompt_is_one_line(monkeypatch: pytest.MonkeyPatch, cli) -> None:
    from galyleo import stop

    class ClosedTerminal:
        def isatty(self) -> bool:
            return True

        def readline(self) -> str:
            return ""

    monkeypatch.setattr(sys, "stdin", ClosedTerminal())
    monkeypatch.setattr(stop, "clean",
                        lambda config, yes, *which: bool(stop.confirm("remove them?", "not removing anything")))
    result = cli(["clean"])
    assert result.status == 1 and result.err.splitlines()[-1] == "galyleo: error: no answer (end of input)"


@pytest.mark.parametrize("error, line, status", [
    (PermissionError(13, "Permission denied", "/srv/x"), "galyleo: error: /srv/x: Permission denied", 1),
    (ValueError("bad value"), "galyleo: error: internal error (ValueError: bad value); please report it", 70),
])
def test_foreign_exceptions_are_one_line(error: Exception, line: str, status: int, monkeypatch: pytest.MonkeyPatch,
                                         cli, test_home: Path) -> None:
    from galyleo import cli as galyleo_cli

    def explode(*args: object) -> int:
        raise error

    monkeypatch.setattr(galyleo_cli, "run_command", explode)
    result = cli(["list"])
    assert (result.status, result.err) == (status, line + "\n")


def test_quotes_in_values_are_refused_or_shellcheck_clean(tmp_path: Path, shell_checks) -> None:
    """A conda env name or module path with a quote reaches the script intact and quoted."""
    shellcheck, bash_n = shell_checks
    env = base_env(tmp_path)
    notebook = tmp_path / "it's \"here\""
    notebook.mkdir()
    done = galyleo("generate", "-A", "a", "--conda-env", "it's \"mine\"", "-d", str(notebook),
                   "--append-modulepath", "/opt/a'b", env=env)
    assert done.returncode == 0, done.stderr
    script = tmp_path / "job.sh"
    script.write_text(done.stdout)
    assert bash_n(script) == "" and shellcheck([script])[str(script)] == []
    assert "GALYLEO_CONDA_ENV='it'\"'\"'s \"mine\"'" in done.stdout.splitlines()


def test_signal_set_is_every_way_a_session_ends() -> None:
    from galyleo import interrupts

    assert set(interrupts.ENDING) == {signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT}


def test_minus_m_only_for_a_cluster_known_to_be_another(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "slurm.conf"
    conf.write_text("ClusterName=home\n")
    monkeypatch.setenv("SLURM_CONF", str(conf))
    assert real_slurm.on_cluster("faraway") == ["-M", "faraway"]
    assert real_slurm.on_cluster("home") == [] and real_slurm.on_cluster("") == []
    monkeypatch.setenv("SLURM_CONF", str(tmp_path / "missing.conf"))  # configless: this node's name unknown
    assert real_slurm.on_cluster("faraway") == []


@pytest.mark.skipif(not hasattr(sys, "set_int_max_str_digits"), reason="no digit limit before 3.11")
def test_a_5000_digit_number_in_a_config_file_is_one_short_line(site_toml) -> None:
    path = site_toml("cpus = " + "9" * 5000 + "\n")
    with pytest.raises(site.ConfigError) as info:
        configfiles.load(environ={"GALYLEO_CONFIG": str(path)})
    assert str(info.value) == (f"config {path}: a number with thousands of digits: expected a whole number "
                               "in the setting's range")
