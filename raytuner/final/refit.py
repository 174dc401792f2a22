"""``raytuner refit``: the best configuration trained once more, on every row the search saw,
scored on the test split, saved in the experiment's ``refit/`` folder.

The folder holds ``metrics.json`` (the search's best validation score next to the final
model's test score, and the final run's curve) and, for a built-in workload, the model:
``model.json`` (architecture, preprocessing, labels) and ``model.pt`` (weights).
"""

from __future__ import annotations

import json
import posixpath
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from raytuner.errors import ExperimentError, UsageError
from raytuner.results import layout

if TYPE_CHECKING:
    from raytuner.execution.events import Listener
    from raytuner.results.folder import Folder
    from raytuner.spec.loader import Experiment
    from raytuner.spec.torch_options import TorchTrainable

REFIT_DIR = layout.REFIT_DIR
METRICS_FILE = "metrics.json"
CHECKPOINT_DIR = "checkpoint"  # own code: the refit trial's last checkpoint


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
        location: where ``refit/`` is: the folder, or its URI on object storage.
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
    location: str = ""

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
    address: str | None = None,
    inline: bool = False,
) -> RefitSummary:
    """Refit the best trial's configuration of an experiment and write its ``refit/`` folder
    and its row (``refit.parquet``) where the experiment is (a folder, or object storage).

    Args:
        ref: the experiment (a name under ``storage``, a folder, a URI).
        storage: where names are looked up.
        epochs: how many epochs to train; None: the epoch where the best trial peaked.
        overrides: ``--set`` strings applied to the spec the final model is trained from,
            whose ``space`` is the best configuration (``space.lr=0.01``, ``trainable.seed=1``).
        on_epoch: called with each epoch's metrics (built-in workloads).
        trainable: the function or Trainable class object the run was given, if it was
            given one (own code: refit runs it once with the best configuration).
        listener: what hears the one-trial run of own code (default: nothing).
        address: a Ray cluster to run on (an experiment on the Ray backend); None: a private
            local Ray, or the Ray this process already runs.
        inline: train in this process even if the experiment ran on Ray.

    Raises:
        UsageError: several metrics (no single best), or a cluster address for a refit
            that runs in this process.
        ExperimentError: no trial reported a finite value of the metric, or the refit failed.
        SpecError: an override or the dataset does not fit.
    """
    from raytuner.execution.revive import load_saved_experiment
    from raytuner.results.catalog import best_trials
    from raytuner.results.reader import find_experiment
    from raytuner.results.remote import remote_of
    from raytuner.spec.models import Backend
    from raytuner.spec.torch_options import (
        CnnClassifierTrainable,
        MlpClassifierTrainable,
        MlpRegressorTrainable,
    )

    folder = find_experiment(ref, storage)
    bucket = remote_of(folder)
    if load_saved_experiment(folder, trainable).spec.multi_objective:
        raise UsageError(f"{folder.name} has several metrics: there is no single best configuration to refit")
    metric, mode, ranked = best_trials(folder, 1)
    if not ranked:
        raise ExperimentError(f"{folder.name}: no trial that did not fail has reported a finite {metric} to refit")
    best = ranked[0]
    where = bucket.child(REFIT_DIR).uri if bucket is not None else str(folder / REFIT_DIR)
    backend = ["execution.backend=inline"] if inline else []
    final = _final_spec(folder, best.config, [*overrides, *backend], where, trainable)
    on_ray = final.spec.execution.backend is Backend.RAY
    if not on_ray and address:
        from raytuner.execution.context import RunOptions
        from raytuner.execution.inline_backend import InlineBackend

        InlineBackend().check(RunOptions(address=address), new_folder=False)
    options = final.spec.trainable
    if not isinstance(options, (MlpClassifierTrainable, MlpRegressorTrainable, CnnClassifierTrainable)):
        return _refit_own_code(folder, bucket, final, best, metric, mode, listener, address)
    count = epochs if epochs is not None else (best.iteration or options.max_epochs)
    return _refit_builtin(folder, bucket, final, options, best, metric, mode, count, on_ray, address, on_epoch)


