"""Charts of a large experiment: computed on every report, drawn from a bounded, labelled sample."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from large_experiment import write_large_experiment

from raytuner.results.report import Chart, ChartKind, draw, sample
from raytuner.results.report.curves import BAND, _band

pytestmark = pytest.mark.slow
TRIALS, REPORTS = 400, 260  # past both sizes drawn whole: 400 > 200 trials, 104,000 > 100,000 reports


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("large") / "large"
    write_large_experiment(folder, TRIALS, REPORTS)
    return folder


def _polyline_points(svg: str) -> list[int]:
    return [len(points.split()) for points in re.findall(r'<polyline[^>]* points="([^"]*)"', svg)]


def test_every_chart_of_a_large_experiment_is_bounded_and_says_it_is_a_sample(large: Path) -> None:
    assert TRIALS > sample.MAX_DRAWN and TRIALS * REPORTS > sample.MAX_REPORTS
    charts = {s.kind: s for s in draw(large) if isinstance(s, Chart)}
    drawn_lines = sample.TOP + sample.OTHERS
    expected = {
        ChartKind.LEARNING_CURVES: f"best {sample.TOP} of 400 trials and the middle 80 % band",
        ChartKind.BEST_SO_FAR: f"dots: best {sample.TOP} of 400 trials and {sample.OTHERS} of the rest",
        ChartKind.PARALLEL_COORDINATES: f"lines: best {sample.TOP} of 400 trials and {sample.OTHERS} of the rest",
    }
    for kind, label in expected.items():
        chart = charts[kind]
        assert chart.sample.startswith(label)
        assert "A sample" in chart.caption and label.split(":")[-1].split(" and")[0].strip() in chart.svg
        assert len(chart.svg) < 250_000  # every report drawn was ~ 1,300 bytes a trial, 40,000 reports of SVG here
        assert max(_polyline_points(chart.svg)) <= 2 * sample.MAX_POINTS + 1  # the staircase: two corners a step
    curves = charts[ChartKind.LEARNING_CURVES].svg
    assert curves.count('class="series') == sample.TOP + 1  # the best lines and the band's median
    assert curves.count('class="band"') == 1
    assert charts[ChartKind.BEST_SO_FAR].svg.count("last loss =") == drawn_lines
    assert charts[ChartKind.PARALLEL_COORDINATES].svg.count("<polyline") == drawn_lines
    # the best trial (smallest lr) is among the lines drawn
    assert "best trial abcde_" in curves and 'class="series best"' in curves


def test_the_band_is_each_iterations_quantiles_of_every_trial() -> None:
    rng = np.random.default_rng(1)
    iteration = np.repeat(np.arange(1, 6), 37)
    value = rng.normal(size=len(iteration))
    steps, low, middle, high = _band(iteration, value)
    assert steps.tolist() == [1, 2, 3, 4, 5]
    for i, step in enumerate(steps):
        expected = np.quantile(value[iteration == step], BAND)
        assert np.allclose([low[i], middle[i], high[i]], expected)


def test_an_experiment_at_the_size_drawn_whole_is_not_sampled(tmp_path: Path) -> None:
    folder = tmp_path / "whole"
    write_large_experiment(folder, sample.MAX_DRAWN, 5)
    charts = [s for s in draw(folder) if isinstance(s, Chart)]
    assert charts and all(not c.sample and "A sample" not in c.caption for c in charts)
    curves = next(c for c in charts if c.kind is ChartKind.LEARNING_CURVES)
    assert curves.svg.count("<polyline") == sample.MAX_DRAWN  # one line per trial, as always
