"""Input no spec could be: the installed command ends at once with one line and exit code 2.

Run as real processes with a time limit and an address-space cap, so a regression fails the
test (a timeout or a MemoryError's traceback) instead of taking the machine's memory.
"""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pytest

EXE = Path(sys.executable).parent / "raytuner"
QUICKSTART = Path(__file__).resolve().parents[2] / "experiments" / "quickstart.yaml"
LIMIT_S = 60
ADDRESS_SPACE = 2 * 1024**3


def _capped() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def _refused(done: subprocess.CompletedProcess[str], fragment: str) -> None:
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2, done.stderr[-2000:]
    assert len(lines) == 1 and fragment in lines[0], done.stderr[-2000:]
    assert "Traceback" not in done.stderr + done.stdout


@pytest.mark.subprocess
@pytest.mark.slow
def test_an_endless_device_is_refused_at_the_size_limit() -> None:
    done = subprocess.run(
        [str(EXE), "validate", "/dev/zero"], capture_output=True, text=True, timeout=LIMIT_S, preexec_fn=_capped
    )
    _refused(done, "/dev/zero: file is over 1,000,000 bytes")


@pytest.mark.subprocess
@pytest.mark.slow
def test_an_endless_pipe_is_refused_at_the_size_limit() -> None:
    yes = subprocess.Popen(["yes"], stdout=subprocess.PIPE)
    try:
        done = subprocess.run(
            [str(EXE), "validate", "/dev/stdin"],
            stdin=yes.stdout,
            capture_output=True,
            text=True,
            timeout=LIMIT_S,
            preexec_fn=_capped,
        )
    finally:
        yes.kill()
        yes.wait()
    _refused(done, "/dev/stdin: file is over 1,000,000 bytes")


@pytest.mark.subprocess
@pytest.mark.slow
def test_an_alias_bomb_in_set_is_refused() -> None:
    levels = ["&l0 [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]"]
    levels += [f"&l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 9)]
    done = subprocess.run(
        [str(EXE), "validate", str(QUICKSTART), "--set", f"space.c=[{', '.join(levels)}]"],
        capture_output=True,
        text=True,
        timeout=LIMIT_S,
        preexec_fn=_capped,
    )
    _refused(done, "value: more than 200,000 values (aliases included)")
