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
from typing import TYPE_CHECKING, Any

from raytuner.errors import ExperimentError, UsageError

if TYPE_CHECKING:
    from raytuner.execution.events import Listener
    from raytuner.spec.loader import Experiment

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
        checkpoint: own code: the refit trial's last checkpoint, copied into the folder.
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
    checkpoint: Path | None = None

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
    trainable: Any = None,
    listener: Listener | None = None,
) -> RefitSummary:
    """Refit the best trial's configuration of an experiment and write its ``refit/`` folder.

    Args:
        ref: the experiment (a name under ``storage``, a folder).
        storage: where names are looked up.
        epochs: how many epochs to train; None: the epoch where the best trial peaked.
        overrides: ``--set`` strings applied to the spec the final model is trained from,
            whose ``space`` is the best configuration (``space.lr=0.01``, ``trainable.seed=1``).
        on_epoch: called with each epoch's metrics (built-in workloads).
        trainable: the function or Trainable class object the run was given, if it was
            given one (own code: refit runs it once with the best configuration).
        listener: what hears the one-trial run of own code (default: nothing).

    Raises:
        UsageError: several metrics (no single best), or an experiment on object storage.
        ExperimentError: no trial reported a finite value of the metric.
        SpecError: an override or the dataset does not fit.
    """
    from raytuner.results.catalog import best_trials
    from raytuner.results.reader import find_experiment
    from raytuner.results.remote import is_uri
    from raytuner.workloads.torch.options import (
        CnnClassifierTrainable,
        MlpClassifierTrainable,
        MlpRegressorTrainable,
    )

    if is_uri(ref) or (is_uri(storage) and not Path(ref).expanduser().is_dir()):
        raise UsageError(f"refit writes into a local experiment folder; {ref} is on object storage (copy it here first)")
    from raytuner.execution.revive import load_saved_experiment

    folder = find_experiment(ref, storage)
    if load_saved_experiment(folder, trainable).spec.multi_objective:
        raise UsageError(f"{folder.name} has several metrics: there is no single best configuration to refit")
    metric, mode, ranked = best_trials(folder, 1)
    if not ranked:
        raise ExperimentError(f"{folder.name}: no trial that did not fail has reported a finite {metric} to refit")
    best = ranked[0]
    final = _final_spec(folder, best.config, overrides, trainable)
    options = final.spec.trainable
    if not isinstance(options, (MlpClassifierTrainable, MlpRegressorTrainable, CnnClassifierTrainable)):
        return _refit_own_code(folder, final, best, metric, mode, listener)
    count = epochs if epochs is not None else (best.iteration or options.max_epochs)
    import torch

    from raytuner.workloads.torch.datasets import held_out_record
    from raytuner.workloads.torch.refit import refit
    from raytuner.workloads.torch.trainable import trial_device

    split = held_out_record(options, final.base_dir)
    _check_same_split(folder, split)
    config = _configuration(final)
    device = trial_device(final.spec.resources.gpu)
    partial = folder / (REFIT_DIR + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, int(final.spec.resources.cpu)))  # as many as a trial had
    try:
        outcome = refit(options, config, count, partial, base_dir=final.base_dir, device=device, on_epoch=on_epoch)
    finally:
        torch.set_num_threads(threads)
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
        "test_split": split,
        "curve": outcome.curve,
    }
    (partial / METRICS_FILE).write_text(json.dumps(record, indent=1) + "\n")
    shutil.rmtree(summary.folder, ignore_errors=True)
    partial.rename(summary.folder)
    return summary


