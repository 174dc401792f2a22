"""Bringing a stopped experiment back: its spec, and raytuner's records of what happened."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from raytuner.errors import ExperimentError
from raytuner.results import layout
from raytuner.results.records import ExperimentBook, read_records
from raytuner.spec.loader import Experiment, build_experiment
from raytuner.spec.models import Mode
from raytuner.spec.yaml_lines import load_yaml_file


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
    for record in read_records(path).values():
        book.trials[record.trial_id] = record
        book.consider(record)
    return book
