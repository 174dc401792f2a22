"""A trial's kept checkpoints as ``trials.parquet`` records them: found, and copied out.

``raytuner checkpoint``, ``raytuner best`` and :meth:`raytuner.Experiment.best_checkpoint`
read them here, from a local folder or object storage alike. Which checkpoints a run keeps
is :mod:`raytuner.execution.retention`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from raytuner.errors import ExperimentError, RaytunerError, UsageError

if TYPE_CHECKING:
    import pyarrow as pa

    from raytuner.results.folder import Folder


class Which(str, Enum):
    """Which of a trial's checkpoints: its best by the checkpoint metric, or its latest."""

    BEST = "best"
    LAST = "last"


@dataclass(frozen=True)
class CheckpointInfo:
    """One kept checkpoint of one trial.

    Attributes:
        trial_id: the trial it belongs to.
        which: ``best`` or ``last``.
        name: its folder relative to the experiment folder (``<trial folder>/checkpoint_NNNNNN``).
        iteration: the ``training_iteration`` it was taken at.
        metric: the metric checkpoints are ranked by (``checkpoint.score``, else the spec's metric).
        value: that metric in the checkpoint's report (None: missing; for ``last``, not recorded).
        location: where it is: a local path, or a URI on object storage.
    """

    trial_id: str
    which: Which
    name: str
    iteration: int
    metric: str
    value: float | None
    location: str

    def fields(self) -> dict[str, Any]:
        """How ``raytuner best`` and the dashboard's ``best.yaml`` name it beside a trial's
        configuration: its location, iteration and score (the checkpoint metric's value)."""
        score = {self.metric: self.value}
        return {"checkpoint": self.location, "checkpoint_iteration": self.iteration, "checkpoint_score": score}


def find_checkpoint(ref: str, storage: str = "runs", *, trial_id: str | None = None, which: Which = Which.BEST) -> CheckpointInfo:
    """A trial's kept checkpoint (default: the best trial's best one).

    Raises:
        UsageError: not a raytuner experiment, an unknown trial, several metrics and no trial
            named, or an experiment whose spec keeps no checkpoints.
        ExperimentError: the trial has no checkpoint recorded, or its folder is gone.
    """
    return _find(ref, storage, trial_id, which)[0]


def _find(ref: str, storage: str, trial_id: str | None, which: Which) -> tuple[CheckpointInfo, Folder]:
    from raytuner.results.catalog import rank_trials
    from raytuner.results.reader import experiment_at
    from raytuner.results.tables import FolderKind, read_raytuner_folder

    folder, kind = experiment_at(ref, storage)
    if kind is not FolderKind.RAYTUNER:
        raise UsageError(f"{folder.display} is not a raytuner experiment folder: raytuner recorded no checkpoints there")
    spec = _spec(folder)
    tables = read_raytuner_folder(folder)
    if trial_id is None:
        if isinstance(spec.get("metric"), list):
            raise UsageError(f"{tables.name} has several metrics: there is no one best trial; name one with --trial ID")
        ranked = rank_trials(tables.trials, tables.mode or "min", 1)
        if not ranked:
            raise ExperimentError(f"{tables.name}: no trial that did not fail has reported a finite {tables.metric} yet")
        trial_id = ranked[0].trial_id
    row = _row(tables.trials, trial_id, tables.name)
    name, iteration = row.get(f"checkpoint_{which.value}"), row.get(f"checkpoint_{which.value}_iteration")
    if not name:
        raise _none_kept(tables.name, trial_id, spec)
    info = CheckpointInfo(
        trial_id=trial_id,
        which=which,
        name=name,
        iteration=int(iteration or 0),
        metric=_checkpoint_metric(spec),
        value=row.get("checkpoint_best_value") if which is Which.BEST or name == row.get("checkpoint_best") else None,
        location=_where(folder, name),
    )
    if folder.kind_of(name) != "dir":
        raise ExperimentError(f"{tables.name}: trial {trial_id}'s checkpoint {info.location} is gone (trials.parquet lists it)")
    return info, folder


