"""``raytuner.lr_find``: the learning-rate range test from Python, as ``raytuner lr-find`` runs it."""

from __future__ import annotations

import pytest

import raytuner

SPEC = {
    "name": "wine",
    "trainable": {"builtin": "mlp_classifier", "dataset": "wine", "max_epochs": 4},
    "metric": "val_accuracy",
    "mode": "max",
    "space": {"lr": {"loguniform": [1e-3, 3e-2]}, "batch_size": 16},
    "search": {"seed": 2},
}


def test_lr_find_suggests_a_rate_for_a_dict_spec_and_draws_it() -> None:
    found = raytuner.lr_find(SPEC, overrides={"space.batch_size": 8}, steps=30)
    assert found.name == "wine" and found.config["batch_size"] == 8
    assert 1e-6 <= found.suggested_lr <= 10 and len(found.lrs) == len(found.losses) >= 5
    assert "<polyline" in found.plot_svg()


def test_lr_find_refuses_what_is_not_a_torch_workload_and_an_empty_range() -> None:
    analytic = {**SPEC, "trainable": {"builtin": "analytic"}, "metric": "loss", "mode": "min"}
    with pytest.raises(raytuner.SpecError) as refused:
        raytuner.lr_find(analytic)
    assert refused.value.location.path == "trainable.builtin"
    with pytest.raises(raytuner.UsageError, match="min-lr"):
        raytuner.lr_find(SPEC, min_lr=1.0, max_lr=0.1)
