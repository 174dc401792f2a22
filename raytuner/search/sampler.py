"""Random and grid search as one Ray Tune ``Searcher`` over the parsed space.

Ray Tune's own variant generator cannot sample inside conditional branches (a ``choice``
of dicts holding distributions); this searcher can, and it is seeded, so the same spec and
seed give the same trials. Points to evaluate come first; then, for each repeat, every grid
variant, drawing what the grid leaves open.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import numpy as np
from ray.tune.search import Searcher

from raytuner.search.state import PickledState
from raytuner.space.points import complete_point
from raytuner.space.sample import expand

if TYPE_CHECKING:
    from raytuner.space.model import Space
    from raytuner.spec.loader import Experiment


class SpaceSearcher(PickledState, Searcher):
    """Draws ``total`` configurations: points first, then grid variants, repeated."""

    def __init__(
        self,
        space: Space,
        metric: str,
        mode: str,
        *,
        total: int,
        enumerate_choices: bool,
        points: list[dict[str, Any]] | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__(metric=metric, mode=mode)
        self._space = space
        self._variants = expand(space.root, enumerate_choices)
        self._points = list(points or [])
        self._total = total
        self._index = 0
        self._rng = np.random.default_rng(seed)

    @classmethod
    def for_experiment(cls, experiment: Experiment, *, enumerate_choices: bool, total: int) -> SpaceSearcher:
        spec = experiment.spec
        return cls(
            experiment.space,
            spec.metric,
            spec.mode.value,
            total=total,
            enumerate_choices=enumerate_choices,
            points=spec.search.points_to_evaluate,
            seed=spec.search.seed,
        )

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if self._index >= self._total:
            return cast("dict[str, Any]", Searcher.FINISHED)  # Ray's "finished" sentinel is a string
        i = self._index
        self._index += 1
        if i < len(self._points):
            return complete_point(self._space, self._points[i], self._rng)
        variant = self._variants[(i - len(self._points)) % len(self._variants)]
        return dict(variant(self._rng))

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        pass

    def get_state(self) -> dict[str, Any]:
        return {"index": self._index, "rng": self._rng.bit_generator.state}

    def set_state(self, state: dict[str, Any]) -> None:
        self._index = int(state["index"])
        self._rng.bit_generator.state = state["rng"]
