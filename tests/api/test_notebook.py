"""experiments/python-api.ipynb runs end to end in a real Jupyter kernel (nbclient, ipykernel),
the run showing its live view there."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

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
    updates: list[str] = []

    client: Any = nbclient.NotebookClient  # imported by importorskip: untyped here

    class Kernel(client):  # type: ignore[misc]
        def process_message(self, msg: dict[str, Any], cell: Any, cell_index: int) -> Any:
            if msg["msg_type"] == "update_display_data":  # the live view replaced in place
                updates.append(msg["content"]["data"]["text/plain"])
            return super().process_message(msg, cell, cell_index)

    kernel = Kernel(notebook, timeout=300, kernel_name="python3", resources=where)
    kernel.execute()

    outputs = [
        output.get("text", "") + str(output.get("data", {}).get("text/plain", ""))
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    ]
    text = "\n".join(outputs)
    assert "6 trials planned" in text
    # progress=True: the live view, one output replaced in place; its last frame stays
    assert updates and "6/6 trials done" in updates[-1] and "notebook-digits · random" in updates[-1]
    assert "6/6 trials done" in text and "notebook-digits: 6 trials" not in text  # not the plain lines
    assert "completed" in text and "val_accuracy" in text
    assert (tmp_path / "runs" / "notebook-digits" / "trials.parquet").is_file()
    assert any(line.startswith("completed 30 reports") for line in text.splitlines()), text[-2000:]
