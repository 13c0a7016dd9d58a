"""Secrets stay secret: the token (from `secrets`, 256 bits) only in 0600 files and
the printed URL; ~/.galyleo 0700 and its files 0600 even under umask 000; TLS
verification that nothing turns off; Jupyter limited to the session's origin.
A real session on the cluster is looked at in test_cluster_secrets.py.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import List

import pytest

from galyleo import cli as galyleo_cli
from galyleo import launch, render, slurm, spec
from galyleo.config import Config, fields
from galyleo.errors import UsageError
from galyleo.satellite import Client

ALIAS = "wages-astonish-recapture"


class FakeClient:
    def __init__(self, conf: Config) -> None:
        pass

    def getlink(self) -> str:
        return ALIAS

    def linktoken(self, alias: str, job_id: str) -> None:
        pass

    def destroy(self, alias: str) -> None:
        raise AssertionError("nothing failed")


def fake_launch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
                interface: str = "lab") -> str:
    monkeypatch.setattr("galyleo.satellite.Client", FakeClient)
    monkeypatch.setattr(slurm, "available", lambda: True)
    monkeypatch.setattr(slurm, "submit", lambda path: ("4242", ""))
    conf = Config(account="a", output_dir=str(tmp_path / "out"))
    args = galyleo_cli.make_parser(conf).parse_args(["launch", "-i", interface])
    assert launch.run(spec.build(args, conf, home=str(tmp_path)), conf, launch.Options(quiet=True)) == 0
    return capsys.readouterr().out.strip()


def test_token_is_256_bits_from_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture) -> None:
    drawn: List[int] = []
    real = launch.secrets.token_hex
    monkeypatch.setattr(launch.secrets, "token_hex", lambda n: drawn.append(n) or real(n))
    token = fake_launch(tmp_path, monkeypatch, capsys).split("token=")[1]
    assert 32 in drawn and len(token) == 64 and set(token) <= set("0123456789abcdef")  # 32 bytes = 256 bits
    assert (tmp_path / "out").glob("*.token").__next__().read_text() == token


def test_private_files_under_umask_000(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture) -> None:
    old = os.umask(0)
    try:
        token = fake_launch(tmp_path, monkeypatch, capsys).split("token=")[1]
        assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o700  # made by galyleo: private
        fake_launch(tmp_path, monkeypatch, capsys)
    finally:
        os.umask(old)
    folder = tmp_path / "out"
    files = list(folder.iterdir())
    assert len(files) == 8 and all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files), files
    assert len([f for f in files if f.suffix == ".out"]) == 2, "the job output is made 0600 before sbatch"
    assert not [f for f in files if f.suffix == ".sh" and token in f.read_text()]


@pytest.mark.parametrize("mode", [0o2770, 0o770, 0o1777, 0o757])
def test_a_shared_output_folder_is_refused_before_anything_is_made(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture, mode: int) -> None:
    """A site's shared group-writable folder: any member could `rm` a pending session's token
    and output and put her own in their place, so galyleo keeps none of its files there."""
    folder = tmp_path / "out"
    folder.mkdir()
    folder.chmod(mode)
    with pytest.raises(UsageError) as caught:
        fake_launch(tmp_path, monkeypatch, capsys)
    assert str(caught.value).startswith(f"setting output_dir {folder}: writable by group or others (mode {mode:04o})")
    assert caught.value.exit_status == 2 and "\n" not in str(caught.value) and "chmod go-w" in str(caught.value)
    assert list(folder.iterdir()) == [] and stat.S_IMODE(folder.stat().st_mode) == mode


def test_job_script_writes_under_umask_077_and_limits_the_origin() -> None:
    conf = Config(account="a", satellite_domain="example.test")
    args = galyleo_cli.make_parser(conf).parse_args(["generate", "-i", "lab"])
    script = render.render(spec.build(args, conf, home="/"), conf, render.Handoff(ALIAS, "/t/x.token", "/t/x.out"))
    assert "\numask 077\n" in script
    # the origin comes from the connection's hook: satellite mode's is the alias's HTTPS name
    assert 'galyleo_origin="$(galyleo_origin_url)"' in script
    assert "\nGALYLEO_PROXY_ORIGIN_FORMAT=https://%s.%s\n" in script  # proxynames.PROXY_ORIGIN_FORMAT, rendered
    assert 'printf "${GALYLEO_PROXY_ORIGIN_FORMAT}\\n" "${GALYLEO_ALIAS}" "${GALYLEO_DOMAIN}"' in script
    assert 'c.ServerApp.allow_origin = os.environ["GALYLEO_ORIGIN"]' in script and "allow_origin='*'" not in script
    assert 'export GALYLEO_ORIGIN="${galyleo_origin}"' in script
    assert "allow_origin_pat" not in script and "disable_check_xsrf" not in script
    voila = render.render(spec.build(galyleo_cli.make_parser(conf).parse_args(["generate", "-i", "voila"]), conf,
                                     home="/"), conf)
    assert 'c.Voila.token = os.environ["JUPYTER_TOKEN"]' in voila
    assert '"allow_origin": os.environ["GALYLEO_ORIGIN"]' in voila


def test_https_verification_cannot_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    names = [f.name for f in fields(Config)]
    assert not [n for n in names if "verify" in n or "insecure" in n], names
    help_text = galyleo_cli.make_parser(Config()).format_help() + "".join(
        galyleo_cli.make_parser(Config()).parse_known_args(["launch"])[0].__dict__)
    assert "insecure" not in help_text and "no-verify" not in help_text
    import certifi

    assert Client(Config()).verify == certifi.where()
    bundle = Path(certifi.where())
    assert Client(Config(ca_bundle=str(bundle))).verify == str(bundle)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "")  # an empty bundle variable must not mean "do not verify"
    seen = {}

    class Reply:
        status_code = 200
        is_redirect = False
        text = "Your token is \n" + ALIAS + "\n"

    client = Client(Config())
    monkeypatch.setattr(client.http, "get", lambda url, **kw: seen.update(kw) or Reply())
    assert client.getlink() == ALIAS and seen["verify"] == certifi.where()
