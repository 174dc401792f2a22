"""An experiment on disk or object storage, from Python: :func:`open` and :class:`Experiment`.

Reading goes through the same code as ``raytuner show``/``best``/``report``: raytuner's own
folders (finished, interrupted or still running) and plain Ray Tune folders, local or on
object storage. Tables come back as ``pyarrow.Table`` (``.to_pandas()``, ``polars.from_arrow``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

    from raytuner.results.checkpoints import CheckpointInfo, Which
    from raytuner.results.reader import Location


@dataclass(frozen=True)
class Trial:
    """One trial as :meth:`Experiment.best` and :meth:`Experiment.front` rank them.

    Attributes:
        trial_id: Ray Tune's trial id.
        status: ``completed``, ``stopped`` (early stopping), ``running``...
        config: the configuration the trial ran with, as a nested dict ready to reuse
            (``points_to_evaluate``, a constant space, the trainable itself).
        values: the metric values it is ranked by: its best value of the metric
            (:meth:`~Experiment.best`), or its last value of each objective (:meth:`~Experiment.front`).
        iteration: the iteration of that best value; for the front, the trial's iterations.
    """

    trial_id: str
    status: str
    config: dict[str, Any]
    values: dict[str, float]
    iteration: int | None


class Experiment:
    """An experiment folder: raytuner's (finished, interrupted, running) or plain Ray Tune's.

    Get one from :func:`raytuner.run` or :func:`raytuner.open`. Every method reads the
    folder again, so a running experiment shows its progress.
    """

    def __init__(self, ref: str, *, storage: str = "runs", trainable: Any = None) -> None:
        """Open the experiment at ``ref``; prefer :func:`raytuner.open`.

        Raises:
            UsageError: ``ref`` is not an experiment folder.
        """
        from raytuner.results.reader import experiment_at

        location, kind = experiment_at(ref, storage)
        if kind is None:
            from raytuner.errors import UsageError

            raise UsageError(f"{location.display} is neither a raytuner nor a Ray Tune experiment folder")
        local = location.local_path
        self._location: Location = location
        self._ref = str(local) if local is not None else location.display
        self._plain_ray = kind.value == "ray-tune"
        self._trainable = trainable

    def __repr__(self) -> str:
        return f"Experiment({self.name!r}, folder={self.folder!r}, state={self.state!r})"

    @property
    def name(self) -> str:
        """The experiment folder's name (what ``raytuner ls`` lists and :func:`open` takes)."""
        return self._location.name

    @property
    def folder(self) -> str:
        """The folder: a local path, or a URI on object storage."""
        return self._ref

    @property
    def state(self) -> str:
        """``running``, ``completed``, ``interrupted``, ``failed``, or ``crashed?`` for a run
        marked running whose driver is gone; a plain Ray Tune folder's state as Ray saved it."""
        from raytuner.results.catalog import folder_info

        info = folder_info(self._location)
        return info.state if info is not None else "unknown"

    @property
    def spec(self) -> dict[str, Any] | None:
        """The resolved spec the experiment ran with (spec.yaml); None for a plain Ray Tune folder."""
        if self._plain_ray:
            return None
        import yaml

        from raytuner.results import layout

        data = yaml.safe_load(self._location.read_bytes(layout.SPEC))
        return data if isinstance(data, dict) else None

    def trials(self) -> pa.Table:
        """One row per trial: id, status, iterations, best and last metric values, ``config/...``
        columns and ``config_json`` (columns as docs/results.md lists them).

        Raises:
            ExperimentError: the trials table cannot be read (no trial started yet).
        """
        from raytuner.results.reader import open_experiment

        with open_experiment(self._ref) as tables:
            return tables.trials

    def results(self) -> pa.Table:
        """Every report of every trial, one row each, in the order they were written.

        Raises:
            ExperimentError: the results cannot be read.
        """
        import pyarrow as pa

        from raytuner.results.reader import open_experiment

        with open_experiment(self._ref) as tables:
            return pa.Table.from_batches(list(tables.iter_results()), schema=tables.results_schema)

    def best(self, n: int = 1, *, metric: str | None = None, mode: str | None = None) -> list[Trial]:
        """The ``n`` best trials by the metric, best first: only trials that did not fail and
        whose best value is a finite number.

        Args:
            n: how many trials.
            metric: for a plain Ray Tune folder without a recorded metric: the one to rank by.
            mode: for a plain Ray Tune folder: ``min`` (assumed) or ``max``.

        Raises:
            UsageError: the experiment has several metrics (see :meth:`front`), or a plain
                Ray Tune folder recorded no metric and none was given.
        """
        from raytuner.errors import UsageError
        from raytuner.results.catalog import rank_trials
        from raytuner.results.pareto import objectives_of
        from raytuner.results.reader import open_experiment

        with open_experiment(self._ref, metric=metric, mode=mode) as tables:
            if objectives_of(tables.trials.schema.metadata):
                raise UsageError(f"{self.name} has several metrics: there is no one best; use front()")
            if not tables.metric:
                raise UsageError(f"{tables.source}: Ray Tune recorded no metric for this folder; give metric=NAME")
            ranked = rank_trials(tables.trials, tables.mode or "min", n)  # not failed, finite: records.rankable
            name = tables.metric
        return [Trial(r.trial_id, r.status, r.config, {name: r.value}, r.iteration) for r in ranked]

    def front(self, n: int | None = None) -> list[Trial]:
        """The Pareto front of a multi-objective experiment's completed trials, sorted by the
        first objective; ``values`` holds each objective's last value.

        Raises:
            UsageError: the experiment has a single metric (see :meth:`best`).
        """
        from raytuner.errors import UsageError
        from raytuner.results.query import pareto_front
        from raytuner.results.reader import open_experiment

        with open_experiment(self._ref) as tables:
            front = pareto_front(tables, n)
        if front is None:
            raise UsageError(f"{self.name} has a single metric: there is no Pareto front; use best()")
        return [
            Trial(t.trial_id, t.status, t.config, {k: v for k, v in t.values.items() if v is not None}, t.iterations)
            for t in front.trials
        ]

    def best_checkpoint(self, trial_id: str | None = None, *, which: str = "best") -> CheckpointInfo:
        """Where a trial's kept checkpoint is (``raytuner checkpoint``): by default the best
        trial's (as :meth:`best` ranks them) best checkpoint by ``checkpoint.score`` (else the
        spec's metric); ``which="last"``: its latest.

        Raises:
            UsageError: a plain Ray Tune folder, an unknown trial, several metrics and no
                ``trial_id``, or a spec that keeps no checkpoints.
            ExperimentError: the trial has no checkpoint recorded, or its folder is gone.
        """
        from raytuner.results.checkpoints import find_checkpoint

        return find_checkpoint(self._ref, trial_id=trial_id, which=_which(which))

    def copy_checkpoint(self, destination: str | Path, trial_id: str | None = None, *, which: str = "best") -> Path:
        """Copy the checkpoint :meth:`best_checkpoint` finds into ``destination`` (a new or empty
        folder; from object storage too) and return it."""
        from raytuner.results.checkpoints import copy_checkpoint

        copy_checkpoint(self._ref, destination, trial_id=trial_id, which=_which(which))
        return Path(destination)

    def lineage(self) -> pa.Table:
        """The PBT/PB2 decisions (pbt_decisions.parquet): which trial copied which, when, and
        the configuration it went on with; an empty table when none were recorded."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        from raytuner.results import layout

        if self._plain_ray or self._location.kind_of(layout.PBT_DECISIONS) != "file":
            return pa.table({})
        with self._location.fs.open_input_file(self._location.join(layout.PBT_DECISIONS)) as handle:
            return pq.read_table(handle)

    def report(self, path: str | Path | None = None) -> Path:
        """Write the HTML report (``raytuner report``) and return its path.

        Args:
            path: the HTML file; default ``report.html`` in the experiment folder (a plain
                Ray Tune folder on object storage: ``./<name>-report.html``).
        """
        from raytuner.results.layout import find_experiment
        from raytuner.results.reader import open_experiment
        from raytuner.results.report import REPORT_FILE, write_report

        output = Path(path) if path is not None else None
        if not self._plain_ray:
            return write_report(find_experiment(self._ref, "runs"), output).html
        local = self._location.local_path
        with open_experiment(self._ref) as tables:
            if output is None:
                output = local / REPORT_FILE if local is not None else Path(f"{tables.name}-{REPORT_FILE}")
            shown = str(local) if local is not None else tables.source
            return write_report(tables.scratch or Path(tables.source), output, source=shown).html

    def resume(
        self, *, trainable: Any = None, retry_errored: bool = False, address: str | None = None, progress: bool = True
    ) -> Experiment:
        """Continue the interrupted experiment (``raytuner resume``) and return it.

        Args:
            trainable: the function or Trainable class object the run was given, when it was
                given one (an experiment returned by :func:`raytuner.run` remembers it).
            retry_errored: start failed trials over too.
            address: a Ray cluster to join instead of starting a local Ray.
            progress: show the live view or progress lines; False is silent.

        Raises:
            SpecError: the run was given a trainable object and none is known here.
            ExperimentError: nothing to resume from, or the run failed.
        """
        from raytuner.api.running import opened, with_display
        from raytuner.execution.runner import RunOptions, resume_experiment

        folder = self._continued(address)
        given = trainable if trainable is not None else self._trainable
        summary = with_display(
            progress,
            lambda listener: resume_experiment(
                folder, RunOptions(address=address), listener, retry_errored=retry_errored, trainable=given
            ),
        )
        return opened(summary, given)

    def extend(
        self, num_samples: int, *, trainable: Any = None, address: str | None = None, progress: bool = True
    ) -> Experiment:
        """Run ``num_samples`` more trials of the completed experiment (``raytuner extend``),
        the searcher going on from what the earlier trials taught it.

        Args:
            num_samples: how many more samples.
            trainable: as for :meth:`resume`.
            address: a Ray cluster to join instead of starting a local Ray.
            progress: show the live view or progress lines; False is silent.

        Raises:
            UsageError: the experiment is not completed, or its search cannot take more trials.
        """
        from raytuner.api.running import opened, with_display
        from raytuner.execution.runner import RunOptions, extend_experiment

        folder = self._continued(address)
        given = trainable if trainable is not None else self._trainable
        summary = with_display(
            progress,
            lambda listener: extend_experiment(folder, num_samples, RunOptions(address=address), listener, trainable=given),
        )
        return opened(summary, given)

    def _continued(self, address: str | None) -> Path:
        """The folder to run on (a working copy for object storage)."""
        from raytuner.errors import UsageError
        from raytuner.results.layout import find_experiment

        if self._plain_ray:
            raise UsageError(f"{self.name} is a plain Ray Tune folder: raytuner cannot continue it")
        if address:
            from raytuner.execution.session import enable_token_auth

            enable_token_auth()
        return find_experiment(self._ref, "runs", to_continue=True)


def _which(which: str) -> Which:
    from raytuner.errors import UsageError
    from raytuner.results.checkpoints import Which

    try:
        return Which(which)
    except ValueError:
        raise UsageError(f"which: expected 'best' or 'last', found {which!r}") from None


def open(ref: str | Path, *, storage: str = "runs") -> Experiment:  # noqa: A001 - raytuner.open, by design
    """Open an experiment for reading (or resuming).

    Args:
        ref: a name under ``storage``, a folder, an ``s3://``/``gs://`` URI, or a plain Ray
            Tune experiment folder; a running experiment can be opened too.
        storage: the storage root names are looked up in (a folder or a URI).

    Returns:
        The experiment.

    Raises:
        UsageError: nothing by that name, path or URI is an experiment folder.
    """
    return Experiment(str(ref), storage=storage)
