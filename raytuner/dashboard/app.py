"""The dashboard's routes: HTML pages, the JSON their script polls, and downloads.

Every answer reads the storage root again through the public API, so a running experiment
shows its progress. A folder that cannot be read answers with what went wrong (the page
shows it as broken); it never takes the server or another page down.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

import raytuner
from raytuner.cli.strict_json import finite
from raytuner.dashboard import pages
from raytuner.dashboard.guard import Guard, folder_name, inside
from raytuner.errors import ExperimentError, RaytunerError, UsageError
from raytuner.results.folder import is_uri
from raytuner.results.layout import RESULTS_PARTS, storage_root
from raytuner.results.remote import child_uri, redact

if TYPE_CHECKING:
    import pyarrow as pa

    from raytuner.results.lineage import Segment

STATIC = Path(__file__).with_name("static")
PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
TABLES = ("trials", "results")
CACHED_CHARTS = 32  # experiments whose charts are kept until their files change
FORMATS = {"parquet": "application/vnd.apache.parquet", "csv": "text/csv; charset=utf-8"}


def build(storage: str, token: str | None = None) -> Guard:
    """The ASGI app of the dashboard of ``storage`` (a folder or a URI)."""
    reader = Reader(storage)
    routes = [
        Route("/", reader.catalog_page),
        Route("/api/experiments", reader.catalog),
        Route("/e/{name}", reader.experiment_page),
        Route("/e/{name}/spec.yaml", reader.spec),
        Route("/e/{name}/best.yaml", reader.best),
        Route("/e/{name}/trial/{trial_id}", reader.trial_page),
        Route("/e/{name}/download/{table}.{fmt}", reader.download),
        Route("/api/e/{name}/charts", reader.charts),
        Route("/api/e/{name}/trials", reader.trials),
        Route("/compare", reader.compare_page),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return Guard(Starlette(routes=routes), token)


class Answer(Enum):
    """What a handler answers with, and so how its failures are written."""

    JSON = "json"
    HTML = "html"
    TEXT = "text"


def _answers(kind: Answer) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
    """A handler whose failures answer as ``kind`` with the one-line reason:
    404 for a bad name or filter, 500 (shown as broken) for a folder that cannot be read."""

    def decorate(handler: Callable[..., Response]) -> Callable[..., Response]:
        @functools.wraps(handler)
        def wrapper(self: Reader, request: Request) -> Response:
            try:
                return handler(self, request)
            except UsageError as exc:
                return _failure(kind, 404, redact(str(exc)))
            except RaytunerError as exc:
                return _failure(kind, 500, redact(str(exc)))
            except Exception as exc:  # noqa: BLE001 - a half-written folder: shown as broken, never a crash
                return _failure(kind, 500, f"cannot read it: {type(exc).__name__}: {redact(str(exc))}")

        return wrapper

    return decorate


def _failure(kind: Answer, status: int, message: str) -> Response:
    if kind is Answer.JSON:
        return JSONResponse({"error": message}, status_code=status)
    if kind is Answer.HTML:
        return HTMLResponse(pages.failure(message), status_code=status)
    return PlainTextResponse(message + "\n", status_code=status)


class Reader:
    """Answers requests about the experiments under one storage root (read-only)."""

    def __init__(self, storage: str) -> None:
        self.storage = storage
        # the charts last drawn of each folder, the stamp of its files then, when the drawing began (oldest first)
        self._lock = threading.Lock()
        self._charts: dict[str, tuple[tuple[tuple[str, int, int], ...], list[dict[str, Any]], float]] = {}
        self._drawings: dict[str, threading.Lock] = {}

    def _drawing(self, folder: str) -> threading.Lock:
        """The lock held while ``folder``'s charts are drawn."""
        with self._lock:
            return self._drawings.setdefault(folder, threading.Lock())

    @property
    def shown_root(self) -> str:
        return redact(self.storage.rstrip("/")) if is_uri(self.storage) else str(storage_root(self.storage))

    def open(self, name: str) -> raytuner.Experiment:
        """The experiment ``name`` directly under the storage root; nothing else can be named.

        Raises:
            UsageError: not a name under the root, or no experiment there.
        """
        if is_uri(self.storage):
            return raytuner.open(child_uri(self.storage, folder_name(name)))
        return raytuner.open(str(inside(storage_root(self.storage), name)))

    def _within(self, folder: str) -> bool:
        """Whether a listed folder lies inside the storage root (a link may lead elsewhere)."""
        if is_uri(self.storage):
            return True
        return Path(folder).resolve().is_relative_to(storage_root(self.storage).resolve())

    # ------------------------------------------------------------------ the catalog

    def catalog_page(self, request: Request) -> Response:
        return HTMLResponse(pages.catalog(self.shown_root))

    @_answers(Answer.JSON)
    def catalog(self, request: Request) -> Response:
        if not is_uri(self.storage) and not storage_root(self.storage).exists():
            return _json({"root": self.shown_root, "experiments": [], "note": "no experiments yet"})
        rows = [asdict(info) for info in raytuner.experiments(self.storage) if self._within(info.folder)]
        return _json({"root": self.shown_root, "experiments": rows})

    # ------------------------------------------------------------------ one experiment

    @_answers(Answer.HTML)
    def experiment_page(self, request: Request) -> Response:
        experiment = self.open(request.path_params["name"])
        return HTMLResponse(pages.experiment(experiment.name, experiment.source))

    @_answers(Answer.JSON)
    def charts(self, request: Request) -> Response:
        """The report's sections, with a version (the files' stamp): a page that already shows
        that version (``?since=``) gets ``unchanged`` instead of the charts again."""
        experiment = self.open(request.path_params["name"])
        state = experiment.state
        stamp = _stamp(experiment.folder) if not is_uri(experiment.folder) else None
        version = _version(stamp)
        if version is not None and request.query_params.get("since") == version:
            return _json({"state": state, "version": version, "unchanged": True})
        asked = time.monotonic()
        with self._drawing(experiment.folder):  # one drawing per experiment at once, whatever the pages
            with self._lock:
                cached = self._charts.get(experiment.folder)
            # what the files held then, or a drawing begun after this request came: no older than asked
            if cached is not None and (cached[0] == stamp or cached[2] >= asked):
                return _json({"state": state, "version": _version(cached[0]), "sections": cached[1]})
            begun = time.monotonic()
            try:
                sections = [pages.section(s) for s in experiment.charts()]
            except RaytunerError as exc:  # nothing reported yet: the page says so and keeps polling
                return _json({"state": state, "sections": [], "note": redact(str(exc))})
            if stamp is not None:
                with self._lock:  # handlers run in a thread pool
                    self._charts.pop(experiment.folder, None)
                    self._charts[experiment.folder] = (stamp, sections, begun)
                    while len(self._charts) > CACHED_CHARTS:
                        self._charts.pop(next(iter(self._charts)))
        return _json({"state": state, "version": version, "sections": sections})

    @_answers(Answer.JSON)
    def trials(self, request: Request) -> Response:
        query = request.query_params
        experiment = self.open(request.path_params["name"])
        where = query.get("where") or None
        sort = query.get("sort") or None
        try:
            view = experiment.select(where=where, sort=sort, descending=query.get("desc") == "1")
        except ExperimentError as exc:  # no trial has started yet: the page says so and keeps polling
            return _json({"columns": [], "rows": [], "total": 0, "matched": 0, "page": 1, "pages": 1, "note": redact(str(exc))})
        size = min(max(_int(query.get("size"), PAGE_SIZE), 1), MAX_PAGE_SIZE)
        matched = view.rows.num_rows
        pages_count = max(1, math.ceil(matched / size))
        page = min(max(_int(query.get("page"), 1), 1), pages_count)
        rows = view.rows.slice((page - 1) * size, size)
        return _json(
            {
                "columns": view.rows.column_names,
                "rows": [[_cell(v) for v in row.values()] for row in rows.to_pylist()],
                "total": view.total,
                "matched": matched,
                "page": page,
                "pages": pages_count,
                "metric": view.metric,
                "mode": view.mode,
                "best_trial_id": view.best_trial_id,
            }
        )

    @_answers(Answer.HTML)
    def trial_page(self, request: Request) -> Response:
        import pyarrow.compute as pc

        experiment = self.open(request.path_params["name"])
        trial_id = request.path_params["trial_id"]
        table = experiment.trials()
        found = table.filter(pc.equal(table["trial_id"], trial_id)).to_pylist()
        if not found:
            raise UsageError(f"{experiment.name} has no trial {trial_id!r}")
        reports = experiment.results(trial_id)  # only the row groups that may hold it
        schedule = _schedule(experiment, trial_id, table.num_rows)
        curves = _curves(reports)
        return HTMLResponse(pages.trial(experiment.name, found[0], curves, request.query_params.get("metric"), schedule))

    @_answers(Answer.TEXT)
    def spec(self, request: Request) -> Response:
        import yaml

        experiment = self.open(request.path_params["name"])
        spec = experiment.spec
        if spec is None:
            return PlainTextResponse(f"# {experiment.name} is a plain Ray Tune folder: it has no raytuner spec\n")
        return PlainTextResponse(yaml.safe_dump(spec, sort_keys=False))

    @_answers(Answer.TEXT)
    def best(self, request: Request) -> Response:
        import yaml

        experiment = self.open(request.path_params["name"])
        ranking = experiment.ranking(_int(request.query_params.get("n"), 5))
        entries = [{"trial_id": t.trial_id, "status": t.status, "values": t.values, "config": t.config} for t in ranking.trials]
        for entry in entries:  # where its best checkpoint is, beside the configuration (raytuner checkpoint copies it)
            if entry["trial_id"] in ranking.checkpoints:
                entry |= ranking.checkpoints[entry["trial_id"]].fields()
        head = f"# {experiment.name}: " + ("the Pareto front" if ranking.is_front else f"the best {len(entries)} trials")
        return PlainTextResponse(head + ", best first\n" + yaml.safe_dump(entries, sort_keys=False))

    @_answers(Answer.TEXT)
    def download(self, request: Request) -> Response:
        table, fmt = request.path_params["table"], request.path_params["fmt"]
        if table not in TABLES or fmt not in FORMATS:
            raise UsageError(f"no download {table}.{fmt}: expected trials or results, as parquet or csv")
        experiment = self.open(request.path_params["name"])
        scratch = Path(tempfile.mkdtemp(prefix="raytuner-dashboard-"))
        target = scratch / f"{experiment.name}-{table}.{fmt}"
        try:
            experiment.export(table, fmt, str(target))
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
        return FileResponse(
            target,
            media_type=FORMATS[fmt],
            filename=target.name,
            background=BackgroundTask(shutil.rmtree, scratch, ignore_errors=True),
        )

    # ------------------------------------------------------------------ several

    @_answers(Answer.HTML)
    def compare_page(self, request: Request) -> Response:
        names = request.query_params.getlist("e")
        if len(names) < 2:
            raise UsageError("compare: give two or more experiments, e.g. /compare?e=a&e=b")
        opened = [self.open(name) for name in names]
        comparison = opened[0].compare(*opened[1:])
        steps = {side.name: _best_steps(e, side.metric, side.mode) for e, side in zip(opened, comparison.sides, strict=True)}
        return HTMLResponse(pages.compare(comparison, steps))


