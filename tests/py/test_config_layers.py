"""Where a setting comes from, layer by layer: site file < user file < SBATCH_* < GALYLEO_* <
command line, the origin config.load records, and the value `generate` then writes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List

import pytest
from sessionkit import run

from galyleo import configfiles

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
