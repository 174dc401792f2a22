"""How runs and results look: the live view, plain log lines, JSON events and tables."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, TextIO

from rich.console import Console, Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from raytuner.cli import strict_json

if TYPE_CHECKING:
    from rich.live import Live

    from raytuner.execution.events import Event, Listener
    from raytuner.execution.runner import RunSummary
    from raytuner.results.records import ExperimentBook, TrialRecord


def format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {format_value(v)}" for k, v in value.items()) + "}"
    return str(value)


def format_config(config: Mapping[str, Any], limit: int | None = 120) -> str:
    """``key=value, ...``, cut to ``limit`` characters (None: whole)."""
    text = ", ".join(f"{key}={format_value(value)}" for key, value in config.items())
    return text if limit is None or len(text) <= limit else text[: limit - 1] + "…"


def elapsed(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def status_line(book: ExperimentBook, total: int | None) -> str:
    counts = {status.value: n for status, n in book.counts().items() if n}
    done = sum(n for status, n in book.counts().items() if status.finished)
    parts = [f"{done}/{total if total else '?'} trials done"]
    running = counts.get("running", 0)
    parts.append(f"{running} running")
    pending = book.pending if total is None else min(book.pending, max(total - done - running, 0))
    if pending:
        parts.append(f"{pending} pending")
    for key in ("completed", "stopped", "error"):
        if counts.get(key):
            parts.append(f"{counts[key]} {key}")
    return " · ".join(parts)


def pending_line(data: Mapping[str, Any]) -> str:
    """A trial_pending event as one line: which trial, how long, and why."""
    return f"trial {data['trial_id']} pending for {elapsed(data['pending_s'])}: {data['message']}"


def best_line(book: ExperimentBook) -> str:
    if book.multi_objective:
        return front_line(book)
    if book.best is None:
        return f"best {book.metric}: (no report yet)"
    best = book.best
    return f"best {book.metric} = {best.value:.6g}  (trial {best.trial_id}, iter {best.iteration})  {format_config(best.config)}"


def front_line(book: ExperimentBook) -> str:
    """Several metrics: the size of the Pareto front of completed trials instead of one best."""
    objectives = ", ".join(f"{metric} ({mode})" for metric, mode in book.objectives)
    front = book.front()
    if not front:
        return f"Pareto front of {objectives}: (no completed trial yet)"
    return f"Pareto front of {objectives}: {len(front)} trial{'s' if len(front) > 1 else ''}"


def _objective_values(record: TrialRecord, book: ExperimentBook) -> str:
    return ", ".join(f"{metric}={format_value(record.last.get(metric))}" for metric, _ in book.objectives)


class NotebookLive:
    """The live view's area in a Jupyter notebook: one output of the cell, replaced in place
    through IPython's display handle (rich's own ``Live`` needs ipywidgets there). Its last
    frame stays, as the run's record in the notebook."""

    def __init__(self, renderable: Any) -> None:
        from IPython.display import display

        self.handle = display(self._bundle(renderable), raw=True, display_id=True)  # type: ignore[no-untyped-call]

    def update(self, renderable: Any, refresh: bool = True) -> None:
        self.handle.update(self._bundle(renderable), raw=True)

    def stop(self) -> None:
        """Nothing to take down: the last frame is the record."""

    def _bundle(self, renderable: Any) -> dict[str, str]:
        """``renderable`` as text and as HTML (rich's colors), for the notebook to pick."""
        import io

        from rich.console import JUPYTER_DEFAULT_COLUMNS

        drawn = Console(file=io.StringIO(), record=True, width=JUPYTER_DEFAULT_COLUMNS, force_jupyter=False, force_terminal=True)
        drawn.print(renderable)
        return {"text/plain": drawn.export_text(), "text/html": drawn.export_html(inline_styles=True)}


