"""The dashboard's HTML: page shells its script fills in, and the pages drawn at once
(a trial, a comparison). Every value from an experiment is escaped."""

from __future__ import annotations

import json
from html import escape
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from raytuner import __version__
from raytuner.results.report import Chart, Section
from raytuner.results.report.svg import BEST_COLOR, Figure, Scale, fmt

if TYPE_CHECKING:
    from raytuner.results.compare import Comparison
    from raytuner.results.lineage import Segment

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")


def _page(title: str, page: str, body: str, data: dict[str, str] | None = None) -> str:
    attributes = "".join(f" data-{k}='{escape(v)}'" for k, v in (data or {}).items())
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{escape(title)}: raytuner dashboard</title>"
        "<link rel='icon' href='data:,'><link rel='stylesheet' href='/static/dashboard.css'></head>"
        f"<body data-page='{page}'{attributes}><nav><a href='/'>raytuner dashboard</a>"
        f"<span class='version'>{escape(__version__)}</span></nav><main>{body}</main>"
        "<script src='/static/dashboard.js'></script></body></html>\n"
    )


def catalog(root: str) -> str:
    """The list of experiments; the script polls ``/api/experiments`` and fills the table."""
    body = (
        f"<h1>Experiments</h1><p class='sub'>under <code>{escape(root)}</code> · <span id='updated'>loading…</span></p>"
        "<p id='problem' class='problem' hidden></p>"
        "<form id='compare-form' action='/compare' method='get'>"
        "<table id='experiments'><thead><tr><th></th><th>name</th><th>state</th><th>trials</th><th>best</th>"
        "<th>started</th><th>duration</th></tr></thead><tbody></tbody></table>"
        "<button type='submit'>Compare the ticked experiments</button></form>"
    )
    return _page("Experiments", "catalog", body)


def experiment(name: str, source: str) -> str:
    """An experiment: header, the report's charts and the trial table, filled by the script."""
    base = f"/e/{quote(name, safe='')}"
    downloads = " · ".join(
        f"<a href='{base}/download/{table}.{fmt}' download>{table}.{fmt}</a>"
        for table in ("trials", "results")
        for fmt in ("parquet", "csv")
    )
    body = (
        f"<header><h1>{escape(name)}</h1><p class='sub'><code>{escape(source)}</code> · state "
        "<b id='state'>…</b> · <span id='updated'>loading…</span></p>"
        f"<p><a href='{base}/spec.yaml'>spec</a> · <a href='{base}/best.yaml'>best configurations (YAML)</a> · "
        f"download {downloads}</p></header>"
        "<p id='problem' class='problem' hidden></p>"
        "<section id='trials'><h2>Trials</h2><form id='filter'>"
        "<input id='where' name='where' size='60' placeholder='where, e.g. status == \"completed\" and config/lr &lt; 0.01'>"
        "<button type='submit'>Filter</button> <span id='count'></span></form>"
        "<table id='trial-table'><thead></thead><tbody></tbody></table>"
        "<p class='pager'><button id='prev' type='button'>‹ previous</button> <span id='pageinfo'></span> "
        "<button id='next' type='button'>next ›</button></p></section>"
        "<div id='charts'></div>"
    )
    return _page(name, "experiment", body, {"name": name})


def section(drawn: Section) -> dict[str, Any]:
    """One of the report's sections, as the experiment page's script shows it."""
    if isinstance(drawn, Chart):
        shown = {"kind": drawn.kind.value, "title": drawn.title, "caption": drawn.caption, "html": drawn.svg + drawn.table_html}
        return {**shown, "sample": drawn.sample} if drawn.sample else shown  # a large experiment's: what is drawn
    return {"kind": drawn.kind.value, "title": drawn.title, "omitted": drawn.reason}


def trial(
    name: str,
    row: dict[str, Any],
    curves: dict[str, list[tuple[int, float]]],
    metric: str | None,
    schedule: list[Segment],
) -> str:
    """A trial: its configuration, status, error, where its checkpoints are, a metric's curve,
    and (PBT) the schedule of configurations its final model was trained with."""
    import yaml

    config = json.loads(row.get("config_json") or "{}")
    # the metric asked for, else the experiment's, else the first one reported
    chosen = next((m for m in (metric, row.get("metric"), *curves) if m in curves), None)
    facts = [
        ("status", escape(str(row.get("status")))),
        ("iterations", escape(str(row.get("iterations")))),
        ("best", escape(f"{row.get('metric')} {_value(row.get('metric_best'))} at iteration {row.get('metric_best_iteration')}")),
        ("run time", escape(f"{_value(row.get('time_total_s'))} s")),
        ("node", escape(str(row.get("node_ip") or "-"))),
        ("checkpoints", f"<code>{escape(str(row.get('trial_dir') or '-'))}</code>"),
    ]
    facts += [(key, f"<code>{escape(str(value))}</code>") for key, value in row.items() if "checkpoint" in key and value]
    items = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)
    error = f"<section id='error'><h2>Error</h2><pre>{escape(str(row['error']))}</pre></section>" if row.get("error") else ""
    links = " · ".join(f"<a href='?metric={quote(m)}'>{escape(m)}</a>" if m != chosen else f"<b>{escape(m)}</b>" for m in curves)
    curve = (
        f"<section id='curve'><h2>{escape(chosen)} by iteration</h2><p class='sub'>{links}</p>"
        f"{_curve(chosen, curves[chosen])}</section>"
        if chosen
        else "<section id='curve'><h2>Curve</h2><p>No numeric report yet.</p></section>"
    )
    body = (
        f"<header><h1>Trial {escape(str(row['trial_id']))}</h1><p class='sub'>of "
        f"<a href='/e/{quote(name, safe='')}'>{escape(name)}</a></p><dl>{items}</dl></header>"
        f"<section id='config'><h2>Configuration</h2><pre>{escape(yaml.safe_dump(config, sort_keys=False))}</pre></section>"
        f"{error}{curve}{_schedule(schedule)}"
    )
    return _page(f"{name} {row['trial_id']}", "trial", body)


