"""Ray Tune's search, watched: a restored searcher that agrees with Ray's restored trials, and a
search that can no longer go on ended with a reason rather than waited on.

Ray saves an experiment's trials (``experiment_state-*.json``) and its searcher's memory
(``search_gen_state-*.json``, ``searcher-state-*.pkl``) as separate files, copied one by one
from the driver's staging folder to the experiment folder. A driver killed during the copy
leaves them from different moments: a trial finished in Ray's file can still be running in the
searcher's, where Ray's ``ConcurrencyLimiter`` counts it against ``max_concurrent`` until Ray
reports its end, which never comes again (with ``max_concurrent: 1`` the resumed run waited
forever for the slot); or the searcher counts trials Ray does not know, or misses some it does.
On a resume, :meth:`WatchedSearch.agree` takes Ray's trials as the truth (raytuner's tables
follow them too).

Whatever else leaves nothing running or waiting while the searcher, not finished, gives no
trial, Ray would wait on forever (its controller asks every second, for 600 s at a time, calling
no callback meanwhile): after :data:`STALL_S` the search counts as finished and the runner ends
the run with :class:`~raytuner.errors.SearchStalledError`, leaving it resumable.
"""

from __future__ import annotations

import time
from typing import Any

from ray.tune import Callback  # noqa: TID253 - used only by the runners, where Ray Tune runs anyway
from ray.tune.search import ConcurrencyLimiter, Searcher, SearchGenerator  # noqa: TID253

STALL_S = 10.0  # how long nothing may run, wait or be suggested before the search counts as stalled
LIVE = frozenset({"PENDING", "RUNNING", "PAUSED"})  # Ray's statuses of a trial that is not over


def stalled_message(started: int, total: int, searcher: Any, waited_s: float) -> str:
    """Why the run ends: the one line the user sees, for both backends."""
    limit = f" behind max_concurrent {searcher.max_concurrent}" if isinstance(searcher, ConcurrencyLimiter) else ""
    name = type(getattr(searcher, "searcher", searcher)).__name__
    waited = f" for {waited_s:g} s" if waited_s else ""
    return (
        f"the search stalled after {started} of {total} trials: none is running or waiting, and the searcher "
        f"({name}{limit}) gave no new one{waited}; the run is left interrupted (raytuner resume tries again)"
    )


class WatchedSearch(SearchGenerator):
    """Ray's ``SearchGenerator`` that agrees with a restore and does not wait on a stalled searcher."""

    def __init__(self, searcher: Searcher) -> None:
        super().__init__(searcher)
        self.stalled: str | None = None  # why the search ended early, once it stalled
        self._trials: list[Any] | None = None  # Ray's trials, the controller's own list
        self._idle_since: float | None = None

    def watch(self, trials: list[Any]) -> None:
        """Ray's trials at the start of a step, before it asks for more. The first call makes the
        searcher agree with them: those Ray restored (none in a fresh run), whether or not Ray
        found a saved searcher to restore."""
        if self._trials is None:
            self.agree(trials)
        self._trials = trials

    def agree(self, trials: list[Any]) -> None:
        """Make the restored searcher's memory agree with the trials Ray restored.

        A trial Ray has ended is reported ended to the searcher (the concurrency limit and the
        searchers ignore one they know ended); a trial the limit counts live that Ray does not know
        was suggested after Ray's last save of its trials and will never run: it ends as failed; a
        trial Ray will run counts against the limit. The trial count is Ray's, so the trials Ray
        lost are suggested again and no more than planned start.
        """
        from ray.tune.utils import flatten_dict

        for trial in trials:
            if str(trial.status) in LIVE:
                continue
            failed = str(trial.status) == "ERROR"
            self.on_trial_complete(trial.trial_id, result=flatten_dict(trial.last_result) or None, error=failed)
        limiter = _limiter(self.searcher)
        if limiter is not None:
            known = {trial.trial_id for trial in trials}
            for trial_id in [trial_id for trial_id in limiter.live_trials if trial_id not in known]:
                self.on_trial_complete(trial_id, error=True)
            for trial in trials:
                if str(trial.status) in LIVE and trial.trial_id not in limiter.live_trials:
                    limiter.live_trials.add(trial.trial_id)
                    limiter.num_unfinished_live_trials += 1
        self._counter = len(trials)

    def next_trial(self) -> Any:
        trial = super().next_trial()  # type: ignore[no-untyped-call]
        if trial is not None or super().is_finished() or any(str(t.status) in LIVE for t in self._trials or ()):
            self._idle_since = None
            return trial
        now = time.monotonic()
        if self._idle_since is None:
            self._idle_since = now
        elif now - self._idle_since >= STALL_S:
            self.stalled = stalled_message(self._counter, self._total_samples, self.searcher, STALL_S)
        return None

    def is_finished(self) -> bool:
        # The saved state keeps the searcher's own answer: a resume asks it again.
        return bool(super().is_finished()) or self.stalled is not None


class TrialsFeed(Callback):
    """Hands the :class:`WatchedSearch` Ray's trials at the start of every step."""

    def __init__(self, search: WatchedSearch) -> None:
        self.search = search

    def on_step_begin(self, iteration: int, trials: list[Any], **info: Any) -> None:
        self.search.watch(trials)


def watched(searcher: Any) -> Any:
    """``searcher`` as the Tuner's search algorithm: watched, unless it is one already (PBT's)."""
    return WatchedSearch(searcher) if isinstance(searcher, Searcher) else searcher


def _limiter(searcher: Any) -> ConcurrencyLimiter | None:
    while searcher is not None and not isinstance(searcher, ConcurrencyLimiter):
        searcher = getattr(searcher, "searcher", None)
    return searcher
