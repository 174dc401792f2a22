"""An experiment folder read back for the report: trials, reports, spec, PBT decisions.

Everything the charts need is loaded here once, as plain frozen values (the reports as numpy
columns, :class:`Reports`); the chart modules never touch Parquet. Works on finished, running
(``results.parts/``) and failed experiments.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from raytuner.errors import ExperimentError
from raytuner.results import layout
from raytuner.results.catalog import read_status
from raytuner.results.folder import Folder
from raytuner.results.lineage import Decision, read_exploits
from raytuner.results.records import rankable
from raytuner.results.tables import result_sources

if TYPE_CHECKING:
    from collections.abc import Iterator

    import numpy as np
    import pyarrow as pa

PBT_DECISIONS = layout.PBT_DECISIONS  # one name for the table, shared with the writer


@dataclass(frozen=True)
class Param:
    """One ``config/<path>`` column of the trials table.

    ``log``: whether the spec's space draws it on a log scale (``loguniform``...); None when
    the space does not say (no ``spec.yaml``, a choice of numbers, a key only PBT mutates).
    """

    name: str
    numeric: bool
    log: bool | None = None


@dataclass(frozen=True)
class Trial:
    trial_id: str
    status: str
    iterations: int
    best: float | None
    best_iteration: int | None
    error: str | None
    config: dict[str, Any]
    started_at: float | None
    # several metrics: each objective's last value, and whether the trial is on the Pareto front
    values: dict[str, float | None] = field(default_factory=dict)
    pareto: bool = False


@dataclass(frozen=True)
class Report:
    """One reported result: ``time_s`` is seconds since the experiment's first report."""

    trial_id: str
    iteration: int
    time_s: float
    value: float | None


@dataclass(frozen=True, eq=False)
class Reports:
    """Every reported result, in columns (one numpy array each), ordered by time, trial id and
    iteration. Iterating gives :class:`Report` values one at a time; the charts of a large
    experiment work on the columns instead."""

    ids: tuple[str, ...]  # the trial ids, sorted
    trial: np.ndarray  # each report's index into ``ids``
    iteration: np.ndarray
    time_s: np.ndarray
    value: np.ndarray  # NaN where the metric is missing or not a finite number

    def __len__(self) -> int:
        return len(self.trial)

    def __iter__(self) -> Iterator[Report]:
        ids, values = self.ids, self.value.tolist()
        for t, i, s, v in zip(self.trial.tolist(), self.iteration.tolist(), self.time_s.tolist(), values, strict=True):
            yield Report(ids[t], i, s, None if v != v else v)  # NaN is the only value unequal to itself


@dataclass(frozen=True)
class ExperimentData:
    name: str
    folder: Path
    metric: str
    mode: str
    state: str
    spec: dict[str, Any]
    trials: tuple[Trial, ...]
    reports: Reports
    params: tuple[Param, ...]
    pbt: tuple[Decision, ...] | None
    notes: tuple[str, ...] = field(default=())
    # (metric, mode) of every objective when the experiment has several metrics; empty otherwise
    objectives: tuple[tuple[str, str], ...] = field(default=())
    source: str | None = None  # where the experiment was read from, when ``folder`` is a converted copy

    @property
    def shown_as(self) -> str:
        return self.source or str(self.folder)

    @property
    def sign(self) -> float:
        """+1 when larger is better."""
        return 1.0 if self.mode == "max" else -1.0

    def is_better(self, a: float, b: float) -> bool:
        return self.sign * a > self.sign * b

    @property
    def best_trial(self) -> Trial | None:
        scored = [t for t in self.trials if rankable(t.status, t.best)]
        if not scored:
            return None
        return max(scored, key=lambda t: self.sign * (t.best or 0.0))

    @property
    def scheduler(self) -> dict[str, Any]:
        value = self.spec.get("scheduler")
        return value if isinstance(value, dict) else {}

    def status_of(self) -> dict[str, str]:
        return {t.trial_id: t.status for t in self.trials}


