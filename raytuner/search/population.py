"""Our searchers behind the face Ray's PBT accepts.

Ray's PBT and PB2 refuse any ``SearchGenerator`` (a model-based searcher would learn from
perturbed results), which is how Ray wraps every ``Searcher``, including raytuner's seeded
random and grid searchers that can sample conditional spaces. This adapter presents them as
a ``BasicVariantGenerator``, which PBT accepts, and delegates everything to a
``SearchGenerator`` inside. Only random and grid are allowed with PBT (validation says so).
"""

from __future__ import annotations

from typing import Any

from ray.tune.search import BasicVariantGenerator, SearchGenerator


class PopulationSearch(BasicVariantGenerator):
    def __init__(self, searcher: Any) -> None:
        super().__init__()
        self._inner = SearchGenerator(searcher)

    @property
    def metric(self) -> Any:
        return self._inner.metric

    @property
    def total_samples(self) -> int:
        return int(self._inner.total_samples)

    def set_search_properties(self, metric: Any, mode: Any, config: Any, **spec: Any) -> bool:
        return bool(self._inner.set_search_properties(metric, mode, config, **spec))

    def add_configurations(self, experiments: Any) -> None:
        self._inner.add_configurations(experiments)

    def next_trial(self) -> Any:
        return self._inner.next_trial()

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        self._inner.on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: Any = None, error: bool = False) -> None:
        self._inner.on_trial_complete(trial_id, result=result, error=error)

    def is_finished(self) -> bool:
        return bool(self._inner.is_finished())

    def set_finished(self) -> None:
        self._inner.set_finished()

    def has_checkpoint(self, dirpath: str) -> bool:
        return bool(self._inner.has_checkpoint(dirpath))

    def save_to_dir(self, dirpath: str, session_str: str) -> None:  # type: ignore[override]  # Ray's two bases disagree
        self._inner.save_to_dir(dirpath, session_str)

    def restore_from_dir(self, dirpath: str) -> None:
        self._inner.restore_from_dir(dirpath)
