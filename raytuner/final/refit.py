"""``raytuner refit``: the best configuration trained once more, on every row the search saw,
scored on the test split, saved in the experiment's ``refit/`` folder.

The folder holds ``metrics.json`` (the search's best validation score next to the final
model's test score, and the final run's curve) and, for a built-in workload, the model:
``model.json`` (architecture, preprocessing, labels) and ``model.pt`` (weights).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from raytuner.errors import ExperimentError, UsageError

REFIT_DIR = "refit"
METRICS_FILE = "metrics.json"


@dataclass(frozen=True)
class RefitSummary:
    """What a refit did.

    Attributes:
        folder: the refit folder (``refit/`` in the experiment folder).
        metric, mode: the search's metric.
        trial_id: the best trial, whose configuration was refit.
        search_value: its best value of the metric (on validation rows: optimistic).
        epochs: the epochs the final model trained for.
        test: the final model's scores on the test split (``test_accuracy``...); empty without one.
        train_rows, test_rows: the rows it trained on and was scored on.
    """

    folder: Path
    metric: str
    mode: str
    trial_id: str
    search_value: float
    epochs: int
    test: dict[str, float] = field(default_factory=dict)
    train_rows: int = 0
    test_rows: int = 0

    @property
    def test_metric(self) -> str:
        """The test score that matches the search's metric (``val_accuracy``: ``test_accuracy``)."""
        return "test_" + self.metric.removeprefix("val_")


def refit_experiment(
    ref: str,
    storage: str = "runs",
    *,
    epochs: int | None = None,
    overrides: Sequence[str] = (),
    on_epoch: Callable[[Mapping[str, float]], None] | None = None,
) -> RefitSummary:
    """Refit the best trial's configuration of an experiment and write its ``refit/`` folder.

    Args:
        ref: the experiment (a name under ``storage``, a folder).
        storage: where names are looked up.
        epochs: how many epochs to train; None: the epoch where the best trial peaked.
        overrides: ``--set`` strings applied to the spec the final model is trained from,
            whose ``space`` is the best configuration (``space.lr=0.01``, ``trainable.seed=1``).
        on_epoch: called with each epoch's metrics.

    Raises:
        UsageError: several metrics (no single best), or a trainable refit cannot train.
        ExperimentError: no trial reported a finite value of the metric.
        SpecError: an override or the dataset does not fit.
    """
    from raytuner.results.catalog import best_trials
    from raytuner.results.layout import find_experiment
    from raytuner.results.remote import is_uri
    from raytuner.workloads.torch.options import (
        CnnClassifierTrainable,
        MlpClassifierTrainable,
        MlpRegressorTrainable,
    )

    if is_uri(ref) or (is_uri(storage) and not Path(ref).expanduser().is_dir()):
        raise UsageError(f"refit writes into a local experiment folder; {ref} is on object storage (copy it here first)")
    folder = find_experiment(ref, storage)
    metric, mode, ranked = best_trials(folder, 1)
    if not ranked:
        raise ExperimentError(f"{folder.name}: no trial that did not fail has reported a finite {metric} to refit")
    best = ranked[0]
    final = _final_spec(folder, best.config, overrides)
    if final.spec.multi_objective:
        raise UsageError(f"{folder.name} has several metrics: there is no single best configuration to refit")
    options = final.spec.trainable
    if not isinstance(options, (MlpClassifierTrainable, MlpRegressorTrainable, CnnClassifierTrainable)):
        raise UsageError(
            f"{folder.name}: refit trains the built-in workloads (trainable.builtin); this experiment's "
            "trainable is the user's own code"
        )
    count = epochs if epochs is not None else (best.iteration or options.max_epochs)
    import numpy as np
    import torch

    from raytuner.space.sample import sample
    from raytuner.workloads.torch.datasets import held_out_record
    from raytuner.workloads.torch.refit import refit
    from raytuner.workloads.torch.trainable import trial_device

    config = sample(final.space.root, np.random.default_rng(0))  # constants: the best configuration
    device = trial_device(final.spec.resources.gpu)
    torch.set_num_threads(max(1, int(final.spec.resources.cpu)))
    partial = folder / (REFIT_DIR + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    outcome = refit(options, config, count, partial, base_dir=final.base_dir, device=device, on_epoch=on_epoch)
    summary = RefitSummary(
        folder=folder / REFIT_DIR,
        metric=metric,
        mode=mode,
        trial_id=best.trial_id,
        search_value=best.value,
        epochs=outcome.model.epochs,
        test=outcome.test_metrics,
        train_rows=outcome.train_rows,
        test_rows=outcome.test_rows,
    )
    record = {
        "metric": metric,
        "mode": mode,
        "search": {"trial_id": best.trial_id, metric: best.value, "iteration": best.iteration},
        "refit": {
            "epochs": summary.epochs,
            "train_rows": summary.train_rows,
            "test_rows": summary.test_rows,
            "device": str(device),
            **summary.test,
        },
        "config": config,
        "test_split": held_out_record(options, final.base_dir),
        "curve": outcome.curve,
    }
    (partial / METRICS_FILE).write_text(json.dumps(record, indent=1) + "\n")
    shutil.rmtree(summary.folder, ignore_errors=True)
    partial.rename(summary.folder)
    return summary


def _final_spec(folder: Path, config: Mapping[str, Any], overrides: Sequence[str]) -> Any:
    """The experiment's spec with the best configuration as its (constant) space, overrides applied."""
    import yaml

    from raytuner.execution.revive import load_saved_experiment
    from raytuner.spec.loader import build_experiment
    from raytuner.spec.yaml_lines import load_yaml_text

    saved = load_saved_experiment(folder)
    data = saved.resolved()
    data["space"] = {key: {"constant": value} for key, value in config.items()}
    data["space_preset"] = None
    text = yaml.safe_dump(data, sort_keys=False)
    parsed, lines = load_yaml_text(text, f"{folder.name} (best configuration)")
    return build_experiment(parsed, lines, overrides, base_dir=saved.base_dir)
