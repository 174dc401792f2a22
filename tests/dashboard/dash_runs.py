"""Experiments for the dashboard's tests, run by the real ``raytuner run`` (inline backend)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

RAYTUNER = str(Path(sys.executable).parent / "raytuner")

SPEC = """
name: {name}
trainable: {{builtin: analytic, objective: sphere, iterations: {iterations}, sleep_s: {sleep}}}
metric: loss
mode: min
space: {{x: {{uniform: [-2, 2]}}, y: {{uniform: [-2, 2]}}}}
search: {{algorithm: random, num_samples: {samples}, seed: 3, max_concurrent: 2}}
execution: {{backend: inline}}
"""


def run(storage: Path, name: str, *, iterations: int = 3, sleep: float = 0.0, samples: int = 8) -> subprocess.Popen[str]:
    spec = storage.parent / f"{name}.yaml"
    spec.write_text(SPEC.format(name=name, iterations=iterations, sleep=sleep, samples=samples))
    return subprocess.Popen(
        [RAYTUNER, "run", str(spec), "--storage", str(storage), "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=storage.parent,
    )