def copy_checkpoint(
    ref: str,
    destination: str | Path,
    storage: str = "runs",
    *,
    trial_id: str | None = None,
    which: Which = Which.BEST,
) -> CheckpointInfo:
    """Copy a trial's checkpoint folder's contents (see :func:`find_checkpoint`) into ``destination``.

    Raises:
        UsageError: ``destination`` exists and is not an empty folder; or as :func:`find_checkpoint`.
    """
    import pyarrow.fs as pafs

    target = Path(destination).expanduser()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise UsageError(f"{destination}: already exists and is not an empty folder; give a new one")
    info, folder = _find(ref, storage, trial_id, which)
    try:
        target.mkdir(parents=True, exist_ok=True)
        pafs.copy_files(
            folder.join(info.name),
            str(target.resolve()),
            source_filesystem=folder.fs,
            destination_filesystem=pafs.LocalFileSystem(),
        )
    except OSError as exc:  # a lost connection, a full disk: the storage's own reason, in one line
        reason = (str(exc).strip() or type(exc).__name__).splitlines()[0]
        raise ExperimentError(f"cannot copy {info.location} to {destination}: {reason}") from exc
    return info


def best_checkpoints(folder: Folder, trials: pa.Table, trial_ids: list[str]) -> dict[str, CheckpointInfo]:
    """Each of these trials' best kept checkpoint, by trial id, as ``trials`` (the folder's
    trials table) records it; trials without one are left out."""
    if "checkpoint_best" not in trials.column_names or not trial_ids:
        return {}
    columns = ["trial_id", "checkpoint_best", "checkpoint_best_iteration", "checkpoint_best_value"]
    wanted = set(trial_ids)
    rows = [row for row in trials.select(columns).to_pylist() if row["trial_id"] in wanted and row["checkpoint_best"]]
    metric = _checkpoint_metric(_spec(folder)) if rows else ""
    return {
        row["trial_id"]: CheckpointInfo(
            trial_id=row["trial_id"],
            which=Which.BEST,
            name=row["checkpoint_best"],
            iteration=int(row["checkpoint_best_iteration"] or 0),
            metric=metric,
            value=row["checkpoint_best_value"],
            location=_where(folder, row["checkpoint_best"]),
        )
        for row in rows
    }


def _where(folder: Folder, name: str) -> str:
    """A checkpoint's place for people: an absolute path, or a URI on object storage."""
    local = folder.local_path
    return str(local / name) if local is not None else folder.child(name).display


def _spec(folder: Folder) -> dict[str, Any]:
    import yaml

    from raytuner.results import layout

    try:
        data = yaml.safe_load(folder.read_bytes(layout.SPEC))
    except (OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def _checkpoint_metric(spec: dict[str, Any]) -> str:
    score = (spec.get("checkpoint") or {}).get("score")
    if isinstance(score, dict) and score.get("metric"):
        return str(score["metric"])
    metric = spec.get("metric")
    return str(metric[0] if isinstance(metric, list) else metric)


def _row(trials: pa.Table, trial_id: str, name: str) -> dict[str, Any]:
    import pyarrow.compute as pc

    rows: list[dict[str, Any]] = trials.filter(pc.equal(trials.column("trial_id"), trial_id)).to_pylist()
    if not rows:
        known = trials.column("trial_id").to_pylist()
        shown = ", ".join(known[:5]) + (f" (and {len(known) - 5} more)" if len(known) > 5 else "")
        raise UsageError(f"{name} has no trial {trial_id!r}; its trials: {shown or 'none yet'}")
    return rows[0]


def _none_kept(name: str, trial_id: str, spec: dict[str, Any]) -> RaytunerError:
    """Why a trial has no checkpoint: the spec never asked for them, or the trial made none (yet)."""
    trainable = spec.get("trainable") or {}
    every = (spec.get("checkpoint") or {}).get("every", 0)
    if "builtin" in trainable and not every:
        return UsageError(f"{name} kept no checkpoints: its spec has checkpoint.every 0 (set checkpoint.every to make them)")
    return ExperimentError(
        f"{name}: trial {trial_id} has no checkpoint recorded (it made none, or the run predates checkpoint records)"
    )
