"""Trial configs, options and presets of the built-in torch workloads (no torch needed)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from pydantic import ValidationError

from raytuner.spec.presets import recommended_space
from raytuner.spec.torch_options import KFold, MlpClassifierTrainable, MlpRegressorTrainable
from raytuner.workloads.torch.hyperparams import (
    AdamConfig,
    AdamWConfig,
    ConfigError,
    OptimizerName,
    SgdConfig,
    parse_config,
)


def test_defaults_apply_when_keys_are_absent() -> None:
    hp = parse_config({})
    assert isinstance(hp.optimizer, AdamConfig)
    assert hp.base_lr == pytest.approx(1e-3)
    assert (hp.batch_size, hp.depth, hp.hidden, hp.dropout) == (64, 2, 128, 0.0)


def test_optimizer_as_plain_string_or_conditional_mapping() -> None:
    assert parse_config({"optimizer": "adam"}).optimizer.name is OptimizerName.ADAM
    hp = parse_config({"optimizer": {"name": "sgd", "momentum": 0.8, "nesterov": True}})
    assert isinstance(hp.optimizer, SgdConfig)
    assert (hp.optimizer.momentum, hp.optimizer.nesterov) == (0.8, True)
    assert hp.base_lr == pytest.approx(1e-2)  # SGD's own default


def test_betas_list_is_split_and_numpy_scalars_are_accepted() -> None:
    hp = parse_config({"optimizer": {"name": "adamw", "betas": [0.8, 0.95]}, "batch_size": np.int64(32)})
    assert isinstance(hp.optimizer, AdamWConfig)
    assert (hp.optimizer.beta1, hp.optimizer.beta2) == (0.8, 0.95)
    assert hp.batch_size == 32 and type(hp.batch_size) is int


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ({"lrr": 0.1}, "lrr"),
        ({"optimizer": {"name": "sgd", "momentum": 0.0, "nesterov": True}}, "nesterov needs momentum"),
        ({"optimizer": {"name": "adam", "momentum": 0.9}}, "momentum"),
        ({"optimizer": "lbfgs"}, "optimizer"),
        ({"schedule": {"name": "piecewise", "milestones": [5, 3]}}, "increasing"),
        ({"activation": "swish"}, "activation"),
        ({"kernel_size": 4}, "odd"),
        ({"dropout": 1.0}, "dropout"),
    ],
)
def test_bad_configs_name_the_key(config: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        parse_config(config)


def test_options_forbid_unknown_keys_and_check_the_watched_metric() -> None:
    with pytest.raises(ValidationError, match="extra"):
        MlpClassifierTrainable.model_validate({"builtin": "mlp_classifier", "dataset": "digits", "epochs": 3})
    with pytest.raises(ValidationError, match="val_rmse"):
        MlpRegressorTrainable.model_validate(
            {
                "builtin": "mlp_regressor",
                "dataset": "diabetes",
                "early_stopping": {"patience": 2, "metric": "val_accuracy"},
            }
        )
    options = MlpClassifierTrainable.model_validate(
        {"builtin": "mlp_classifier", "dataset": "digits", "validation": {"folds": 4}}
    )
    assert isinstance(options.validation, KFold) and options.validation.folds == 4


@pytest.mark.parametrize("name", [member.value for member in OptimizerName])
def test_recommended_space_names_its_optimizer(name: str) -> None:
    space = recommended_space(name)
    assert space["optimizer"]["name"] == name
    low, high = space["lr"]["loguniform"]
    assert 0 < low < high
    assert space["batch_size"]["choice"][0] == 16 and space["batch_size"]["choice"][-1] == 1024
    space["lr"]["loguniform"][0] = 99.0  # a fresh copy each call
    assert recommended_space(name)["lr"]["loguniform"][0] != 99.0


def test_recommended_space_ranges_and_unknown_name() -> None:
    assert recommended_space("sgd")["lr"] == {"loguniform": [1e-2, 1e-1]}
    assert recommended_space("adam")["lr"] == {"loguniform": [1e-3, 1e-2]}
    with pytest.raises(ValueError, match="unknown optimizer 'lbgfs'"):
        recommended_space("lbgfs")


def test_options_and_presets_do_not_import_torch() -> None:
    code = (
        "import sys, raytuner.workloads.torch, raytuner.spec.torch_options; "
        "print(sorted(m for m in ('torch', 'ray', 'sklearn') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
