"""``raytuner report``: one self-contained HTML file of charts for an experiment folder.

One module per chart kind (:mod:`.best_so_far`, :mod:`.curves`, :mod:`.parallel`,
:mod:`.importance`, :mod:`.early_stopping`, :mod:`.pbt`), each drawing inline SVG from the
values :mod:`.data` reads; :mod:`.page` assembles them and :mod:`.png` renders PNGs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from raytuner.results.report.section import Chart, ChartKind, Omitted, Section

if TYPE_CHECKING:
    from raytuner.results.report.data import ExperimentData

REPORT_FILE = "report.html"

__all__ = ["REPORT_FILE", "Chart", "ChartKind", "Omitted", "ReportResult", "Section", "draw", "write_report"]


@dataclass(frozen=True)
class ReportResult:
    html: Path
    sections: tuple[Section, ...]
    pngs: tuple[Path, ...]

    @property
    def drawn(self) -> list[Chart]:
        return [s for s in self.sections if isinstance(s, Chart)]

    @property
    def omitted(self) -> list[Omitted]:
        return [s for s in self.sections if isinstance(s, Omitted)]


def write_report(folder: Path, output: Path | None = None, png: bool = False, source: str | None = None) -> ReportResult:
    """Write the HTML report of the experiment in ``folder`` (and PNGs of its charts).

    Args:
        folder: the experiment folder.
        output: the HTML file to write; default ``<folder>/report.html``.
        png: also render every drawn chart to ``<output stem>-png/<chart>.png``.
        source: where the experiment was read from, shown in the report when ``folder`` is a
            converted copy (a plain Ray Tune folder's tables).

    Raises:
        ExperimentError: nothing to report (no trials table, no results), or PNG rendering failed.
    """
    from raytuner.results.report import page
    from raytuner.results.report.png import render_pngs

    experiment, drawn = _drawn(folder, source)
    target = output if output is not None else folder / REPORT_FILE
    page.write(target, page.render(experiment, drawn))
    pngs: list[Path] = []
    if png:
        pngs = render_pngs([s for s in drawn if isinstance(s, Chart)], target.with_name(f"{target.stem}-png"))
    return ReportResult(target, tuple(drawn), tuple(pngs))


def draw(folder: Path) -> list[Section]:
    """Every chart of the report of the experiment in ``folder``, drawn or left out with the
    reason, without writing anything (the dashboard shows them).

    Raises:
        ExperimentError: nothing to report (no trials table, no results).
    """
    return _drawn(folder, None)[1]


def _drawn(folder: Path, source: str | None) -> tuple[ExperimentData, list[Section]]:
    from raytuner.results.report import data, page

    experiment = data.load(folder)
    if source is not None:
        experiment = dataclasses.replace(experiment, source=source)
    return experiment, page.sections(experiment)