def _curves(reports: pa.Table) -> dict[str, list[tuple[int, float]]]:
    """Each numeric reported column of one trial: (iteration, value) in report order."""
    import pyarrow as pa

    iterations = reports["training_iteration"].to_pylist() if "training_iteration" in reports.column_names else []
    curves: dict[str, list[tuple[int, float]]] = {}
    for field in reports.schema:
        if field.name in ("trial_id", "training_iteration") or not (
            pa.types.is_floating(field.type) or pa.types.is_integer(field.type)
        ):
            continue
        points = [
            (int(i or 0), float(v))
            for i, v in zip(iterations, reports[field.name].to_pylist(), strict=False)
            if v is not None and math.isfinite(v)
        ]
        if points:
            curves[field.name] = points
    return curves


def _stamp(folder: str) -> tuple[tuple[str, int, int], ...]:
    """Name, modification time and size of every file the charts are drawn from (the folder's
    own files and its results parts): a finished experiment is drawn once, not at every poll."""
    root = Path(folder)
    files = [p for p in root.iterdir() if p.is_file()]
    parts = root / RESULTS_PARTS
    if parts.is_dir():
        files += [p for p in parts.iterdir() if p.is_file()]
    stats = ((str(p.relative_to(root)), p.stat()) for p in files)
    return tuple(sorted((name, st.st_mtime_ns, st.st_size) for name, st in stats))


