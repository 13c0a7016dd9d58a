"""ssh-tunnel mode, tier 1: choosing the mode (site keys, --connect), the local-port rule,
the URL file's reader, the rendered script (no Satellite value in it), and launch/open/
list/status against a fake sbatch/squeue with a Satellite client that fails if touched.
The job side runs for real in tests/bats/tunnel.bats; a real cluster in test_cluster_ssh.py.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any, List, Tuple

import jsonschema
import pytest
from sessionkit import completions, env, fake_slurm, run  # noqa: F401 (fixtures)

from galyleo import cli, launch, records, slurm, spec
from galyleo.config import Config
from galyleo.connect import ssh as tunnel
from galyleo.errors import UsageError
from galyleo.render import render

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "docs" / "session.schema.json").read_text())
TOKEN = "ab" * 32


def build(argv: List[str], conf: Config, home: str) -> spec.LaunchSpec:
    return spec.build(cli.make_parser(conf).parse_args(["generate"] + argv), conf, home=home)


class NoSatellite:
    """Any use of the Satellite client fails the test: ssh mode makes no Satellite call."""

    def __init__(self, *args: Any) -> None:
        raise AssertionError("a Satellite client was made in ssh mode")


@pytest.fixture
def no_satellite(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("galyleo.satellite.Client", NoSatellite)


# --- the mode -------------------------------------------------------------------------

@pytest.mark.parametrize("site, argv, expected", [
    ({}, [], "satellite"),
    ({}, ["--connect", "ssh"], "ssh"),
    ({"connect": "ssh"}, [], "ssh"),
    ({"connect": "ssh"}, ["--connect", "satellite"], "satellite"),
    ({"connect": "ssh", "connect_allowed": ["ssh"]}, [], "ssh"),
])
def test_mode_from_site_and_option(tmp_path: Path, site: dict, argv: List[str], expected: str) -> None:
    conf = Config(require_account=False, login_host="login.example.org", **site)
    assert build(argv, conf, str(tmp_path)).connect == expected


@pytest.mark.parametrize("site, argv, message", [
    ({"connect_allowed": ["ssh"]}, [], "setting connect 'satellite': not allowed at this site (connect_allowed: ssh)"),
    ({"connect": "ssh", "connect_allowed": ["ssh"]}, ["--connect", "satellite"],
     "--connect 'satellite': not allowed at this site (connect_allowed: ssh)"),
    ({}, ["--connect", "tunnel"], "--connect 'tunnel': expected one of satellite, ssh"),
    ({"connect_allowed": ["ssh", "vpn"]}, [], "setting connect_allowed 'ssh,vpn': expected a list of satellite"),
    ({"connect_allowed": []}, [], "setting connect_allowed '': expected a list of satellite"),
    ({"connect": "ssh", "bind_address": "0.0.0.0"}, [], "setting bind_address '0.0.0.0': expected the node's cluster"),
])
def test_mode_refusals_name_the_option_or_setting(tmp_path: Path, site: dict, argv: List[str], message: str) -> None:
    conf = Config(require_account=False, **site)
    with pytest.raises(UsageError) as caught:
        build(argv, conf, str(tmp_path))
    assert str(caught.value).startswith(message)


# Every spelling of "every interface" a site admin might write, IPv4 and IPv6, written out here
# (not read from tunnel.EVERY_INTERFACE, so that a set that forgets one fails this test).
EVERY_INTERFACE_FORMS = (
    "0.0.0.0", "::", "[::]", "0:0:0:0:0:0:0:0", "[0:0:0:0:0:0:0:0]", "0000:0000:0000:0000:0000:0000:0000:0000",
    "::0", "0::0", "::0.0.0.0", "::ffff:0.0.0.0", "::ffff:0:0", "::%eth0", "[::%eth0]", " :: ",
    "0", "0.0", "0x0", "00.0.0.0", "*",
)


def every_interface_forms() -> List[str]:
    """The forms above, and each member of the code's own set as plain and bracketed text."""
    own = [str(address) for address in tunnel.EVERY_INTERFACE]
    return list(EVERY_INTERFACE_FORMS) + own + [f"[{address}]" for address in own]