def _schedule(schedule: list[Segment]) -> str:
    if not schedule:
        return ""
    rows = "".join(
        f"<tr><td class='num'>{s.start_step}</td><td><code>{escape(s.trial_id)}</code></td>"
        f"<td><code>{escape(json.dumps(s.config, default=str))}</code></td></tr>"
        for s in schedule
    )
    return (
        "<section id='schedule'><h2>PBT schedule followed</h2><p class='caption'>The configurations this trial's "
        "final model was trained with, from each step on (copied from another trial where the trial differs).</p>"
        f"<table><thead><tr><th>from step</th><th>in trial</th><th>configuration</th></tr></thead><tbody>{rows}</tbody>"
        "</table></section>"
    )


def _curve(metric: str, points: list[tuple[int, float]]) -> str:
    fig = Figure("trial-curve", 900, 320)
    x = Scale.fit([p[0] for p in points], fig.left, fig.right, log=False)
    y = Scale.fit([p[1] for p in points], fig.bottom, fig.top)
    fig.axes(x, y, "iteration", metric)
    fig.polyline([(x(i), y(v)) for i, v in points], BEST_COLOR, 2.0, tip=metric)
    return fig.render(metric)


def compare(comparison: Comparison, steps: dict[str, list[tuple[int, float]]]) -> str:
    """Two or more experiments: best values and ranks, trials, what differs, best-so-far curves overlaid."""
    ranks = comparison.ranks()
    head = "".join(f"<th><a href='/e/{quote(s.name, safe='')}'>{escape(s.name)}</a></th>" for s in comparison.sides)
    rows = [
        ("metric", [f"{s.metric} ({s.mode})" for s in comparison.sides]),
        ("best", [_value(s.best_value) for s in comparison.sides]),
        ("rank", ["-" if r is None else str(r) for r in ranks]),
        ("best trial", [s.best_trial or "-" for s in comparison.sides]),
        ("trials", [", ".join(f"{n} {k}" for k, n in s.trials.items() if n) or "-" for s in comparison.sides]),
    ]
    body = "".join(f"<tr><th>{escape(k)}</th>{''.join(f'<td>{escape(v)}</td>' for v in values)}</tr>" for k, values in rows)
    sections = [f"<section><h2>Summary</h2><table><thead><tr><th></th>{head}</tr></thead><tbody>{body}</tbody></table></section>"]
    for title, differences in (
        ("Best configurations: what differs", comparison.config),
        ("Specs: what differs", comparison.spec),
    ):
        diff = (
            "".join(
                f"<tr><th><code>{escape(d.key)}</code></th>{''.join(f'<td>{escape(_value(v))}</td>' for v in d.values)}</tr>"
                for d in differences
            )
            or f"<tr><td colspan='{len(comparison.sides) + 1}'>nothing differs</td></tr>"
        )
        sections.append(
            f"<section><h2>{title}</h2><table><thead><tr><th></th>{head}</tr></thead><tbody>{diff}</tbody></table></section>"
        )
    sections.insert(1, _overlaid(comparison, steps))
    notes = "".join(f"<p class='note'>{escape(n)}</p>" for n in comparison.notes)
    return _page("Compare", "compare", "<h1>Compare</h1>" + notes + "".join(sections))


def _overlaid(comparison: Comparison, steps: dict[str, list[tuple[int, float]]]) -> str:
    """Each experiment's best so far against its reports, on one chart (when they share a metric)."""
    title = "<h2>Best so far</h2>"
    if not comparison.ranked or not any(steps.values()):
        return f"<section id='best-so-far'>{title}<p class='note'>Not drawn: the experiments do not share a metric.</p></section>"
    side = comparison.sides[0]
    fig = Figure("compare-best-so-far", 1000, 360, top=30)
    x = Scale.fit([p[0] for s in steps.values() for p in s], fig.left, fig.right, log=False, pad=0.02)
    y = Scale.fit([p[1] for s in steps.values() for p in s], fig.bottom, fig.top)
    fig.axes(x, y, "reports so far", f"{side.metric} ({side.mode})")
    legend = []
    for i, (name, points) in enumerate(steps.items()):
        color = PALETTE[i % len(PALETTE)]
        line: list[tuple[float, float]] = []
        for number, value in points:
            if line:
                line.append((x(number), line[-1][1]))
            line.append((x(number), y(value)))
        fig.polyline(line, color, 2.2, tip=f"{name}: best {side.metric} so far", css="series best")
        legend.append((name, color))
    fig.legend(legend)
    caption = (
        f"<p class='caption'>The best {escape(str(side.metric))} any trial had reported after each report, "
        "failed trials included; one line per experiment.</p>"
    )
    return f"<section id='best-so-far'>{title}{caption}{fig.render('Best so far')}</section>"


def failure(message: str) -> str:
    return _page("Cannot show this", "failure", f"<h1>Cannot show this</h1><p class='problem'>{escape(message)}</p>")


def _value(value: Any) -> str:
    if isinstance(value, float):
        return fmt(value)
    return "-" if value is None else str(value)