class LiveView:
    """A live table on a terminal or in a Jupyter notebook: trials by state, the best so far,
    running trials."""

    def __init__(self, console: Console, max_rows: int = 8) -> None:
        self.console = console
        self.max_rows = max_rows
        self.started = time.monotonic()
        self.total: int | None = None
        self.title = ""
        self._live: Live | NotebookLive | None = None
        self._last = 0.0

    def handle(self, event: Event, book: ExperimentBook) -> None:
        from rich.live import Live

        from raytuner.execution.events import EventKind

        if event.kind is EventKind.EXPERIMENT_STARTED:
            data = event.data
            self.total = data["total_trials"]
            self.title = (
                f"{data['name']} · {data['algorithm']} + {data['scheduler']} · {data['metric']} ({data['mode']}) · "
                f"{_where(data['ray'])} ({data['cluster_cpus']:g} CPU, {data['cluster_gpus']:g} GPU)"
            )
            if data.get("placement"):  # the pre-flight report stays above the live table
                self.console.print(data["placement"]["line"], markup=False, highlight=False)
            if data.get("awaits_node"):
                self.console.print(f"[yellow]{escape(data['awaits_node']['line'])}[/yellow]")
            if data.get("warm_start"):
                self.console.print(data["warm_start"]["line"], markup=False, highlight=False)
            if self.console.is_jupyter:
                self._live = NotebookLive(self._render(book))
                return
            self._live = Live(self._render(book), console=self.console, auto_refresh=False, transient=True)
            self._live.start()
            return
        if event.kind is EventKind.TRIAL_ERROR:
            self.console.print(f"[red]trial {event.data['trial_id']} failed:[/red] {escape(str(event.data['error']))}")
        if event.kind is EventKind.TRIAL_PENDING:
            self.console.print(f"[yellow]{escape(pending_line(event.data))}[/yellow]")
        if event.kind is EventKind.SEARCH_DECISION:
            self.console.print(search_decision_line(event.data), markup=False, highlight=False)
        if event.kind is EventKind.EXPERIMENT_FINISHED:
            if self._live is not None:  # the last frame (a notebook keeps it)
                self._live.update(self._render(book), refresh=True)
            self.close()
            return
        now = time.monotonic()
        if self._live is not None and now - self._last > 0.25:
            self._last = now
            self._live.update(self._render(book), refresh=True)

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def _render(self, book: ExperimentBook) -> Group:
        head = Text(self.title, style="bold")
        line = Text(f"{status_line(book, self.total)} · elapsed {elapsed(time.monotonic() - self.started)}")
        best = Text(best_line(book), style="green")
        running = [r for r in book.trials.values() if r.status.value == "running"]
        table = Table(box=None, pad_edge=False, header_style="dim")
        for column in ("trial", "iter", book.metric, "best", "config"):
            table.add_column(column)
        for record in running[: self.max_rows]:
            last = record.last.get(book.metric)
            table.add_row(
                record.trial_id,
                str(record.iterations),
                format_value(last) if last is not None else "",
                format_value(record.best) if record.best is not None else "",
                format_config(record.config, 80),
            )
        return Group(head, line, best, table)


def search_decision_line(data: dict[str, Any]) -> str:
    """One ``search_decision`` event (search.algorithm auto) as a line."""
    if data["previous"] is None:
        return f"search: auto starts with {data['algorithm']}: {data['reason']}"
    return (
        f"search: auto switched from {data['previous']} to {data['algorithm']} after {data['trials']} trials "
        f"(told all {data['told']}): {data['reason']}"
    )


