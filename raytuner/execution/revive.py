"""Bringing a stopped experiment back: its spec, and raytuner's records of what happened."""

from __future__ import annotations

import json
from pathlib import Path

from raytuner.errors import ExperimentError
from raytuner.results import layout
from raytuner.results.records import ExperimentBook, TrialRecord, TrialStatus
from raytuner.spec.loader import Experiment, build_experiment
from raytuner.spec.models import Mode
from raytuner.spec.yaml_lines import load_yaml_file


def load_saved_experiment(folder: Path) -> Experiment:
    """The experiment as it was run: its resolved spec, user code looked up where it was."""
    spec_file = folder / layout.SPEC
    if not spec_file.is_file():
        raise ExperimentError(f"{folder}: no {layout.SPEC}; this is not a raytuner experiment folder")
    data, lines = load_yaml_file(spec_file)
    base_dir = Path.cwd()
    env_file = folder / layout.ENVIRONMENT
    if env_file.is_file():
        original = json.loads(env_file.read_text()).get("spec_file")
        if original and not str(original).startswith("<") and Path(original).resolve().parent.is_dir():
            base_dir = Path(original).resolve().parent
    return build_experiment(data, lines, base_dir=base_dir)


def rebuild_book(folder: Path, experiment: Experiment) -> ExperimentBook:
    """The trial records as the trials table last saved them; the best so far among them."""
    import pyarrow.parquet as pq

    spec = experiment.spec
    several = tuple((o.metric, o.mode.value) for o in spec.objectives) if spec.multi_objective else ()
    book = ExperimentBook(spec.metric, 1.0 if spec.mode is Mode.MAX else -1.0, objectives=several)
    path = folder / layout.TRIALS
    if not path.is_file():
        return book
    table = pq.read_table(path)
    last_columns = [name for name in table.column_names if name.startswith("last/")]
    for row in table.to_pylist():
        record = TrialRecord(
            trial_id=row["trial_id"],
            config=json.loads(row["config_json"]),
            status=TrialStatus(row["status"]),
            iterations=int(row["iterations"] or 0),
            time_total_s=float(row["time_total_s"] or 0.0),
            best=row["metric_best"],
            best_iteration=row["metric_best_iteration"],
            error=row["error"],
            num_failures=int(row["num_failures"] or 0),
            node_ip=row["node_ip"],
            gpu_ids=row.get("gpu_ids"),
            trial_dir=row["trial_dir"],
            last={name[len("last/") :]: row[name] for name in last_columns if row[name] is not None},
        )
        record.started_at = row["started_at"].timestamp() if row["started_at"] else None
        record.ended_at = row["ended_at"].timestamp() if row["ended_at"] else None
        book.trials[record.trial_id] = record
        book.consider(record)
    return book
