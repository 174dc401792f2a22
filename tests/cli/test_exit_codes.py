"""The exit codes are one table: the ExitCode enum, ``--help`` and the README say the same."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from raytuner.cli import app
from raytuner.errors import ExitCode, SpecError, UsageError

ROOT = Path(__file__).resolve().parent.parent.parent
runner = CliRunner()


@pytest.mark.parametrize("command", [[], ["run"], ["resume"], ["extend"]])
def test_help_lists_every_exit_code(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "Exit codes:" in result.stdout
    for code in ExitCode:
        assert f"  {int(code):>3}  " in result.stdout


def test_the_readme_has_the_same_exit_codes() -> None:
    readme = (ROOT / "README.md").read_text()
    table = readme.split("### Exit codes", 1)[1].split("\n\n")[2]
    assert [line.split("|")[1].strip() for line in table.splitlines()[2:]] == [str(int(code)) for code in ExitCode]
    assert SpecError.exit_code == UsageError.exit_code == ExitCode.BAD_INPUT