def _final_spec(folder: Path, config: Mapping[str, Any], overrides: Sequence[str], trainable: Any = None) -> Experiment:
    """The experiment's spec for one trial of the best configuration: the configuration as its
    (constant) space, one random sample, no scheduler, in ``refit/``; overrides applied last."""
    import yaml

    from raytuner.execution.revive import load_saved_experiment, with_trainable
    from raytuner.spec.loader import build_experiment
    from raytuner.spec.yaml_lines import load_yaml_text

    saved = load_saved_experiment(folder, trainable)
    data = saved.resolved()
    data.update(
        name=f"{saved.spec.name}-refit",
        storage=str(folder / REFIT_DIR),
        space={key: {"constant": value} for key, value in config.items()},
        space_preset=None,
        search={"algorithm": "random", "num_samples": 1, "seed": 0},
        scheduler={"type": "fifo"},
    )
    parsed, lines = load_yaml_text(yaml.safe_dump(data, sort_keys=False), f"{folder.name} (best configuration)")
    # a trainable object given to the API goes in after the YAML round trip
    return build_experiment(with_trainable(parsed, trainable), lines, overrides, base_dir=saved.base_dir)


def _check_same_split(folder: Path, split: dict[str, Any] | None) -> None:
    """Refuse a test split other than the one the search left out (``test_split.json``).

    Raises:
        UsageError: the rows or the test file differ (a changed dataset, an override).
    """
    from raytuner.workloads.torch.split_record import TEST_SPLIT_FILE

    recorded_file = folder / TEST_SPLIT_FILE
    recorded = json.loads(recorded_file.read_text()) if recorded_file.is_file() else None
    keys = ("row_numbers_sha256", "file_sha256", "rows")
    if recorded is not None and any((split or {}).get(key) != recorded.get(key) for key in keys):
        raise UsageError(
            f"{folder.name}: the test split is not the one the search left out ({recorded_file}): "
            "the dataset, the test file, trainable.test_fraction or trainable.seed changed"
        )


def _refit_own_code(
    folder: Path, final: Experiment, best: Any, metric: str, mode: str, listener: Listener | None
) -> RefitSummary:
    """Run the user's trainable once with the best configuration; keep its last checkpoint."""
    from raytuner.execution.events import NullListener
    from raytuner.execution.runner import RunOptions, run_experiment
    from raytuner.results.records import read_records

    target = folder / REFIT_DIR
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir()
    run = run_experiment(final, RunOptions(), listener or NullListener())
    if run.exit_code != 0 or not run.trials:
        raise ExperimentError(f"{folder.name}: the refit trial did not complete ({run.state.value}); see {run.location}")
    trial = next(iter(read_records(run.folder / "trials.parquet").values()))
    checkpoint = _last_checkpoint(run.folder, trial.trial_id)
    if checkpoint is not None:
        shutil.copytree(checkpoint, target / "checkpoint")
    last = trial.last.get(metric)
    record = {
        "metric": metric,
        "mode": mode,
        "search": {"trial_id": best.trial_id, metric: best.value, "iteration": best.iteration},
        "refit": {
            "run": run.folder.name,
            "trial_id": trial.trial_id,
            "iterations": trial.iterations,
            metric: last,
            "checkpoint": "checkpoint" if checkpoint is not None else None,
        },
        "config": _configuration(final),
    }
    (target / METRICS_FILE).write_text(json.dumps(record, indent=1) + "\n")
    return RefitSummary(
        folder=target,
        metric=metric,
        mode=mode,
        trial_id=best.trial_id,
        search_value=best.value,
        epochs=trial.iterations,
        checkpoint=target / "checkpoint" if checkpoint is not None else None,
    )


def _last_checkpoint(run_folder: Path, trial_id: str) -> Path | None:
    """The newest ``checkpoint_*`` folder of the trial (None: it saved none)."""
    found = sorted(run_folder.glob(f"*{trial_id}*/checkpoint_*"), key=lambda path: path.name)
    return found[-1] if found else None


def _configuration(final: Experiment) -> dict[str, Any]:
    """The configuration the refit trains with: the best one, overrides applied (all constants)."""
    import numpy as np

    from raytuner.space.sample import sample

    config: dict[str, Any] = sample(final.space.root, np.random.default_rng(0))
    return config
