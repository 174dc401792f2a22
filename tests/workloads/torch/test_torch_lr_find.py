"""The learning-rate range test."""

from __future__ import annotations

import math

import pytest

from raytuner.spec.torch_options import MlpClassifierTrainable
from raytuner.workloads.torch.lr_find import lr_range_test


def test_range_test_finds_a_descent_before_divergence() -> None:
    options = MlpClassifierTrainable.model_validate({"builtin": "mlp_classifier", "dataset": "digits"})
    config = {"optimizer": {"name": "sgd", "momentum": 0.9}, "batch_size": 32, "hidden": 64}
    result = lr_range_test(options, config, min_lr=1e-5, max_lr=100.0, steps=120)
    assert len(result.lrs) == len(result.losses) <= 120
    assert all(later > earlier for earlier, later in zip(result.lrs, result.lrs[1:], strict=False))
    assert result.divergence_lr is not None and result.divergence_lr < 100.0
    assert 1e-4 < result.suggested_lr < result.divergence_lr
    start = result.losses[0]
    assert min(result.losses) < 0.5 * start  # the loss did fall somewhere in the range
    assert not math.isfinite(result.losses[-1]) or result.losses[-1] > min(result.losses)


def test_range_test_rejects_an_empty_range() -> None:
    options = MlpClassifierTrainable.model_validate({"builtin": "mlp_classifier", "dataset": "digits"})
    with pytest.raises(ValueError, match="min_lr < max_lr"):
        lr_range_test(options, {}, min_lr=1.0, max_lr=0.1)
