"""experiments/python-api.ipynb runs end to end in a real Jupyter kernel (nbclient, ipykernel)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.subprocess
def test_the_example_notebook_runs_in_a_jupyter_kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")

    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    notebook = nbformat.read(ROOT / "experiments" / "python-api.ipynb", as_version=4)
    where = {"metadata": {"path": str(tmp_path)}}
    kernel = nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3", resources=where)
    kernel.execute()

    outputs = [
        output.get("text", "") + str(output.get("data", {}).get("text/plain", ""))
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    ]
    text = "\n".join(outputs)
    assert "6 trials planned" in text
    assert "notebook-digits: 6 trials" in text  # the run's progress lines, shown in the notebook
    assert "completed" in text and "val_accuracy" in text
    assert (tmp_path / "runs" / "notebook-digits" / "trials.parquet").is_file()
    assert any(line.startswith("completed 30 reports") for line in text.splitlines()), text[-2000:]