def _refit_builtin(
    folder: Path,
    bucket: Folder | None,
    final: Experiment,
    options: TorchTrainable,
    best: Any,
    metric: str,
    mode: str,
    epochs: int,
    on_ray: bool,
    address: str | None,
    on_epoch: Callable[[Mapping[str, float]], None] | None,
) -> RefitSummary:
    """Train a built-in workload's final model (a Ray task, or here) and write ``refit/`` and its row."""
    from raytuner.final.refit_task import RefitJob, run_refit
    from raytuner.workloads.torch.datasets import held_out_record

    split = held_out_record(options, final.base_dir)
    _check_same_split(folder, split)
    config = _configuration(final)
    resources = final.spec.resources
    job = RefitJob(options, config, epochs, str(final.base_dir), resources.cpu, resources.gpu, dict(resources.custom))
    product = run_refit(job, on_ray=on_ray, address=address, source=final.source, on_epoch=on_epoch)
    outcome = product.outcome
    partial = folder / (REFIT_DIR + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    for name, data in product.files.items():
        (partial / name).write_bytes(data)
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
        location=bucket.child(REFIT_DIR).uri if bucket is not None else str(folder / REFIT_DIR),
    )
    record = {
        "metric": metric,
        "mode": mode,
        "search": {"trial_id": best.trial_id, metric: best.value, "iteration": best.iteration},
        "refit": {
            "epochs": summary.epochs,
            "train_rows": summary.train_rows,
            "test_rows": summary.test_rows,
            "device": product.where["device"],
            **summary.test,
        },
        "ran": product.where,
        "config": config,
        "test_split": split,
        "curve": outcome.curve,
    }
    (partial / METRICS_FILE).write_text(json.dumps(record, indent=1) + "\n")
    _forget(folder)
    shutil.rmtree(summary.folder, ignore_errors=True)
    partial.rename(summary.folder)
    _write_row(folder, bucket, summary, config, best.iteration, product.where)
    if bucket is not None:
        _clear(bucket)
        _upload(folder, bucket)
    return summary


def _write_row(
    folder: Path,
    bucket: Folder | None,
    summary: RefitSummary,
    config: Mapping[str, Any],
    search_iteration: int | None,
    where: Mapping[str, Any],
) -> None:
    """``refit.parquet`` beside the trials (in the folder, or the working copy of the bucket's)."""
    from raytuner.final.refit_table import RefitRow, write_refit_row

    row = RefitRow(
        trial_id=summary.trial_id,
        metric=summary.metric,
        mode=summary.mode,
        search_value=summary.search_value,
        search_iteration=search_iteration,
        epochs=summary.epochs,
        config=dict(config),
        test_metric=summary.test_metric,
        test_value=summary.test.get(summary.test_metric),
        model=summary.location,
        backend=str(where.get("backend", "")),
        test=dict(summary.test),
        train_rows=summary.train_rows,
        test_rows=summary.test_rows,
        checkpoint=None if summary.checkpoint is None else _checkpoint_location(summary.checkpoint, bucket),
        device=str(where.get("device", "")),
        node=str(where.get("node", "")),
    )
    write_refit_row(folder, row)


def _checkpoint_location(checkpoint: Path, bucket: Folder | None) -> str:
    """Where own code's kept checkpoint is: in the folder, or in the bucket."""
    return str(checkpoint) if bucket is None else bucket.child(REFIT_DIR).child(checkpoint.name).uri


def _forget(folder: Path) -> None:
    """Remove the folder's row before its ``refit/`` is replaced: a refit that fails or is
    killed after that leaves no row naming a model (and scores) no longer there."""
    (folder / layout.REFIT).unlink(missing_ok=True)


def _clear(bucket: Folder) -> None:
    """Remove the bucket's row and ``refit/`` (a previous refit's), the row first: the row never
    names a model that is not there, and the new ``refit/`` holds only its own files."""
    import pyarrow.fs as pafs

    from raytuner.results.folder import first_line

    target = bucket.join(REFIT_DIR)
    try:
        if bucket.fs.get_file_info(bucket.join(layout.REFIT)).type == pafs.FileType.File:
            bucket.fs.delete_file(bucket.join(layout.REFIT))
        if bucket.fs.get_file_info(target).type == pafs.FileType.Directory:
            bucket.fs.delete_dir_contents(target)
    except OSError as exc:
        raise ExperimentError(f"cannot remove the previous refit from {bucket.uri}: {first_line(exc)}") from exc


