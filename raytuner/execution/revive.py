"""Bringing a stopped experiment back: its spec, and raytuner's records of what happened."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from raytuner.errors import ExperimentError
from raytuner.results import layout
from raytuner.results.records import ExperimentBook, TrialRecord, read_records
from raytuner.results.schema import RESULT_COLUMNS
from raytuner.results.store import all_reports
from raytuner.spec.loader import Experiment, build_experiment
from raytuner.spec.models import Mode
from raytuner.spec.yaml_lines import load_yaml_file

if TYPE_CHECKING:
    import pyarrow as pa


def load_saved_experiment(folder: Path, trainable: Any = None) -> Experiment:
    """The experiment as it was run: its resolved spec, user code looked up where it was.

    ``trainable``: the function or Trainable class object the run was given (the Python API),
    in place of the stand-in its spec.yaml names it by.
    """
    spec_file = folder / layout.SPEC
    if not spec_file.is_file():
        raise ExperimentError(f"{folder}: no {layout.SPEC}; this is not a raytuner experiment folder")
    data, lines = load_yaml_file(spec_file)
    data = with_trainable(data, trainable)
    base_dir = Path.cwd()
    env_file = folder / layout.ENVIRONMENT
    if env_file.is_file():
        original = json.loads(env_file.read_text()).get("spec_file")
        if original and not str(original).startswith("<") and Path(original).resolve().parent.is_dir():
            base_dir = Path(original).resolve().parent
    return build_experiment(data, lines, base_dir=base_dir)


def with_trainable(data: Any, trainable: Any) -> Any:
    """Saved spec data with ``trainable.function`` set to the object given (unchanged for None)."""
    if trainable is None or not isinstance(data, dict):
        return data
    return {**data, "trainable": {"function": trainable}}


def rebuild_book(folder: Path, experiment: Experiment) -> ExperimentBook:
    """The trial records as the trials table last saved them; the best so far among them."""
    spec = experiment.spec
    several = tuple((o.metric, o.mode.value) for o in spec.objectives) if spec.multi_objective else ()
    book = ExperimentBook(spec.metric, 1.0 if spec.mode is Mode.MAX else -1.0, objectives=several)
    path = folder / layout.TRIALS
    if not path.is_file():
        return book
    records = read_records(path)
    catch_up(records, all_reports(folder), book.metric, book.sign)
    for record in records.values():
        book.trials[record.trial_id] = record
        book.consider(record)
    return book


def catch_up(records: dict[str, TrialRecord], reports: pa.Table, metric: str, sign: float) -> None:
    """Bring each record up to its trial's reports: its iterations, time, last values and best.

    A row written before the trial's last reports (the driver killed in between) would
    otherwise stay behind them for good: a trial restored from its last checkpoint reports
    nothing again.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    reports = reports.filter(pc.is_in(reports.column("trial_id"), value_set=pa.array(list(records), type=pa.string())))
    if reports.num_rows == 0:
        return
    reports = reports.sort_by([("trial_id", "ascending"), ("training_iteration", "ascending")])
    metrics = [name for name in reports.column_names if name not in RESULT_COLUMNS]
    # "last" skips nulls: a metric missing from the last report keeps its latest value, as observe() does
    latest = reports.group_by("trial_id", use_threads=False).aggregate(
        [("training_iteration", "max"), ("time_total_s", "last"), *[(name, "last") for name in metrics]]
    )
    for row in latest.to_pylist():
        record = records[row["trial_id"]]
        record.iterations = int(row["training_iteration_max"])
        record.time_total_s = float(row["time_total_s_last"] or 0.0)
        record.last = {name: row[f"{name}_last"] for name in metrics if row[f"{name}_last"] is not None}
    if metric not in metrics or not pa.types.is_floating(reports.schema.field(metric).type):
        return  # a metric with text among its values: observe() counted its numbers only; keep the rows' best
    values = reports.column(metric)
    scored = reports.select(["trial_id", "training_iteration", metric]).filter(
        pc.and_(pc.is_valid(values), pc.invert(pc.is_nan(values)))
    )
    order = "descending" if sign > 0 else "ascending"  # the first best reached, as observe() keeps it
    scored = scored.sort_by([("trial_id", "ascending"), (metric, order), ("training_iteration", "ascending")])
    best = scored.group_by("trial_id", use_threads=False).aggregate([(metric, "first"), ("training_iteration", "first")])
    for row in best.to_pylist():
        record = records[row["trial_id"]]
        record.best, record.best_iteration = float(row[f"{metric}_first"]), int(row["training_iteration_first"])
