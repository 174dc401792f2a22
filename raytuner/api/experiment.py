"""An experiment on disk or object storage, from Python: :func:`open` and :class:`Experiment`.

Reading goes through the same code as ``raytuner show``/``best``/``report``: raytuner's own
folders (finished, interrupted or still running) and plain Ray Tune folders, local or on
object storage. Tables come back as ``pyarrow.Table`` (``.to_pandas()``, ``polars.from_arrow``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from raytuner.api.continuing import Continuing
from raytuner.api.views import Ranking, Trial, TrialView

if TYPE_CHECKING:
    import pyarrow as pa

    from raytuner.execution.runner import RunSummary
    from raytuner.results.catalog import ExperimentInfo
    from raytuner.results.checkpoints import CheckpointInfo, Which
    from raytuner.results.compare import Comparison
    from raytuner.results.export import ExportFormat, ExportSummary
    from raytuner.results.lineage import Segment
    from raytuner.results.query import TableName
    from raytuner.results.report import ReportResult, Section
    from raytuner.results.tables import ExperimentTables

__all__ = ["Experiment", "Ranking", "Trial", "TrialView", "experiments", "open"]

# What ``select`` (``raytuner show``) shows by default: one metric, or several (the front mark
# and each objective's last value instead of the best value)
DEFAULT_COLUMNS = "trial_id,status,metric_best,metric_best_iteration,iterations,time_total_s,config/*,error"
FRONT_COLUMNS = "trial_id,status,pareto,{last},iterations,time_total_s,config/*,error"


class Experiment(Continuing):
    """An experiment folder: raytuner's (finished, interrupted, running) or plain Ray Tune's.

    Get one from :func:`raytuner.run` or :func:`raytuner.open`. Every method reads the
    folder again, so a running experiment shows its progress.
    """

    def __init__(
        self,
        ref: str,
        *,
        storage: str = "runs",
        trainable: Any = None,
        metric: str | None = None,
        mode: str | None = None,
    ) -> None:
        """Open the experiment at ``ref``; prefer :func:`raytuner.open`.

        Raises:
            UsageError: ``ref`` is not an experiment folder, or ``mode`` is neither min nor max.
        """
        from raytuner.errors import UsageError
        from raytuner.results.reader import experiment_at

        if mode not in (None, "min", "max"):
            raise UsageError(f"--mode: expected 'min' or 'max', found {mode!r}")
        folder, kind = experiment_at(ref, storage)
        if kind is None:
            raise UsageError(f"{folder.display} is neither a raytuner nor a Ray Tune experiment folder")
        local = folder.local_path
        self._folder = folder
        self._kind = kind
        self._ref = str(local) if local is not None else folder.display
        self._plain_ray = kind.value == "ray-tune"
        self._metric = metric
        self._mode = mode
        self._trainable = trainable
        self._last_run: RunSummary | None = None

    def __repr__(self) -> str:
        return f"Experiment({self.name!r}, folder={self.folder!r}, state={self.state!r})"

    @property
    def name(self) -> str:
        """The experiment folder's name (what ``raytuner ls`` lists and :func:`open` takes)."""
        return self._folder.name

    @property
    def folder(self) -> str:
        """The folder: a local path, or a URI on object storage."""
        return self._ref

    @property
    def source(self) -> str:
        """Where the experiment was read from, as given: a path, a name, or a URI (without credentials)."""
        return self._folder.display

    @property
    def mode_assumed(self) -> bool:
        """A plain Ray Tune folder opened without ``mode``: ``min`` is assumed (Ray records none)."""
        return self._plain_ray and self._mode is None

    @property
    def last_run(self) -> RunSummary | None:
        """What the run that returned this experiment did (:func:`raytuner.run`, :meth:`resume`,
        :meth:`extend`): its state, duration, trials, error and ``exit_code`` as the CLI would
        exit with it; None for an experiment :func:`raytuner.open` gave."""
        return self._last_run

    @property
    def state(self) -> str:
        """``running``, ``completed``, ``interrupted``, ``failed``, or ``crashed?`` for a run
        marked running whose driver is gone; a plain Ray Tune folder's state as Ray saved it."""
        from raytuner.results.catalog import folder_info

        info = folder_info(self._folder)
        return info.state if info is not None else "unknown"

    @property
    def spec(self) -> dict[str, Any] | None:
        """The resolved spec the experiment ran with (spec.yaml); None for a plain Ray Tune folder."""
        if self._plain_ray:
            return None
        import yaml

        from raytuner.results import layout

        data = yaml.safe_load(self._folder.read_bytes(layout.SPEC))
        return data if isinstance(data, dict) else None

    @contextlib.contextmanager
    def _tables(self) -> Iterator[ExperimentTables]:
        from raytuner.results.reader import read_folder

        with read_folder(self._folder, self._kind, self._metric, self._mode) as tables:
            yield tables

    def trials(self) -> pa.Table:
        """One row per trial: id, status, iterations, best and last metric values, ``config/...``
        columns and ``config_json`` (columns as docs/results.md lists them).

        Raises:
            ExperimentError: the trials table cannot be read (no trial started yet).
        """
        with self._tables() as tables:
            return tables.trials

    def results(self, trial_id: str | None = None) -> pa.Table:
        """Every report of every trial (or of ``trial_id`` only), one row each, in the order they
        were written. For one trial, only the row groups whose statistics may hold it are read.

        Raises:
            ExperimentError: the results cannot be read.
        """
        import pyarrow as pa

        with self._tables() as tables:
            return pa.Table.from_batches(list(tables.iter_results(trial_id=trial_id)), schema=tables.results_schema)

    def select(
        self,
        columns: str | None = None,
        where: str | None = None,
        sort: str | None = None,
        descending: bool = False,
        limit: int | None = None,
    ) -> TrialView:
        """Some trials in some columns, as ``raytuner show`` prints them.

        Args:
            columns: comma-separated columns, globs allowed (``config/*``); default: id,
                status, best value and its iteration, iterations, time, the config, the error
                (several metrics: the front mark and each objective's last value).
            where: a filter, e.g. ``'status == "error"'`` or ``'config/lr > 1e-3'``.
            sort: the column to sort by; default: best first (several metrics: by the first
                objective's last value).
            descending: sort descending (only with ``sort``).
            limit: at most this many trials.

        Raises:
            UsageError: a bad column list, filter or sort column.
        """
        from raytuner.results.pareto import PARETO_COLUMN, objectives_of
        from raytuner.results.query import trial_rows

        with self._tables() as tables:
            objectives = objectives_of(tables.trials.schema.metadata)
            if sort is None:
                sort = f"last/{objectives[0][0]}" if objectives else "metric_best"
                descending = tables.mode == "max"
            if columns is None:
                present = tables.trials.column_names
                last = ",".join(f"last/{name}" for name, _ in objectives)
                defaults = FRONT_COLUMNS.format(last=last) if objectives else DEFAULT_COLUMNS
                columns = ",".join(c for c in defaults.split(",") if c.endswith("*") or c in present)
            rows = trial_rows(tables, columns=columns, where=where, sort=sort, descending=descending, limit=limit)
            front = sum(1 for flag in tables.trials.column(PARETO_COLUMN).to_pylist() if flag) if objectives else None
            best_id = None if objectives else _best_trial_id(tables.trials, tables.mode)
            name, total, metric, mode = tables.name, tables.trials.num_rows, tables.metric, tables.mode
        decisions, schedule = 0, []
        if best_id is not None and not self._plain_ray:
            from raytuner.results.lineage import best_schedule, read_exploits

            decisions = len(read_exploits(self._folder))
            schedule = best_schedule(self._folder, best_id) if decisions else []
        return TrialView(name, rows, total, metric, mode, objectives, front, best_id, decisions, schedule)

    def ranking(self, n: int | None = None, *, include_failed: bool = False) -> Ranking:
        """The best trials by the metric, or the Pareto front when there are several metrics
        (what ``raytuner best`` prints).

        Args:
            n: how many trials (default: 1; a Pareto front: all of it).
            include_failed: rank failed trials and non-finite values too (NaN last); by default
                only trials that did not fail and whose best value is finite.

        Raises:
            UsageError: a plain Ray Tune folder recorded no metric and none was given.
        """
        from raytuner.errors import UsageError
        from raytuner.results.catalog import rank_trials
        from raytuner.results.checkpoints import best_checkpoints
        from raytuner.results.pareto import objectives_of
        from raytuner.results.query import pareto_front

        with self._tables() as tables:
            front = pareto_front(tables, n) if objectives_of(tables.trials.schema.metadata) else None
            if front is not None:
                trials = [
                    Trial(t.trial_id, t.status, t.config, {k: v for k, v in t.values.items() if v is not None}, t.iterations)
                    for t in front.trials
                ]
                kept = best_checkpoints(self._folder, tables.trials, [t.trial_id for t in trials])
                return Ranking(tables.name, front.objectives, trials, front.size, front.completed, checkpoints=kept)
            if not tables.metric:
                raise UsageError(f"{tables.source}: Ray Tune recorded no metric for this folder; give --metric NAME")
            mode = tables.mode or "min"
            ranked = rank_trials(tables.trials, mode, n or 1, include_failed=include_failed)
            metric, name = tables.metric, tables.name
            kept = {} if self._plain_ray else best_checkpoints(self._folder, tables.trials, [r.trial_id for r in ranked])
        trials = [Trial(r.trial_id, r.status, r.config, {metric: r.value}, r.iteration) for r in ranked]
        schedules: dict[str, list[Segment]] = {}
        if not self._plain_ray:  # PBT lineage: raytuner's own record
            from raytuner.results.lineage import best_schedule

            schedules = {t.trial_id: s for t in trials if (s := best_schedule(self._folder, t.trial_id))}
        return Ranking(name, [(metric, mode)], trials, schedules=schedules, checkpoints=kept)

    def best(
        self, n: int = 1, *, metric: str | None = None, mode: str | None = None, include_failed: bool = False
    ) -> list[Trial]:
        """The ``n`` best trials by the metric, best first: only trials that did not fail and
        whose best value is a finite number (``include_failed``: every trial with a value).

        Args:
            n: how many trials.
            metric: for a plain Ray Tune folder without a recorded metric: the one to rank by
                (default: the one given to :func:`open`).
            mode: for a plain Ray Tune folder: ``min`` (assumed) or ``max``.
            include_failed: rank failed trials and non-finite values too.

        Raises:
            UsageError: the experiment has several metrics (see :meth:`front`), or a plain
                Ray Tune folder recorded no metric and none was given.
        """
        from raytuner.errors import UsageError

        reading = self
        if metric is not None or mode is not None:
            reading = Experiment(self._ref, trainable=self._trainable, metric=metric or self._metric, mode=mode or self._mode)
        ranking = reading.ranking(n, include_failed=include_failed)
        if ranking.is_front:
            raise UsageError(f"{self.name} has several metrics: there is no one best; use front()")
        return ranking.trials

    def front(self, n: int | None = None) -> list[Trial]:
        """The Pareto front of a multi-objective experiment's completed trials, sorted by the
        first objective; ``values`` holds each objective's last value.

        Raises:
            UsageError: the experiment has a single metric (see :meth:`best`).
        """
        from raytuner.errors import UsageError

        ranking = self.ranking(n)
        if not ranking.is_front:
            raise UsageError(f"{self.name} has a single metric: there is no Pareto front; use best()")
        return ranking.trials

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

        from raytuner.results import layout

        if self._plain_ray or self._folder.kind_of(layout.PBT_DECISIONS) != "file":
            return pa.table({})
        table: pa.Table = self._folder.read_table(layout.PBT_DECISIONS)
        return table

    def compare(self, *others: Experiment) -> Comparison:
        """This experiment beside ``others``: best values and ranks, trials by status, and the
        differences of the best configurations and of the specs (``raytuner compare``)."""
        from raytuner.results.compare import compare_tables

        with contextlib.ExitStack() as stack:
            opened = [stack.enter_context(each._tables()) for each in (self, *others)]
            return compare_tables(opened)

    def export(
        self,
        table: TableName | str = "results",
        format: ExportFormat | str = "parquet",  # noqa: A002 - the option's name
        output: str | None = None,
        *,
        columns: str | None = None,
        where: str | None = None,
    ) -> ExportSummary:
        """Write the trials or the reports (``raytuner export``).

        Args:
            table: ``trials`` (one row per trial) or ``results`` (one row per report).
            format: ``parquet``, ``csv`` or ``jsonl``.
            output: a file or URI; ``-`` or None for stdout (csv and jsonl); default for
                Parquet: ``<name>-<table>.parquet`` here.
            columns: comma-separated columns, globs allowed; reports can take trial columns.
            where: a filter of the rows.

        Raises:
            UsageError: a bad column list or filter, or Parquet asked for on stdout.
        """
        from raytuner.results.export import ExportFormat, export_table
        from raytuner.results.query import TableName

        chosen, fmt = TableName(table), ExportFormat(format)
        with self._tables() as tables:
            target = output
            if target is None and fmt is ExportFormat.PARQUET:
                target = f"{tables.name}-{chosen.value}.parquet"
            return export_table(tables, chosen, fmt, None if target == "-" else target, columns, where)

    def write_report(self, path: str | Path | None = None, *, png: bool = False) -> ReportResult:
        """Write the HTML report (``raytuner report``): the charts drawn, those left out and why.

        Args:
            path: the HTML file; default ``report.html`` in the experiment folder (its working
                copy on object storage; a plain Ray Tune folder there: ``./<name>-report.html``).
            png: also write each chart as PNG to ``<path stem>-png/`` (needs Chromium).

        Raises:
            ExperimentError: nothing to report, or the PNGs could not be rendered.
        """
        from raytuner.results.report import REPORT_FILE, write_report

        output = Path(path) if path is not None else None
        local = self._folder.local_path
        if not self._plain_ray:
            if local is None:
                from raytuner.results import remote

                local = remote.download(self._folder)
            return write_report(local, output, png)
        with self._tables() as tables:
            if output is None:
                output = local / REPORT_FILE if local is not None else Path(f"{tables.name}-{REPORT_FILE}")
            shown = str(local) if local is not None else tables.source
            return write_report(tables.scratch or Path(tables.source), output, png, source=shown)

    def charts(self) -> list[Section]:
        """The report's charts as :meth:`write_report` draws them (inline SVG), each drawn or left
        out with the reason, without writing a file (``raytuner dashboard`` shows them).

        Raises:
            ExperimentError: nothing to report yet (no trials table, no results).
        """
        from raytuner.results.report import draw

        if not self._plain_ray:
            local = self._folder.local_path
            if local is None:
                from raytuner.results import remote

                local = remote.download(self._folder)
            return draw(local)
        with self._tables() as tables:
            return draw(tables.scratch or Path(tables.source))

    def report(self, path: str | Path | None = None) -> Path:
        """Write the HTML report (``raytuner report``) and return its path.

        Args:
            path: the HTML file; default as for :meth:`write_report`.
        """
        return self.write_report(path).html