def load(folder: Path) -> ExperimentData:
    """Read an experiment folder for the report.

    Raises:
        ExperimentError: no trials table, an unreadable one, or nothing reported at all.
    """
    trials_path = folder / layout.TRIALS
    if not trials_path.is_file():
        raise ExperimentError(f"{folder}: no {layout.TRIALS}, nothing to report (did the experiment start any trial?)")
    status = read_status(folder)
    spec = _read_spec(folder)
    trials, params, metric, mode, objectives = _read_trials(trials_path, status, spec)
    if not trials:
        raise ExperimentError(f"{folder}: the trials table is empty, nothing to report")
    started = {t.trial_id: t.started_at for t in trials}
    reports, notes = _read_reports(folder, metric, started)
    if not reports:
        errors = [t.error for t in trials if t.error]
        hint = f"; first error: {errors[0]}" if errors else ""
        raise ExperimentError(f"{folder}: {len(trials)} trial(s) but no reported results, nothing to report{hint}")
    return ExperimentData(
        name=str(status.get("name") or spec.get("name") or folder.name),
        folder=folder,
        metric=metric,
        mode=mode,
        state=str(status.get("state", "unknown")),
        spec=spec,
        trials=tuple(trials),
        reports=reports,
        params=tuple(params),
        pbt=_read_pbt(folder),
        notes=tuple(notes),
        objectives=tuple(objectives),
    )


def _read_spec(folder: Path) -> dict[str, Any]:
    import yaml

    path = folder / layout.SPEC
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def _log_scales(spec: dict[str, Any]) -> dict[str, bool]:
    """Each distribution's config column (``model/lr``) and whether it is drawn on a log scale;
    a column that several branches draw differently is log only if all of them are."""
    from raytuner.errors import Location, SpecError
    from raytuner.space.model import Float, Integer, parse_space, walk

    try:
        space = parse_space(spec.get("space"), lambda _path: Location())
    except SpecError:  # a spec.yaml from another version: fall back to the data's own spread
        return {}
    scales: dict[str, bool] = {}
    for path, node in walk(space.root):
        if isinstance(node, (Float, Integer)):
            name = "/".join(part for part in path if isinstance(part, str))  # choice options are numbered
            scales[name] = scales.get(name, True) and node.log
    return scales


