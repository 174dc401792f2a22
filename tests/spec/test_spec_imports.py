"""The spec's option models live in raytuner/spec/: reading and validating a spec, the built-in
torch workloads' options included, imports nothing of raytuner/workloads/ (issue 20, part 4:
``spec/models.py`` and ``workloads/`` had imported each other)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, sys
import raytuner.spec.loader, raytuner.spec.schema
from raytuner.spec.models import Spec

spec = Spec.model_validate({
    "name": "t", "metric": "val_loss", "mode": "min",
    "trainable": {"builtin": "mlp_classifier", "dataset": "digits"},
    "space": {"lr": {"loguniform": [1e-4, 1e-1]}},
})
print(json.dumps({"options": type(spec.trainable).__module__,
                  "workloads": sorted(m for m in sys.modules if m.startswith("raytuner.workloads"))}))
"""


@pytest.mark.subprocess
def test_spec_models_and_loader_import_no_workload(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["options"].startswith("raytuner.spec.")
    assert seen["workloads"] == []