@pytest.mark.parametrize("address", every_interface_forms())
def test_ssh_mode_refuses_every_spelling_of_every_interface(tmp_path: Path, address: str) -> None:
    conf = Config(require_account=False, connect="ssh", bind_address=address)
    with pytest.raises(UsageError) as caught:
        build([], conf, str(tmp_path))
    assert str(caught.value).startswith(f"setting bind_address {address!r}: expected the node's cluster address")


@pytest.mark.parametrize("address", ["", "10.0.0.5", "::1", "fe80::1", "node1.cluster", "0.0.0.1"])
def test_ssh_mode_takes_one_address_or_the_resolved_one(tmp_path: Path, address: str) -> None:
    conf = Config(require_account=False, connect="ssh", bind_address=address, login_host="login.example.org")
    assert build([], conf, str(tmp_path)).connect == "ssh"


def test_bad_connect_or_login_host_in_the_site_file_is_refused(site_toml, subprocess_cli) -> None:
    for text, words in (('connect = "vpn"\n', "connect = 'vpn': expected one of satellite, ssh"),
                        ('login_host = "a b"\n', "login_host = 'a b': expected a host name")):
        result = subprocess_cli(["generate"], env={"GALYLEO_CONFIG": str(site_toml(text))})
        assert result.status == 2 and words in result.err and result.out == ""


# --- the local-port rule -----------------------------------------------------------------

def test_local_port_is_random_high_not_8888_and_neighbours_rarely_collide() -> None:
    ports = [tunnel.local_port() for _ in range(2000)]
    assert all(tunnel.LOCAL_PORT_MIN <= p < tunnel.LOCAL_PORT_MIN + tunnel.LOCAL_PORT_SPAN for p in ports)
    assert 8888 not in ports and tunnel.LOCAL_PORT_MIN + tunnel.LOCAL_PORT_SPAN <= 32768  # below Linux's ephemeral
    assert tunnel.LOCAL_PORT_MIN > 8888 and tunnel.LOCAL_PORT_SPAN >= 10000  # range: 8888 never, 1 in 10000 collide
    assert len(set(ports)) > 1500  # random, not one rule: 2000 draws of 10000 repeat about 180 times
    assert "job" not in tunnel.port_rule()  # nothing from the job id: the job draws from /dev/urandom


def test_printed_ssh_command_fails_when_its_local_port_is_taken() -> None:
    argv = tunnel.Tunnel(24242, "10.1.2.3", 61234, "a@b", TOKEN).ssh_argv()
    assert argv[:4] == ["ssh", "-N", "-o", "ExitOnForwardFailure=yes"]


# --- the URL file ---------------------------------------------------------------------------

@pytest.mark.parametrize("node", ["10.1.2.3", "node12.ib.cluster", "[fd00::12]"])
def test_url_file_round_trip_for_any_node_address(tmp_path: Path, node: str) -> None:
    found = tunnel.Tunnel(24242, node, 61234, "alice@login.example.org", TOKEN)
    path = tmp_path / "x.url"
    path.write_text(found.text())
    assert tunnel.read(str(path)) == found


def test_url_file_round_trip_and_argv_is_the_printed_line(tmp_path: Path) -> None:
    found = tunnel.Tunnel(24242, "10.1.2.3", 61234, "alice@login.example.org", TOKEN)
    path = tmp_path / "x.url"
    path.write_text(found.text())
    back = tunnel.read(str(path))
    assert back == found
    assert found.text() == (f"ssh -N -o ExitOnForwardFailure=yes -L 127.0.0.1:24242:10.1.2.3:61234 "
                            f"alice@login.example.org\n"
                            f"http://127.0.0.1:24242/?token={TOKEN}\n")
    assert found.ssh_argv() == shlex.split(found.ssh_line()) == [
        "ssh", "-N", "-o", "ExitOnForwardFailure=yes", "-L", "127.0.0.1:24242:10.1.2.3:61234",
        "alice@login.example.org"]
    assert found.url() == tunnel.local_url(24242, TOKEN)


