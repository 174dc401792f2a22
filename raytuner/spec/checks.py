"""Checks across the spec's parts, run once every part is valid on its own.

These catch combinations that Ray Tune would only reject (or mishandle) after starting:
a space the searcher cannot use, points outside the space, a grid too large to run, a
trainable that does not resolve or does not fit its space.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from raytuner.errors import Location, SpecError
from raytuner.space.model import Choice, Constant, Nested, Path, walk
from raytuner.space.points import PointError, complete_point
from raytuner.space.sample import grid_size
from raytuner.spec.loader import Experiment
from raytuner.spec.models import Algorithm

MAX_GRID = 1_000_000

Locate = Callable[[Path], Location]


def check_experiment(experiment: Experiment, locate: Locate) -> None:
    """Raise the first :class:`SpecError` found in ``experiment``'s combination of parts."""
    _check_points(experiment, locate)
    _check_search(experiment, locate)
    from raytuner.workloads import check_trainable

    check_trainable(experiment, locate)


def _check_points(experiment: Experiment, locate: Locate) -> None:
    rng = np.random.default_rng(0)
    for i, point in enumerate(experiment.spec.search.points_to_evaluate):
        try:
            complete_point(experiment.space, point, rng)
        except PointError as exc:
            raise SpecError(str(exc), locate(("search", "points_to_evaluate", i, *exc.path))) from exc


def _check_search(experiment: Experiment, locate: Locate) -> None:
    search = experiment.spec.search
    space = experiment.space
    if search.algorithm is Algorithm.HYPEROPT and not _has_searchable(space.root):
        raise SpecError(
            "hyperopt needs at least one distribution or choice in the space, found only constants; "
            "use algorithm: random to run constant configurations",
            locate(("search", "algorithm")),
        )
    if search.algorithm in (Algorithm.GRID, Algorithm.RANDOM):
        size = grid_size(space, enumerate_choices=search.algorithm is Algorithm.GRID)
        total = size * search.num_samples
        if total > MAX_GRID:
            raise SpecError(
                f"this grid has {size:,} points x {search.num_samples} samples = {total:,} trials; "
                f"the limit is {MAX_GRID:,}",
                locate(("search",)),
            )


def _has_searchable(root: Nested) -> bool:
    return any(not isinstance(node, (Nested, Constant)) for _, node in walk(root)) or any(
        isinstance(node, Choice) for _, node in walk(root)
    )