def _upload(folder: Path, bucket: Folder) -> None:
    """Put the working copy's ``refit/`` (own code: its checkpoint folder too) and then
    ``refit.parquet`` into the bucket: a reader that finds the row finds the model."""
    from raytuner.results.folder import first_line

    local = folder / REFIT_DIR
    # own code's refit run is in the bucket already (its working copy is under ``local`` too)
    files = [*local.glob("*"), *(local / CHECKPOINT_DIR).rglob("*")]
    try:
        for path in sorted(files):
            if path.is_file():
                target = bucket.join(REFIT_DIR, *path.relative_to(local).parts)
                bucket.fs.create_dir(posixpath.dirname(target), recursive=True)
                with bucket.fs.open_output_stream(target) as out:
                    out.write(path.read_bytes())
        with bucket.fs.open_output_stream(bucket.join(layout.REFIT)) as out:
            out.write((folder / layout.REFIT).read_bytes())
    except OSError as exc:
        raise ExperimentError(f"cannot write the refit into {bucket.uri}: {first_line(exc)}") from exc


def _final_spec(
    folder: Path, config: Mapping[str, Any], overrides: Sequence[str], storage: str, trainable: Any = None
) -> Experiment:
    """The experiment's spec for one trial of the best configuration: the configuration as its
    (constant) space, one random sample, no scheduler, stored in ``storage`` (the experiment's
    ``refit/``, in the folder or the bucket); overrides applied last."""
    import yaml

    from raytuner.execution.revive import load_saved_experiment, with_trainable
    from raytuner.spec.loader import build_experiment
    from raytuner.spec.yaml_lines import load_yaml_text

    saved = load_saved_experiment(folder, trainable)
    data = saved.resolved()
    data.update(
        name=f"{saved.spec.name}-refit",
        storage=storage,
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
    folder: Path,
    bucket: Folder | None,
    final: Experiment,
    best: Any,
    metric: str,
    mode: str,
    listener: Listener | None,
    address: str | None,
) -> RefitSummary:
    """Run the user's trainable once with the best configuration, on the experiment's backend;
    keep its last checkpoint. ``metrics.json`` holds the search's best value next to the refit's
    last reported metrics, its ``test_*`` ones (if it reports any) as its test score."""
    from raytuner.execution.context import RunOptions
    from raytuner.execution.events import NullListener
    from raytuner.execution.runner import run_experiment
    from raytuner.results.records import is_number, read_records

    target = folder / REFIT_DIR
    _forget(folder)
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir()
    if bucket is not None:
        _clear(bucket)  # the run goes in the bucket's refit/, under the same name as before
    run = run_experiment(final, RunOptions(address=address), listener or NullListener())
    if run.exit_code != 0 or not run.trials:
        raise ExperimentError(f"{folder.name}: the refit trial did not complete ({run.state.value}); see {run.location}")
    trial = next(iter(read_records(run.folder / layout.TRIALS).values()))
    kept = _keep_last_checkpoint(run, trial.trial_id, bool(trial.checkpoints), target / CHECKPOINT_DIR, bucket)
    reported = {key: value for key, value in trial.last.items() if is_number(value)}
    tested = {key: float(value) for key, value in reported.items() if key.startswith("test_")}
    config = _configuration(final)
    ran = {"backend": final.spec.execution.backend.value, "node": trial.node_ip or "", "resources": trial.resources}
    record = {
        "metric": metric,
        "mode": mode,
        "search": {"trial_id": best.trial_id, metric: best.value, "iteration": best.iteration},
        "refit": {
            "run": run.folder.name,
            "trial_id": trial.trial_id,
            "iterations": trial.iterations,
            metric: reported.get(metric),
            **tested,
            "checkpoint": CHECKPOINT_DIR if kept else None,
        },
        "reported": reported,
        "ran": ran,
        "config": config,
    }
    (target / METRICS_FILE).write_text(json.dumps(record, indent=1, default=str) + "\n")
    summary = RefitSummary(
        folder=target,
        metric=metric,
        mode=mode,
        trial_id=best.trial_id,
        search_value=best.value,
        epochs=trial.iterations,
        test=tested,
        checkpoint=target / CHECKPOINT_DIR if kept else None,
        location=str(target) if bucket is None else bucket.child(REFIT_DIR).uri,
    )
    _write_row(folder, bucket, summary, config, best.iteration, ran)
    if bucket is not None:
        _upload(folder, bucket)
    return summary


def _keep_last_checkpoint(run: Any, trial_id: str, kept_any: bool, destination: Path, bucket: Folder | None) -> bool:
    """Copy the refit trial's last checkpoint to ``destination``; False: it saved none."""
    if bucket is None:
        checkpoint = _last_checkpoint(run.folder, trial_id)
        if checkpoint is not None:
            shutil.copytree(checkpoint, destination)
        return checkpoint is not None
    from raytuner.results.checkpoints import Which, copy_checkpoint

    if not kept_any:
        return False
    copy_checkpoint(run.location, destination, trial_id=trial_id, which=Which.LAST)
    return True


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