@pytest.mark.parametrize("text", [
    "",  # not written yet
    "ssh -N -o ExitOnForwardFailure=yes -L 127.0.0.1:24242:10.1.2.3:61234 a@b\n",  # half written
    f"ssh -N -o ExitOnForwardFailure=yes -L 127.0.0.1:24242:10.1.2.3:61234 a@b\n"
    f"http://127.0.0.1:24243/?token={TOKEN}\n",  # ports disagree
    f"ssh -N -o ExitOnForwardFailure=yes -L 127.0.0.1:24242:10.1.2.3:x a@b\n"
    f"http://127.0.0.1:24242/?token={TOKEN}\n",
    f"ssh -N -L 127.0.0.1:24242:10.1.2.3:61234 a@b\nhttp://127.0.0.1:24242/?token={TOKEN}\n",  # no ExitOnForward
    f"https://wages-astonish-recapture.example.test/?token={TOKEN}\n",  # a satellite-mode URL file
])
def test_reader_refuses_what_is_not_a_whole_url_file(tmp_path: Path, text: str) -> None:
    path = tmp_path / "x.url"
    path.write_text(text)
    assert tunnel.read(str(path)) is None
    assert tunnel.read(str(tmp_path / "missing.url")) is None


def test_url_path_is_beside_the_record() -> None:
    assert tunnel.url_path("/h/.galyleo/galyleo-20261202-1-ab.json") == "/h/.galyleo/galyleo-20261202-1-ab.url"


# --- the rendered script ------------------------------------------------------------------

def ssh_script(tmp_path: Path, *argv: str) -> str:
    conf = Config(require_account=False, login_host="login.example.org", output_dir=str(tmp_path / "out"))
    return render(build(["--connect", "ssh", *argv], conf, str(tmp_path)), conf)


@pytest.mark.parametrize("argv", [[], ["-i", "voila"], ["-i", "notebook", "--idle-timeout", "30"]])
def test_ssh_script_has_no_satellite_in_it_and_is_shellcheck_clean(tmp_path: Path, shell_checks,
                                                                   argv: List[str]) -> None:
    text = ssh_script(tmp_path, *argv)
    for word in ("galyleo_satellite", ".cgi", "manage.", "GALYLEO_SATELLITE_URL", "GALYLEO_ALIAS", "GALYLEO_DOMAIN",
                 "expanse-user-content"):
        assert word not in text
    assert "# --- galyleo: ssh tunnel ---" in text and "# --- galyleo: satellite ---" not in text
    path = tmp_path / "job.sh"
    path.write_text(text)
    shellcheck, bash_n = shell_checks
    assert bash_n(path) == "" and shellcheck([path])[str(path)] == []


def test_satellite_script_is_unchanged_by_the_mode_switch(tmp_path: Path) -> None:
    conf = Config(require_account=False)
    text = render(build([], conf, str(tmp_path)), conf)
    assert "# --- galyleo: satellite ---" in text and "GALYLEO_LOCAL_PORT_RULE" not in text


def test_ssh_values_are_rendered_from_tunnel_py(tmp_path: Path) -> None:
    lines = ssh_script(tmp_path).splitlines()
    user = tunnel.user_name()
    assert f"GALYLEO_LOCAL_PORT_RULE='{tunnel.port_rule()}'" in lines and "GALYLEO_LOCAL_PORT=''" in lines
    assert f"GALYLEO_SSH_TARGET={user}@login.example.org" in lines
    # the URL file's path: contract.py's session base and suffix (test_contract.py runs them)
    assert f"GALYLEO_SESSION_BASE={tmp_path}/out/galyleo-%s" in lines and "GALYLEO_SUFFIX_URL=.url" in lines


def test_login_host_defaults_to_this_hosts_fqdn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("socket.getfqdn", lambda: "login7.cluster.example.org")
    assert tunnel.login_host(Config()) == "login7.cluster.example.org"
    assert tunnel.login_host(Config(login_host="hpc.example.org")) == "hpc.example.org"


# --- launch, open, list, status -------------------------------------------------------------

class FakeJob:
    """sbatch that 'runs' the job at once: the job's URL file appears where the job writes it."""

    def __init__(self, tmp_path: Path, writes: bool = True) -> None:
        self.writes = writes
        self.scripts: List[str] = []

    def submit(self, script: str) -> Tuple[str, str]:
        self.scripts.append(script)
        token = Path(script[: -len(".sh")] + ".token").read_text()
        self.port = int(re.search(r"^GALYLEO_LOCAL_PORT=([0-9]+)$", Path(script).read_text(), re.M)[1])
        if self.writes:
            found = tunnel.Tunnel(self.port, "10.1.2.3", 61234, tunnel.target(SSH), token)
            Path(script[: -len(".sh")] + ".url").write_text(found.text())
        return "4242", ""


