"""The torch example specs: their trainable options, datasets and sampled configs fit the workloads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from raytuner.errors import Location
from raytuner.space.model import parse_space
from raytuner.space.sample import sample
from raytuner.spec.torch_options import OPTIONS_BY_BUILTIN
from raytuner.workloads.torch.datasets import check_dataset
from raytuner.workloads.torch.hyperparams import parse_config
from raytuner.workloads.torch.training import TrainingRun

EXPERIMENTS = Path(__file__).resolve().parents[3] / "experiments"
SPECS = sorted(EXPERIMENTS.glob("torch-*.yaml"))


def test_there_are_torch_examples() -> None:
    assert len(SPECS) >= 5


@pytest.mark.parametrize("path", SPECS, ids=lambda path: path.stem)
def test_example_trains_one_epoch_on_sampled_configs(path: Path) -> None:
    raw: dict[str, Any] = yaml.safe_load(path.read_text())
    options = OPTIONS_BY_BUILTIN[raw["trainable"]["builtin"]].model_validate(raw["trainable"])
    check_dataset(options, path.parent)
    space = parse_space(raw.get("space"), lambda _path: Location(source=str(path)))
    rng = np.random.default_rng(0)
    configs = [sample(space.root, rng) for _ in range(20)]
    for config in configs:
        parse_config(config)
    run = TrainingRun(options, configs[0], base_dir=path.parent)
    metrics = run.step()
    wanted = raw["metric"] if isinstance(raw["metric"], list) else [raw["metric"]]  # one or several objectives
    assert set(wanted) <= set(metrics)
