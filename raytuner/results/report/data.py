"""An experiment folder read back for the report: trials, reports, spec, PBT decisions.

Everything the charts need is loaded here once, as plain frozen values; the chart modules
never touch Parquet. Works on finished, running (``results.parts/``) and failed experiments.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from raytuner.errors import ExperimentError
from raytuner.results import layout
from raytuner.results.catalog import read_status
from raytuner.results.folder import Folder
from raytuner.results.lineage import Decision, read_exploits
from raytuner.results.records import rankable
from raytuner.results.tables import result_sources

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


@dataclass(frozen=True)
class ExperimentData:
    name: str
    folder: Path
    metric: str
    mode: str
    state: str
    spec: dict[str, Any]
    trials: tuple[Trial, ...]
    reports: tuple[Report, ...]
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
        reports=tuple(reports),
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


def _read_reports(folder: Path, metric: str, started: dict[str, float | None]) -> tuple[list[Report], list[str]]:
    try:
        wanted = ["trial_id", "training_iteration", "time_total_s", "timestamp", metric]
        batches = list(result_sources(Folder.local(folder)).batches(wanted))
    except Exception as exc:  # noqa: BLE001 - any read failure is the same problem to the user
        raise ExperimentError(f"{folder}: cannot read the results table: {exc}") from exc
    rows: list[tuple[str, int, float, float | None, Any]] = []
    for batch in batches:
        columns = batch.to_pydict()
        n = batch.num_rows
        reported = columns.get(metric) or [None] * n  # once per batch: built per row, reading was quadratic
        for i in range(n):
            rows.append(
                (
                    str(columns["trial_id"][i]),
                    int(columns["training_iteration"][i] or 0),
                    float(columns["time_total_s"][i] or 0.0),
                    layout.seconds(columns["timestamp"][i]),
                    reported[i],
                )
            )
    notes: list[str] = []
    raw_values = [row[4] for row in rows if row[4] is not None]
    values = [_number(v) for v in raw_values]
    skipped = sum(1 for v in values if v is None)
    if skipped:
        notes.append(
            f"{skipped} of {len(raw_values)} reported values of {metric} are not numbers; "
            "they are left out of the charts."
        )
    # When a report happened: the trial's start plus its own clock (ms precision); Ray's
    # result timestamp (whole seconds) only where the start is unknown.
    moments = [
        (started.get(tid) or 0.0) + total if started.get(tid) is not None else (stamp or 0.0)
        for tid, _, total, stamp, _ in rows
    ]
    origin = min(moments) if moments else 0.0
    reports = [
        Report(tid, iteration, max(0.0, moment - origin), _number(value))
        for (tid, iteration, _, _, value), moment in zip(rows, moments, strict=True)
    ]
    reports.sort(key=lambda r: (r.time_s, r.trial_id, r.iteration))
    return reports, notes


def _read_pbt(folder: Path) -> tuple[Decision, ...] | None:
    if not (folder / layout.PBT_DECISIONS).is_file():
        return None
    try:
        return tuple(read_exploits(folder))
    except Exception as exc:  # noqa: BLE001
        raise ExperimentError(f"{folder / layout.PBT_DECISIONS}: cannot read the PBT decisions: {exc}") from exc


