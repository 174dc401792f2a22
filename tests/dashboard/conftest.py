"""The dashboard's tests: experiments run by the real command, and the real server on loopback."""

from __future__ import annotations

import importlib.util
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from dash_runs import RAYTUNER, run
from loopback_ports import free_ports


@pytest.fixture(scope="session")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two finished experiments, a half-written folder (its status and trials table broken), a PBT one."""
    root = tmp_path_factory.mktemp("dash") / "runs"
    root.mkdir()
    done = run(root, "finished")
    assert done.wait(timeout=300) == 0, done.stdout.read() if done.stdout else ""
    broken = root / "broken"
    broken.mkdir()
    (broken / "status.json").write_text("{not json")
    (broken / "trials.parquet").write_bytes(b"PAR1 half written")
    other = run(root, "other", samples=4)
    assert other.wait(timeout=300) == 0
    _report_fixtures().pbt_experiment(root / "pbt")  # PBT decisions, written as the run would
    return root


def _report_fixtures() -> ModuleType:
    """tests/results/test_report_html.py, whose experiment folders are written directly with pyarrow."""
    path = Path(__file__).parents[1] / "results" / "test_report_html.py"
    spec = importlib.util.spec_from_file_location("report_folders", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def server(storage: Path) -> Iterator[str]:
    (port,) = free_ports(1)
    process = subprocess.Popen(
        [RAYTUNER, "dashboard", "--storage", str(storage), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert f"http://127.0.0.1:{port}/" in line and "token" not in line, line
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=30)
