"""build/lint_scripts.py, the CI recipe: it renders the whole matrix and passes on this
checkout, and fails (exit 1) when shellcheck finds something in a rendered script."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import VENV_BIN

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "build"))
import lint_scripts  # noqa: E402

SHELLCHECK = str(VENV_BIN / "shellcheck")


def test_the_matrix_renders_and_is_clean(tmp_path: Path) -> None:
    assert lint_scripts.main(["--shellcheck", SHELLCHECK, "--keep", str(tmp_path)]) == 0
    for name in lint_scripts.MATRIX:
        assert (tmp_path / f"{name}.sh").read_text().startswith("#!/bin/bash\n")


def test_a_finding_fails_the_recipe(tmp_path: Path) -> None:
    fake = tmp_path / "galyleo"
    fake.write_text('#!/bin/sh\nprintf \'#!/bin/bash\\ncd $1\\n\'\n')
    fake.chmod(0o755)
    assert lint_scripts.main(["--galyleo", str(fake), "--shellcheck", SHELLCHECK, "--keep", str(tmp_path / "s")]) == 1


def test_a_script_that_cannot_be_rendered_stops_it(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as stopped:
        lint_scripts.main(["--galyleo", "false", "--shellcheck", SHELLCHECK, "--keep", str(tmp_path)])
    assert "lint_scripts: lab:" in str(stopped.value)
