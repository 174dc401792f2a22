"""``mypy --strict`` on a user's script of the API: clean, and a misuse is caught (the API is typed, not Any)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

MISUSE = """
import raytuner

experiment = raytuner.open("x")
best: list[raytuner.Trial] = experiment.best("2")
state: int = experiment.state
"""


@pytest.mark.slow
def test_a_users_script_is_mypy_strict_clean_and_misuse_is_caught(tmp_path: Path) -> None:
    misuse = tmp_path / "misuse.py"
    misuse.write_text(MISUSE)
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "tests/api/typed_user.py", str(misuse)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = [line for line in done.stdout.splitlines() if ": error:" in line]
    assert all("misuse.py:" in line for line in lines), done.stdout  # nothing in typed_user.py or raytuner
    assert len(lines) == 2, done.stdout
    assert 'Argument 1 to "best" of "Experiment" has incompatible type "str"; expected "int"' in lines[0]
    assert 'expression has type "str", variable has type "int"' in lines[1]
