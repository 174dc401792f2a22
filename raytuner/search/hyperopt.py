"""HyperOpt's TPE as a Ray Tune ``Searcher``, driven directly over the parsed space.

The space is translated once (:mod:`raytuner.space.hyperopt`): labels are paths, so nested
and conditional spaces need no flattening, and points to evaluate become HyperOpt value
assignments by walking the same tree. Failed trials are reported to HyperOpt as errors, so
TPE neither learns from them nor retries them blindly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import hyperopt as hpo
import numpy as np
from hyperopt.base import spec_from_misc
from hyperopt.fmin import generate_trial
from ray.tune.search import Searcher

from raytuner.search.state import PickledState
from raytuner.search.values import finite_number
from raytuner.space.hyperopt import all_labels, normalize, to_hyperopt, to_vals
from raytuner.space.points import complete_point

if TYPE_CHECKING:
    from raytuner.space.model import Space
    from raytuner.spec.loader import Experiment


class TpeSearcher(PickledState, Searcher):
    """Tree-structured Parzen Estimator over a (possibly conditional) space."""

    def __init__(
        self,
        space: Space,
        metric: str,
        mode: str,
        *,
        n_initial_points: int = 10,
        gamma: float = 0.25,
        points: list[dict[str, Any]] | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__(metric=metric, mode=mode)
        self._space = space
        self._expr = to_hyperopt(space)
        self._domain = hpo.Domain(lambda config: config, self._expr)
        self._trials = hpo.Trials()
        self._rng = np.random.default_rng(seed)
        self._points = list(points or [])
        self._algo = hpo.partial(hpo.tpe.suggest, n_startup_jobs=n_initial_points, gamma=gamma)
        self._live: dict[str, int] = {}
        self._sign = -1.0 if mode == "max" else 1.0

    @classmethod
    def for_experiment(cls, experiment: Experiment) -> TpeSearcher:
        spec = experiment.spec
        search = spec.search
        return cls(
            experiment.space,
            spec.metric,
            spec.mode.value,
            n_initial_points=getattr(search, "n_initial_points", 10),
            gamma=getattr(search, "gamma", 0.25),
            points=search.points_to_evaluate,
            seed=search.seed,
        )

    def _insert(self, config: dict[str, Any]) -> dict[str, Any]:
        """A trial document fixed to ``config``'s values, inserted (running) into the trials."""
        tid = self._trials.new_trial_ids(1)[0]
        doc = generate_trial(tid, to_vals(self._space, config))
        for name in all_labels(self._space):  # inactive branches: present, with no value
            doc["misc"]["idxs"].setdefault(name, [])
            doc["misc"]["vals"].setdefault(name, [])
        self._trials.insert_trial_docs([doc])
        self._trials.refresh()
        return doc  # type: ignore[no-any-return]

    def add_evaluated(self, config: dict[str, Any], value: float) -> None:
        """Tell TPE about a configuration evaluated elsewhere (an earlier experiment)."""
        tid = self._insert(config)["tid"]
        doc = next(t for t in self._trials._dynamic_trials if t["tid"] == tid)
        doc["state"] = hpo.JOB_STATE_DONE
        doc["result"] = {"loss": self._sign * float(value), "status": "ok"}
        doc["refresh_time"] = hpo.utils.coarse_utcnow()
        self._trials.refresh()

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if self._points:
            config = complete_point(self._space, self._points.pop(0), self._rng)
            self._live[trial_id] = self._insert(config)["tid"]
            return config
        ids = self._trials.new_trial_ids(1)
        self._trials.refresh()
        docs = self._algo(ids, self._domain, self._trials, int(self._rng.integers(2**31 - 1)))
        self._trials.insert_trial_docs(docs)
        self._trials.refresh()
        doc = docs[0]
        self._live[trial_id] = doc["tid"]
        raw = hpo.space_eval(self._expr, spec_from_misc(doc["misc"]))
        return normalize(self._space.root, raw)  # type: ignore[no-any-return]

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        tid = self._live.pop(trial_id, None)
        if tid is None:
            return
        doc = next(t for t in self._trials._dynamic_trials if t["tid"] == tid)
        doc["refresh_time"] = hpo.utils.coarse_utcnow()
        value = None if result is None or self._metric is None else result.get(self._metric)
        if error or not finite_number(value):  # NaN, an infinity (a diverged run), no metric
            doc["state"] = hpo.JOB_STATE_ERROR
            doc["result"] = {"status": "fail"}
        else:
            doc["state"] = hpo.JOB_STATE_DONE
            doc["result"] = {"loss": self._sign * float(value), "status": "ok"}
        self._trials.refresh()

    def get_state(self) -> dict[str, Any]:
        return {
            "trials": self._trials,
            "rng": self._rng.bit_generator.state,
            "points": self._points,
            "live": self._live,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        self._trials = state["trials"]
        self._rng.bit_generator.state = state["rng"]
        self._points = state["points"]
        self._live = state["live"]
