"""More trials for a finished experiment: a larger spec, and Ray's restored searcher let go on.

Ray's ``Tuner.restore`` keeps the sample count it saved and ignores a new one, so the restored
run gets a fresh searcher built from the (widened) saved spec, wrapped in
:class:`WidenedSearch`: Ray restores the searcher's learned state into it (HyperOpt's trials,
the sampler's position and random state) and the wrapper then raises the count it restored.
The searcher thus continues from everything the earlier trials taught it; no earlier trial
runs again and no earlier Parquet row is touched.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from raytuner.errors import StorageFullError, UsageError, is_storage_full
from raytuner.execution.full_storage import storage_of, strerror
from raytuner.execution.revive import with_trainable
from raytuner.execution.search_watch import WatchedSearch
from raytuner.results import layout
from raytuner.search import total_trials
from raytuner.spec.loader import Experiment, build_experiment
from raytuner.spec.models import Algorithm, SchedulerType
from raytuner.spec.yaml_lines import load_yaml_file


class WidenedSearch(WatchedSearch):
    """A restored search whose sample count is at least ``total``."""

    def __init__(self, searcher: Any, total: int) -> None:
        super().__init__(searcher)
        self._wanted = total

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        if self._total_samples < self._wanted:
            self._total_samples = self._wanted
            self._finished = False  # the searcher said it was done with the smaller count


def widen_saved_spec(folder: Path, base_dir: Path, add: int, trainable: Any = None) -> Experiment:
    """Raise the saved spec's ``search.num_samples`` so that ``add`` more trials start.

    With the random algorithm each extra sample repeats the space's grid part, as in a run.

    Raises:
        UsageError: ``add`` is not positive, or the search cannot take more trials (a grid
            search has a fixed set; a population's size is fixed).
    """
    if add < 1:
        raise UsageError(f"--num-samples must be at least 1, but got {add}")
    path = folder / layout.SPEC
    data, lines = load_yaml_file(path)
    experiment = build_experiment(with_trainable(data, trainable), lines, base_dir=base_dir)
    spec = experiment.spec
    if spec.search.algorithm is Algorithm.GRID:
        raise UsageError(f"{folder.name}: a grid search has a fixed set of trials; it cannot be extended")
    if spec.scheduler.type in (SchedulerType.PBT, SchedulerType.PB2):
        raise UsageError(f"{folder.name}: a {spec.scheduler.type.value} population has a fixed size; it cannot be extended")
    current = spec.search.num_samples if spec.search.algorithm is Algorithm.RANDOM else total_trials(experiment)
    data.setdefault("search", {})["num_samples"] = current + add
    widened = build_experiment(with_trainable(data, trainable), lines, base_dir=base_dir)
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        temporary.write_text(yaml.safe_dump(data, sort_keys=False))
        os.replace(temporary, path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        if not is_storage_full(exc):
            raise
        raise StorageFullError(
            f"the storage is full ({strerror(exc)}): {storage_of(folder)}; nothing was extended. Free some space, then "
            f"run raytuner extend {folder.name} again"
        ) from exc
    return widened