SSH = Config(require_account=False, login_host="login.example.org", connect="ssh")


def ssh_launch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, options: launch.Options, state: str = "RUNNING",
               writes: bool = True) -> tuple:
    conf = Config(**{**SSH.__dict__, "output_dir": str(tmp_path / "out")})
    job = FakeJob(tmp_path, writes)
    monkeypatch.setattr(slurm, "available", lambda: True)
    monkeypatch.setattr(slurm, "submit", job.submit)
    monkeypatch.setattr(slurm, "job", lambda job_id, retry=True, cluster="": slurm.JobInfo(state, node="n1"))
    monkeypatch.setattr("galyleo.watch.POLL", 0.0)
    records.ensure_dir(conf.output_dir)
    status = launch.run(build([], conf, str(tmp_path)), conf, options)
    return status, job, conf


def test_launch_waits_then_prints_the_ssh_command_and_the_local_url_last(tmp_path: Path, monkeypatch, capsys,
                                                                         no_satellite) -> None:
    status, job, conf = ssh_launch(tmp_path, monkeypatch, launch.Options())
    out = capsys.readouterr().out.splitlines()
    target = tunnel.target(conf)
    assert status == 0
    port = job.port  # launch's random choice, rendered into the script (not the job id's rule)
    assert out[-3] == f"ssh -N -o ExitOnForwardFailure=yes -L 127.0.0.1:{port}:10.1.2.3:61234 {target}"
    token = out[-1].split("token=")[1]
    assert out[-1] == f"http://127.0.0.1:{port}/?token={token}" and len(token) == 64
    saved = json.loads(Path(job.scripts[0][: -len(".sh")] + ".json").read_text())
    assert (saved["connect"], saved["alias"], saved["url"], saved["ssh_target"]) == ("ssh", "", out[-1], target)
    assert saved["local_port"] == port and tunnel.LOCAL_PORT_MIN <= port < 30000
    assert token not in Path(job.scripts[0]).read_text()


def test_launch_quiet_prints_the_two_lines_only_and_json_follows_the_schema(tmp_path: Path, monkeypatch, capsys,
                                                                            no_satellite) -> None:
    assert ssh_launch(tmp_path / "q", monkeypatch, launch.Options(quiet=True))[0] == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].startswith("ssh -N -o ExitOnForwardFailure=yes -L ")
    assert lines[1].startswith("http://127.0.0.1:2")
    assert ssh_launch(tmp_path / "j", monkeypatch, launch.Options(json=True))[0] == 0
    doc = json.loads(capsys.readouterr().out)
    jsonschema.validate(doc, SCHEMA)
    assert doc["connect"] == "ssh" and doc["ssh_argv"][:5] == ["ssh", "-N", "-o", "ExitOnForwardFailure=yes", "-L"]
    assert doc["url"].startswith("http://")
    del doc["ssh_argv"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, SCHEMA)


def test_launch_whose_job_ends_before_the_tunnel_prints_no_url(tmp_path: Path, monkeypatch, capsys,
                                                               no_satellite) -> None:
    status, _, _ = ssh_launch(tmp_path, monkeypatch, launch.Options(), state="ENDED", writes=False)
    captured = capsys.readouterr()
    assert status == 1 and "http://" not in captured.out and "ended" in captured.err


def test_launch_of_a_job_that_can_never_start_cancels_it_and_names_no_alias(tmp_path: Path, monkeypatch, capsys,
                                                                           no_satellite, clock) -> None:
    cancelled: List[str] = []
    conf = Config(**{**SSH.__dict__, "output_dir": str(tmp_path / "out")})
    monkeypatch.setattr(slurm, "available", lambda: True)
    monkeypatch.setattr(slurm, "submit", FakeJob(tmp_path, writes=False).submit)
    monkeypatch.setattr(slurm, "partition", lambda name: None)
    monkeypatch.setattr(slurm, "cancel", lambda job_id, pending_only=False, cluster="": cancelled.append(job_id) or "")
    monkeypatch.setattr(slurm, "job",
                        lambda job_id, retry=True, cluster="": slurm.JobInfo("PENDING", "PartitionTimeLimit"))
    assert launch.run(build([], conf, str(tmp_path)), conf, launch.Options()) == 1
    captured = capsys.readouterr()
    assert cancelled == ["4242"] and "can never start" in captured.err and "alias" not in captured.err
    assert "http://" not in captured.out and not list((tmp_path / "out").glob("*.token"))


