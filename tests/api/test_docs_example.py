"""docs/python-api.md runs as written: its Python blocks, in order, in a fresh process and folder."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Ray on loopback, in a temp dir of its own, before the page's tune.Tuner would start one
PREAMBLE = """
import ray
from raytuner.execution.session import loopback_only
with loopback_only():
    ray.init(num_cpus=2, _node_ip_address="127.0.0.1", include_dashboard=False, log_to_driver=False,
             logging_level="ERROR", _temp_dir={temp!r})
"""


@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.subprocess
def test_the_python_api_page_runs_as_written(tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "python-api.md").read_text(), re.S)
    assert len(blocks) >= 5
    temp = tempfile.mkdtemp(prefix="rt-doc-")  # short: Ray's socket paths have a length limit
    script = tmp_path / "page.py"
    script.write_text(PREAMBLE.format(temp=temp) + "\n".join(blocks))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_TMPDIR": temp}
    env.pop("RAY_ADDRESS", None)
    try:
        done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "digits completed" in out and "search.num_samples - " in out
    assert re.search(r"^completed 6$", out, re.M), out  # extended by 2, then opened by name
    assert re.search(r"^interrupted\n(.*\n)*completed 3$", out, re.M), out  # cut by Ctrl-C, then resumed
    assert (tmp_path / "runs" / "digits" / "trials.parquet").is_file()
    assert (tmp_path / "runs" / "digits-final" / "trials.parquet").is_file()
    assert (tmp_path / "plain-report.html").is_file()
