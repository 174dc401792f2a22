"""Ray's callback usage tag, counted without importing every logger integration.

A run with callbacks makes Ray Tune's telemetry import its MLflow, W&B, Comet and Aim
integrations (seconds with mlflow installed); raytuner's Bookkeeper replaces that count with
one by class name. Checked in a fresh interpreter, where nothing has imported them yet.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

SCRIPT = """
import json, sys
from ray._common.usage import usage_lib
from ray.air._internal import usage
from ray.tune import Callback
from ray.tune.logger import CSVLoggerCallback
from raytuner.execution.callbacks import _count_callbacks_by_name

_count_callbacks_by_name()
usage.tag_callbacks([Callback(), CSVLoggerCallback()])
print(json.dumps({
    "imported": sorted(m for m in ("ray.air.integrations.mlflow", "ray.air.integrations.wandb", "mlflow", "wandb")
                       if m in sys.modules),
    "recorded": usage_lib._recorded_extra_usage_tags.get("air_callbacks"),
}))
"""


@pytest.mark.slow
def test_callback_census_imports_no_integration() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["imported"] == []
    assert json.loads(out["recorded"]) == {"CustomCallback": 1, "CSVLoggerCallback": 1}