def test_launch_whose_sbatch_fails_leaves_no_file(tmp_path: Path, monkeypatch, no_satellite) -> None:
    from galyleo.errors import SubmitError

    def refuse(script: str) -> Tuple[str, str]:
        raise SubmitError("sbatch refused the job: no")

    conf = Config(**{**SSH.__dict__, "output_dir": str(tmp_path / "out")})
    monkeypatch.setattr(slurm, "available", lambda: True)
    monkeypatch.setattr(slurm, "submit", refuse)
    with pytest.raises(SubmitError):
        launch.run(build([], conf, str(tmp_path)), conf, launch.Options())
    assert list((tmp_path / "out").iterdir()) == []


def test_dry_run_shows_the_ssh_steps_and_calls_nothing(tmp_path: Path, capsys, no_satellite) -> None:
    conf = Config(**{**SSH.__dict__, "output_dir": str(tmp_path / "out")})
    assert launch.run(build([], conf, str(tmp_path)), conf, launch.Options(dry_run=True)) == 0
    out = capsys.readouterr().out
    assert "no Satellite call" in out and "getlink" not in out and "sbatch --parsable" in out
    assert not (tmp_path / "out").exists()


def ssh_record(folder: Path, job_id: str, url_text: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / f"galyleo-20261202-050000-{job_id}.json"
    path.write_text(json.dumps({
        "name": path.stem, "job_id": job_id, "alias": "", "url": tunnel.local_url(24242, TOKEN), "connect": "ssh",
        "output": str(folder / f"{path.stem}.out"), "script": "", "interface": "lab",
        "created": "2026-12-02T05:00:00Z", "record": str(path)}))
    if url_text:
        Path(tunnel.url_path(str(path))).write_text(url_text)
    return path


def test_open_list_status_of_an_ssh_session_make_no_satellite_call(env: Path, tmp_path: Path, capsys,  # noqa: F811
                                                                   no_satellite) -> None:
    fake_slurm(tmp_path / "bin", "301|RUNNING|None|node7|9:58|x|debug\n302|PENDING|Priority|||N/A|debug\n")
    found = tunnel.Tunnel(24242, "10.1.2.3", 61234, "alice@login.example.org", TOKEN)
    ssh_record(env / ".galyleo", "301", found.text())
    ssh_record(env / ".galyleo", "302")
    status, out, _ = run(capsys, "open", "301")
    assert status == 0 and out.splitlines()[-1] == found.url() and found.ssh_line() in out.splitlines()
    status, _, err = run(capsys, "open", "302")
    assert status == 1 and "no tunnel to open" in err
    status, out, _ = run(capsys, "list")
    assert "lab (ssh)" in out
    status, out, _ = run(capsys, "status", "301")
    assert "connect    ssh tunnel" in out and f"ssh        {found.ssh_line()}" in out and "\nproxy " not in out
    status, out, _ = run(capsys, "status", "301", "--json")
    doc = json.loads(out)
    jsonschema.validate(doc, SCHEMA)
    assert doc["connect"] == "ssh" and doc["ssh_argv"] == found.ssh_argv() and doc["satellite"] == ""
    status, out, _ = run(capsys, "list", "--json")
    jsonschema.validate(json.loads(out), SCHEMA)


def test_completion_offers_the_modes_this_site_allows(env: Path, tmp_path: Path, capsys,  # noqa: F811
                                                      monkeypatch: pytest.MonkeyPatch, site_toml) -> None:
    for allowed, expected in (('"satellite", "ssh"', ["satellite", "ssh"]), ('"ssh"', ["ssh"])):
        text = f'connect = "ssh"\nconnect_allowed = [{allowed}]\n'  # a site limit: only the site file sets it
        monkeypatch.setenv("GALYLEO_CONFIG", str(site_toml(text)))
        status, out, _ = run(capsys, "completion", "bash")
        script = tmp_path / "completion.bash"
        script.write_text(out)
        assert status == 0 and completions("bash", script, ["galyleo", "launch", "--connect", ""]) == expected
