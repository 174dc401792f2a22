"""Training a built-in workload's final model: the best configuration on every search row.

The run is a trial's :class:`~raytuner.workloads.torch.training.TrainingRun` (same seed,
schedule, batch order and device handling) over one fold whose training rows are all the
rows the search saw (k-fold: every fold's) and whose "validation" rows are the test split,
which nothing was chosen on; it runs a fixed number of epochs, without early stopping.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from raytuner.spec.torch_options import TableDataset, TorchTrainable
from raytuner.workloads.torch.datasets import Fold, Table, load_table, load_test_table, scaled_fold
from raytuner.workloads.torch.final_model import FinalModel

if TYPE_CHECKING:
    from raytuner.workloads.torch.training import TrainingRun

EpochHook = Callable[[Mapping[str, float]], None]


@dataclass(frozen=True)
class RefitOutcome:
    """A final model and how its training went.

    Attributes:
        model: what predicting needs (saved with the weights in the refit folder).
        curve: each epoch's metrics; with a test split, ``test_loss``, ``test_accuracy``...
            are on the test rows.
        train_rows: the rows it trained on (every row the search saw).
        test_rows: the test split's rows (0: none).
    """

    model: FinalModel
    curve: list[dict[str, float]]
    train_rows: int
    test_rows: int

    @property
    def test_metrics(self) -> dict[str, float]:
        """The last epoch's test metrics (empty without a test split)."""
        last = self.curve[-1] if self.curve else {}
        return {key: value for key, value in last.items() if key.startswith("test_")}


def train_final(
    options: TorchTrainable,
    config: Mapping[str, Any],
    fold: Fold,
    epochs: int,
    *,
    device: Any = "cpu",
    on_epoch: EpochHook | None = None,
) -> tuple[TrainingRun, list[dict[str, float]]]:
    """Train ``config`` on ``fold`` for ``epochs`` epochs as a trial would, evaluating on the
    fold's validation rows each epoch; the lr schedule spans the trial's ``max_epochs``
    (or ``epochs`` if more), so the first epochs match the trial's."""
    run = _final_run(options, config, fold, epochs, device)
    curve: list[dict[str, float]] = []
    for metrics in _epochs(run, epochs):
        curve.append(metrics)
        if on_epoch is not None:
            on_epoch(metrics)
    return run, curve


def _final_run(options: TorchTrainable, config: Mapping[str, Any], fold: Fold, epochs: int, device: Any) -> TrainingRun:
    from raytuner.workloads.torch.training import TrainingRun

    fixed = options.model_copy(update={"max_epochs": max(options.max_epochs, epochs), "early_stopping": None})
    return TrainingRun(fixed, config, device=device, folds=[fold])


def _epochs(run: TrainingRun, epochs: int) -> Iterator[dict[str, float]]:
    while run.epoch < epochs and not run.finished:
        yield run.step()


def refit_epochs(
    options: TorchTrainable,
    config: Mapping[str, Any],
    epochs: int,
    folder: Path,
    *,
    base_dir: str | Path = ".",
    device: Any = "cpu",
) -> Generator[dict[str, float], None, RefitOutcome]:
    """Train the final model on every row the search saw, score it on the test split each
    epoch, and save it in ``folder`` (``model.json``, ``model.pt``): a generator of each
    epoch's metrics as it ends, which returns the outcome.

    Raises:
        SpecError: the dataset or test table cannot be loaded.
        ConfigError: the configuration does not fit the workload.
    """
    search = load_table(options, base_dir)
    test = load_test_table(options, base_dir)
    seen = len(search.y)
    both = _stacked(search, test)
    # without a test split, the training rows stand in as validation rows (their scores are dropped)
    val = np.arange(seen, len(both.y)) if test is not None else np.arange(seen)
    fold = scaled_fold(both, np.arange(seen), val, options)
    tested = test is not None
    run = _final_run(options, config, fold, epochs, device)
    curve: list[dict[str, float]] = []
    for metrics in _epochs(run, epochs):
        curve.append(_renamed(metrics, tested))
        yield curve[-1]
    dataset = options.dataset
    model = FinalModel(
        builtin=options.builtin,
        config=dict(config),
        features=list(search.features),
        target=dataset.target if isinstance(dataset, TableDataset) else dataset.value,
        feature_mean=None if fold.feature_mean is None else fold.feature_mean.tolist(),
        feature_std=None if fold.feature_std is None else fold.feature_std.tolist(),
        labels=None if search.labels is None else list(search.labels),
        target_mean=fold.target_mean,
        target_std=fold.target_std,
        image_shape=None if search.image_shape is None else list(search.image_shape),
        epochs=run.epoch,
    )
    model.save(folder, run.folds[0].network)
    return RefitOutcome(model, curve, seen, 0 if test is None else len(test.y))


def _stacked(search: Table, test: Table | None) -> Table:
    if test is None:
        return search
    return Table(
        np.vstack([search.x, test.x]),
        np.concatenate([search.y, test.y]),
        search.classes,
        search.image_shape,
        search.features,
        search.labels,
    )


def _renamed(metrics: Mapping[str, float], tested: bool) -> dict[str, float]:
    """``val_*`` metrics named ``test_*`` (dropped without a test split: they were the training rows)."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        if not key.startswith("val_"):
            out[key] = value
        elif tested:
            out["test_" + key.removeprefix("val_")] = value
    return out