def _which(which: str) -> Which:
    from raytuner.errors import UsageError
    from raytuner.results.checkpoints import Which

    try:
        return Which(which)
    except ValueError:
        raise UsageError(f"which: expected 'best' or 'last', found {which!r}") from None


def open(  # noqa: A001 - raytuner.open, by design
    ref: str | Path, *, storage: str = "runs", metric: str | None = None, mode: str | None = None
) -> Experiment:
    """Open an experiment for reading (or resuming).

    Args:
        ref: a name under ``storage``, a folder, an ``s3://``/``gs://`` URI, or a plain Ray
            Tune experiment folder; a running experiment can be opened too.
        storage: the storage root names are looked up in (a folder or a URI).
        metric: a plain Ray Tune folder only: the metric to rank by (default: the one Ray
            was given, ``TuneConfig(metric=...)``).
        mode: a plain Ray Tune folder only: ``min`` or ``max`` (default ``min``: Ray records none).

    Returns:
        The experiment.

    Raises:
        UsageError: nothing by that name, path or URI is an experiment folder.
    """
    return Experiment(str(ref), storage=storage, metric=metric, mode=mode)


def experiments(storage: str = "runs") -> list[ExperimentInfo]:
    """Every experiment folder directly under ``storage`` (a folder or a URI), raytuner's and
    plain Ray Tune's, oldest first (what ``raytuner ls`` lists).

    Raises:
        UsageError: ``storage`` is not a folder or cannot be listed.
    """
    from raytuner.results.catalog import list_experiments

    return list_experiments(storage)


def _best_trial_id(trials: pa.Table, mode: str | None) -> str | None:
    """The trial with the best ``metric_best`` (any status), whose PBT schedule ``select`` follows."""
    rows = [r for r in trials.select(["trial_id", "metric_best"]).to_pylist() if r["metric_best"] is not None]
    if not rows:
        return None
    pick = max if mode == "max" else min
    return str(pick(rows, key=lambda r: r["metric_best"])["trial_id"])