def _read_trials(
    path: Path, status: dict[str, Any], spec: dict[str, Any]
) -> tuple[list[Trial], list[Param], str, str, list[tuple[str, str]]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from raytuner.results.pareto import PARETO_COLUMN, as_number, objectives_of, with_pareto

    try:
        table = with_pareto(pq.read_table(path))  # the front as of now, for a running experiment too
    except Exception as exc:  # noqa: BLE001 - any read failure is the same problem to the user
        raise ExperimentError(f"{path}: cannot read the trials table: {exc}") from exc
    meta = table.schema.metadata or {}
    objectives = objectives_of(meta)
    metric = meta.get(b"raytuner.metric", b"").decode() or str(status.get("metric") or spec.get("metric") or "")
    mode = meta.get(b"raytuner.mode", b"").decode() or str(status.get("mode") or spec.get("mode") or "min")
    if not metric:
        raise ExperimentError(f"{path}: no metric name in the table's metadata, status.json or spec.yaml")
    scales = _log_scales(spec)
    params = [
        Param(name, pa.types.is_integer(f.type) or pa.types.is_floating(f.type), scales.get(name))
        for f in table.schema
        if f.name.startswith("config/") and (name := f.name[len("config/") :])
    ]
    trials = []
    for row in table.to_pylist():
        config = {p.name: row.get(f"config/{p.name}") for p in params}
        best = row.get("metric_best")
        trials.append(
            Trial(
                trial_id=str(row["trial_id"]),
                status=str(row.get("status") or "unknown"),
                iterations=int(row.get("iterations") or 0),
                best=best if isinstance(best, float) and math.isfinite(best) else None,
                best_iteration=row.get("metric_best_iteration"),
                error=row.get("error"),
                config=config,
                started_at=layout.seconds(row.get("started_at")),
                values={name: as_number(row.get(f"last/{name}")) for name, _ in objectives},
                pareto=bool(row.get(PARETO_COLUMN)),
            )
        )
    return trials, params, metric, mode, objectives


def _number(value: Any) -> float | None:
    """A metric value as a float; string columns hold numbers as JSON text."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    try:
        parsed = json.loads(value)
    except (TypeError, ValueError):
        return None
    if isinstance(parsed, bool) or not isinstance(parsed, (int, float)) or not math.isfinite(parsed):
        return None
    return float(parsed)


def _read_reports(folder: Path, metric: str, started: dict[str, float | None]) -> tuple[Reports, list[str]]:
    import numpy as np
    import pyarrow as pa

    try:
        wanted = ["trial_id", "training_iteration", "time_total_s", "timestamp", metric]
        table = result_sources(Folder.local(folder)).table(wanted)
    except Exception as exc:  # noqa: BLE001 - any read failure is the same problem to the user
        raise ExperimentError(f"{folder}: cannot read the results table: {exc}") from exc
    # Columnar throughout (numpy, not an object per report): a million reports load in seconds.

    def column(name: str) -> pa.ChunkedArray:
        return table[name] if name in table.column_names else pa.chunked_array([pa.nulls(table.num_rows)])

    ids, trial = _codes(column("trial_id"))
    iteration = column("training_iteration").cast(pa.int64()).fill_null(0).to_numpy()
    total = column("time_total_s").cast(pa.float64()).fill_null(0.0).to_numpy()
    values, raw = _values(column(metric))
    notes: list[str] = []
    skipped = raw - int(np.count_nonzero(~np.isnan(values)))
    if skipped:
        notes.append(
            f"{skipped} of {raw} reported values of {metric} are not numbers; they are left out of the charts."
        )
    # When a report happened: the trial's start plus its own clock (ms precision); Ray's
    # result timestamp (whole seconds) only where the start is unknown.
    starts = np.array([started.get(tid) if started.get(tid) is not None else np.nan for tid in ids], dtype=float)
    start = starts[trial] if len(ids) else np.zeros(0)
    unknown = np.isnan(start)
    stamp = _epoch_seconds(column("timestamp")) if unknown.any() else np.zeros(table.num_rows)
    moments = np.where(unknown, np.nan_to_num(stamp), start + total)
    origin = moments.min() if len(moments) else 0.0
    time_s = np.maximum(0.0, moments - origin)
    order = np.lexsort((iteration, trial, time_s))  # by time, then trial id (codes are in id order), then iteration
    return Reports(ids, trial[order], iteration[order], time_s[order], values[order]), notes


def _codes(column: pa.ChunkedArray) -> tuple[tuple[str, ...], np.ndarray]:
    """The distinct trial ids, sorted, and each row's index into them."""
    import numpy as np
    import pyarrow as pa

    encoded = column.cast(pa.string()).fill_null("None").combine_chunks().dictionary_encode()
    names = [str(v) for v in encoded.dictionary.to_pylist()]
    order = sorted(range(len(names)), key=names.__getitem__)
    rank = np.empty(len(names), dtype=np.int64)
    rank[order] = np.arange(len(names))
    return tuple(names[i] for i in order), rank[encoded.indices.to_numpy(zero_copy_only=False)]


def _values(column: pa.ChunkedArray) -> tuple[np.ndarray, int]:
    """The metric as floats (NaN where it is missing or not a finite number), and how many
    rows reported a value at all."""
    import numpy as np
    import pyarrow as pa

    raw = len(column) - column.null_count
    if pa.types.is_floating(column.type) or pa.types.is_integer(column.type):
        values = column.cast(pa.float64()).fill_null(np.nan).to_numpy().copy()  # arrow memory is read-only
        values[~np.isfinite(values)] = np.nan
        return values, raw
    # strings hold numbers as JSON text; booleans are no numbers
    return np.array([v if (v := _number(x)) is not None else np.nan for x in column.to_pylist()], dtype=float), raw


def _epoch_seconds(column: pa.ChunkedArray) -> np.ndarray:
    """A timestamp (or seconds) column as Unix seconds, NaN where missing."""
    import numpy as np
    import pyarrow as pa

    if pa.types.is_timestamp(column.type) and column.type.tz is not None:  # naive ones: local time, as datetime does
        micros = column.cast(pa.timestamp("us", column.type.tz)).cast(pa.int64()).cast(pa.float64())
        seconds: np.ndarray = micros.fill_null(np.nan).to_numpy() / 1e6
        return seconds
    if pa.types.is_floating(column.type) or pa.types.is_integer(column.type):
        numbers: np.ndarray = column.cast(pa.float64()).fill_null(np.nan).to_numpy()
        return numbers
    return np.array([v if (v := layout.seconds(x)) is not None else np.nan for x in column.to_pylist()], dtype=float)


def _read_pbt(folder: Path) -> tuple[Decision, ...] | None:
    if not (folder / layout.PBT_DECISIONS).is_file():
        return None
    try:
        return tuple(read_exploits(folder))
    except Exception as exc:  # noqa: BLE001
        raise ExperimentError(f"{folder / layout.PBT_DECISIONS}: cannot read the PBT decisions: {exc}") from exc