class PlainLines:
    """One line per finished trial and per new best, for logs that are not a terminal."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.total: int | None = None
        self.started = time.monotonic()

    def handle(self, event: Event, book: ExperimentBook) -> None:
        from raytuner.execution.events import EventKind

        kind = event.kind
        data = event.data
        stamp = elapsed(time.monotonic() - self.started)
        if kind is EventKind.EXPERIMENT_STARTED:
            self.total = data["total_trials"]
            self._print(
                f"[{stamp}] {data['name']}: {self.total} trials, {data['algorithm']} + {data['scheduler']}, "
                f"{data['metric']} ({data['mode']}), {_where(data['ray'])}"
            )
            if data.get("placement"):  # the pre-flight report: GPUs, trials at once, per GPU
                self._print(f"[{stamp}] {data['placement']['line']}")
            if data.get("awaits_node"):
                self._print(f"[{stamp}] {data['awaits_node']['line']}")
            if data.get("warm_start"):
                self._print(f"[{stamp}] {data['warm_start']['line']}")
        elif kind in (EventKind.TRIAL_COMPLETED, EventKind.TRIAL_STOPPED):
            verb = "completed" if kind is EventKind.TRIAL_COMPLETED else "stopped early"
            best = data.get("best")
            shown = f", best {book.metric}={best:.6g}" if isinstance(best, float) else ""
            record = book.trials.get(data["trial_id"])
            if book.multi_objective and record is not None:
                shown = f", last {_objective_values(record, book)}"
            progress = status_line(book, self.total)
            self._print(f"[{stamp}] trial {data['trial_id']} {verb} after {data['iterations']} iterations{shown} · {progress}")
        elif kind is EventKind.TRIAL_ERROR:
            self._print(f"[{stamp}] trial {data['trial_id']} failed: {data['error']}")
        elif kind is EventKind.TRIAL_RETRY:
            self._print(f"[{stamp}] trial {data['trial_id']} failed, retrying ({data['failures']}): {data['error']}")
        elif kind is EventKind.TRIAL_PENDING:
            self._print(f"[{stamp}] {pending_line(data)}")
        elif kind is EventKind.SEARCH_DECISION:
            self._print(f"[{stamp}] {search_decision_line(data)}")

    def _print(self, line: str) -> None:
        print(line, file=self.out, flush=True)


class QuietLines:
    """``-q``: only failed trials, one line each on stderr; the summary follows the run."""

    def __init__(self, err: TextIO) -> None:
        self.err = err

    def handle(self, event: Event, book: ExperimentBook) -> None:
        from raytuner.execution.events import EventKind

        if event.kind is EventKind.TRIAL_ERROR:
            print(f"trial {event.data['trial_id']} failed: {event.data['error']}", file=self.err, flush=True)


class JsonLines:
    """``--json``: one JSON object per event; progress at most every ``every_s`` seconds.

    ``quiet`` (``--json -q``): only ``trial_error`` and the final ``experiment_finished``.
    """

    def __init__(self, out: TextIO, every_s: float = 5.0, quiet: bool = False) -> None:
        self.out = out
        self.every_s = every_s
        self.quiet = quiet
        self._last_progress = 0.0

    def handle(self, event: Event, book: ExperimentBook) -> None:
        from raytuner.execution.events import EventKind

        if self.quiet and event.kind not in (EventKind.TRIAL_ERROR, EventKind.EXPERIMENT_FINISHED):
            return
        payload = event.to_json()
        if event.kind is EventKind.PROGRESS:
            now = time.monotonic()
            if now - self._last_progress < self.every_s:
                return
            self._last_progress = now
            payload["trials"] = {status.value: n for status, n in book.counts().items()}
            payload["pending"] = book.pending
            payload["reports"] = book.reports
            payload["best"] = None if book.best is None or book.multi_objective else book.best.value
            if book.multi_objective:
                payload["front"] = len(book.front())
        print(strict_json.dumps(payload), file=self.out, flush=True)


def summary_table(summary: RunSummary, top: int = 10, config_limit: int | None = 70) -> Table:  # top: at most KEEP_BEST
    """The best trials of a finished run, best first (several metrics: the Pareto front);
    configs cut to ``config_limit`` characters (None: whole)."""
    from raytuner.cli.output import add_key_column

    book = summary.book
    if book.multi_objective:
        return _front_table(summary, top, config_limit)
    ranked = book.ranked()
    table = Table(title=f"{summary.name}: top {min(top, len(ranked))} of {book.size} trials")
    table.add_column("#", overflow="fold")
    add_key_column(table, "trial")
    for column in ("status", f"best {book.metric}", "iter", "config"):
        table.add_column(column, overflow="fold")
    for rank, record in enumerate(ranked[:top], 1):
        table.add_row(
            str(rank),
            record.trial_id,
            _status(record),
            format_value(record.best) if record.best is not None else "-",
            str(record.iterations),
            Text(format_config(record.config, config_limit)),  # Text: brackets in configs are not markup
        )
    return table


def _front_table(summary: RunSummary, top: int, config_limit: int | None) -> Table:
    from raytuner.cli.output import add_key_column

    book = summary.book
    front = book.front()
    table = Table(title=f"{summary.name}: Pareto front, {min(top, len(front))} of {len(front)} trials")
    table.add_column("#", overflow="fold")
    add_key_column(table, "trial")
    for column in (*(f"{metric} ({mode})" for metric, mode in book.objectives), "iter", "config"):
        table.add_column(column, overflow="fold")
    for rank, record in enumerate(front[:top], 1):
        values = [format_value(record.last.get(metric)) for metric, _ in book.objectives]
        config = Text(format_config(record.config, config_limit))
        table.add_row(str(rank), record.trial_id, *values, str(record.iterations), config)
    return table


def _status(record: TrialRecord) -> str:
    value = record.status.value
    return {"error": "[red]error[/red]", "stopped": "[yellow]stopped[/yellow]"}.get(value, value)


def stdout_console() -> Console:
    """The console of stdout; outside a terminal as wide as any line, so none is wrapped."""
    from raytuner.cli.output import WIDE

    console = Console(file=sys.stdout, highlight=False)
    if not console.is_terminal:
        console.width = WIDE
    return console


def stderr_console() -> Console:
    return Console(file=sys.stderr, highlight=False)


def choose_listener(console: Console, json_: bool, verbose: bool, quiet: bool = False) -> Any:
    """``--json`` lines, the live view on a terminal or in Jupyter, plain lines otherwise (and
    with -v); ``-q``: failed trials only (with ``--json``: their events and the last one)."""
    if json_:
        return JsonLines(sys.stdout, quiet=quiet)
    if quiet:
        return QuietLines(sys.stderr)
    if (console.is_terminal or console.is_jupyter) and not verbose:
        return LiveView(console)
    return PlainLines(sys.stdout)


def print_summary(console: Console, summary: RunSummary) -> None:
    """The end of a run: the best trials, counts, the best value and the folder."""
    from raytuner.cli.output import print_table

    print_table(summary_table(summary, config_limit=70 if console.is_terminal else None), console)
    counts = {status.value: n for status, n in summary.book.counts().items() if n}
    console.print(
        f"{summary.state.value} in {summary.duration_s:.1f}s · " + ", ".join(f"{n} {s}" for s, n in counts.items())
    )
    if summary.book.multi_objective:
        console.print(front_line(summary.book))
    elif summary.book.best is not None:
        best = summary.book.best
        console.print(f"best {summary.book.metric} = {best.value:.6g} (trial {best.trial_id})")
    console.print(f"experiment folder: {summary.location}", markup=False)
    if summary.failed:
        line = f"{summary.failed} of {summary.book.size} trials failed; their errors: {summary.errors_at}"
        console.print(line, markup=False, soft_wrap=True)
    if summary.state.value == "interrupted":
        console.print(f"resume it with: raytuner resume {summary.location}", markup=False)
    if summary.hint:
        console.print(f"hint: {summary.hint}", style="dim", markup=False)


@contextlib.contextmanager
def run_display(json_: bool, verbose: bool, quiet: bool = False) -> Iterator[Listener]:
    """The listener the flags ask for, while a run, resume or extend command runs (SIGTERM
    acting as Ctrl-C); the live view is closed after."""
    from raytuner.cli.signals import sigterm_as_ctrl_c
    from raytuner.errors import UsageError

    if quiet and verbose:
        raise UsageError("-q (only the summary and errors) and -v (Ray's logs and every event) contradict: give one")
    listener = choose_listener(stdout_console(), json_, verbose, quiet)
    try:
        with sigterm_as_ctrl_c():
            yield listener
    finally:
        if isinstance(listener, LiveView):
            listener.close()


def end_of_run(json_: bool, summary: RunSummary | None) -> None:
    """Print the run's summary (not with ``--json``: its last event said it), then exit with its
    code unless it is 0: 130 interrupted (Ctrl-C or SIGTERM), 1 failed (with its reason on
    stderr), 3 completed with failed trials; so scripts can tell."""
    import typer

    if summary is None:
        return
    if not json_:
        print_summary(stdout_console(), summary)
    if summary.error and summary.state.value == "failed":
        print(f"error: {summary.error}", file=sys.stderr)
    if summary.exit_code:
        raise typer.Exit(summary.exit_code)


def _where(ray: str) -> str:
    """Where the trials run, for the run's first line: ``Ray <address>``, or in this process."""
    return "inline, no Ray" if ray == "inline" else f"Ray {ray}"