def _version(stamp: tuple[tuple[str, int, int], ...] | None) -> str | None:
    """A short name for the state of the files a stamp describes."""
    return hashlib.sha1(repr(stamp).encode()).hexdigest()[:16] if stamp is not None else None


def _schedule(experiment: raytuner.Experiment, trial_id: str, trials: int) -> list[Segment]:
    """PBT: the configurations the trial's final model was trained with (empty without PBT)."""
    if experiment.lineage().num_rows == 0:
        return []
    try:
        return experiment.ranking(trials, include_failed=True).schedules.get(trial_id, [])
    except UsageError:  # several metrics, or a Ray Tune folder without one: no schedule
        return []


def _best_steps(experiment: raytuner.Experiment, metric: str | None, mode: str | None) -> list[tuple[int, float]]:
    """The best value of ``metric`` so far after each report (report number, value), where it changed."""
    if not metric:
        return []
    results = experiment.results()
    if metric not in results.column_names:
        return []
    sign = -1.0 if mode == "max" else 1.0
    steps: list[tuple[int, float]] = []
    for number, value in enumerate(results[metric].to_pylist(), start=1):
        if isinstance(value, (int, float)) and math.isfinite(value) and (not steps or sign * value < sign * steps[-1][1]):
            steps.append((number, float(value)))
    if steps:
        steps.append((results.num_rows, steps[-1][1]))
    return steps


def _int(text: str | None, default: int) -> int:
    try:
        return int(text) if text else default
    except ValueError:
        return default


def _cell(value: Any) -> Any:
    """A table cell as JSON: non-finite numbers are null, times ISO text."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, (list, dict)):
        return json.dumps(value, default=str)
    return value


def _json(data: dict[str, Any]) -> Response:
    return Response(json.dumps(finite(data), default=str), media_type="application/json")  # NaN, inf: null
