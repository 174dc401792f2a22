"""``raytuner dashboard``'s command line: help, a bad storage root, and the missing extra."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from raytuner.cli import app
from raytuner.dashboard import INSTALL_HINT

runner = CliRunner()


def test_help_names_the_options_and_the_extra() -> None:
    done = runner.invoke(app, ["dashboard", "--help"])
    assert done.exit_code == 0
    for word in ("--storage", "--host", "--port", "token", "8265", "raytuner[dashboard]"):
        assert word in done.output, word


def test_a_missing_storage_root_is_one_line_and_exit_2(tmp_path: Path) -> None:
    done = runner.invoke(app, ["dashboard", "--storage", str(tmp_path / "nowhere")])
    assert done.exit_code == 2
    assert done.output.strip().count("\n") == 0 and "no folder" in done.output


def test_without_the_extra_it_says_how_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # as if not installed: import uvicorn fails
    done = runner.invoke(app, ["dashboard", "--storage", str(tmp_path)])
    assert done.exit_code == 1
    assert done.output.strip() == f"error: {INSTALL_HINT}"


def test_the_cli_loads_no_web_stack_until_the_dashboard_starts() -> None:
    code = "import sys, raytuner.cli; print(','.join(m for m in ('starlette', 'uvicorn') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""
