"""satellite.Client, the login node's HTTPS client of the Satellite proxy, against a local fake
Satellite: redirects are followed only within the same origin, a dripping answer ends at the
total deadline, and the environment cannot widen which certificates are trusted.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fakesatellite import FakeSatellite

from galyleo.config import Config
from galyleo.errors import SatelliteError
from galyleo.satellite import Client


def client(sat: FakeSatellite, ca: str = "", timeout: int = 10) -> Client:
    return Client(Config(satellite_url=sat.url, ca_bundle=ca, http_timeout=timeout))


@pytest.fixture
def sink(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A plain-HTTP fake Satellite: where a redirect to another scheme would land."""
    server = FakeSatellite(tmp_path / "sink")
    yield server
    server.stop()


def test_redirect_to_another_scheme_is_not_followed(fake_satellite: FakeSatellite, sink: FakeSatellite,
                                                    tls_cert) -> None:
    fake_satellite.fault("getlink", f"redirect:{sink.url}/getlink.cgi")
    with pytest.raises(SatelliteError, match="redirected to 'http://127.0.0.1:.*not followed"):
        client(fake_satellite, str(tls_cert[0])).getlink()
    assert sink.endpoints() == [] and fake_satellite.endpoints() == ["getlink"]


def test_redirect_to_another_host_is_not_followed(fake_satellite: FakeSatellite, tls_cert) -> None:
    other = fake_satellite.url.replace("127.0.0.1", "localhost")  # same server, another host name
    fake_satellite.fault("getlink", f"redirect:{other}/getlink.cgi")
    with pytest.raises(SatelliteError, match="redirected to 'https://localhost"):
        client(fake_satellite, str(tls_cert[0])).getlink()
    assert fake_satellite.endpoints() == ["getlink"]


def test_redirect_within_the_same_origin_is_followed(fake_satellite: FakeSatellite, tls_cert) -> None:
    fake_satellite.fault("getlink", "redirect:/moved/getlink.cgi", times=1)
    alias = client(fake_satellite, str(tls_cert[0])).getlink()
    assert fake_satellite.endpoints() == ["getlink", "getlink"] and fake_satellite.aliases() == [alias]


def test_dripping_destroy_ends_at_the_total_deadline_retries_included(fake_satellite: FakeSatellite,
                                                                      tls_cert) -> None:
    fake_satellite.fault("destroytoken", "drip:0.3")
    with pytest.raises(SatelliteError, match=r"destroytoken: no answer \(timed out\) within 2 s in total"):
        client(fake_satellite, str(tls_cert[0]), timeout=2).destroy("wages-otter-maple")


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"])
def test_environment_cannot_widen_trust(variable: str, fake_satellite: FakeSatellite, tls_cert,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Without ca_bundle only the bundled Mozilla list counts: a self-signed proxy is refused."""
    monkeypatch.setenv(variable, str(tls_cert[0]))
    with pytest.raises(SatelliteError, match="TLS certificate not trusted"):
        client(fake_satellite).getlink()
    assert client(fake_satellite, str(tls_cert[0])).getlink() in fake_satellite.aliases()
