"""``raytuner.run(progress=True)`` from a script on a terminal: the live view (redrawn in place),
then the best trials; ``progress=False`` writes nothing. The script's trainable exists only in
its ``__main__``. (The notebook's live view: tests/api/test_notebook.py.)"""

from __future__ import annotations

import os
import pty
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import sys, time
import raytuner
from ray import tune

def train(config):
    for t in range(1, 4):
        time.sleep(0.3)
        tune.report({"loss": config["x"] ** 2 + 1 / t})

spec = {"name": "shown", "storage": sys.argv[1], "trainable": {"function": train}, "metric": "loss", "mode": "min",
        "space": {"x": {"uniform": [-1, 1]}}, "search": {"algorithm": "random", "num_samples": 3, "seed": 1}}
raytuner.run(spec, inline=True, progress=sys.argv[2] == "on", name="shown-" + sys.argv[2])
"""


def _in_a_terminal(args: list[str]) -> tuple[str, int]:
    """What ``python args...`` writes to a pseudo-terminal, and its exit status."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TERM": "xterm", "COLUMNS": "120"}
    env.pop("FORCE_COLOR", None)
    env.pop("TTY_COMPATIBLE", None)
    pid, fd = pty.fork()
    if pid == 0:  # the child: its stdout and stderr are the terminal
        os.execvpe(sys.executable, [sys.executable, *args], env)
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # the terminal closed: the child ended
            break
        if not chunk:
            break
        chunks.append(chunk)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return b"".join(chunks).decode(errors="replace"), os.waitstatus_to_exitcode(status)


@pytest.mark.slow
@pytest.mark.subprocess
def test_progress_shows_the_live_view_on_a_terminal_and_false_is_silent(tmp_path: Path) -> None:
    script = tmp_path / "tune_it.py"
    script.write_text(SCRIPT)
    shown, code = _in_a_terminal([str(script), str(tmp_path / "runs"), "on"])
    assert code == 0, shown[-2000:]
    assert "\x1b[?25l" in shown  # rich's live display hides the cursor while it redraws
    assert "trials done" in shown and "shown-on · random + fifo" in shown  # the live view's lines
    assert "\x1b[1A" in shown or "\x1b[2K" in shown  # ...redrawn in place
    assert "completed in" in shown and "experiment folder:" in shown  # then the summary
    silent, code = _in_a_terminal([str(script), str(tmp_path / "runs"), "off"])
    assert code == 0 and silent.strip() == "", silent[-2000:]
    assert (tmp_path / "runs" / "shown-off" / "trials.parquet").is_file()
