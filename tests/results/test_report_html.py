"""``raytuner report``: the HTML page and its charts, from Parquet fixtures and from a real run."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from raytuner.cli import app
from raytuner.results.report import ChartKind, write_report
from raytuner.results.report.data import load
from raytuner.results.report.early_stopping import asha_rungs
from raytuner.results.report.importance import importances
from raytuner.results.schema import RESULT_COLUMNS, TRIAL_COLUMNS, fixed_schema

ASHA = {
    "type": "asha",
    "time_attr": "training_iteration",
    "max_t": 18.0,
    "grace_period": 2.0,
    "reduction_factor": 3.0,
    "brackets": 1,
}
T0 = 1_790_000_000.0


def _ts(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def write_experiment(
    folder: Path,
    trials: list[dict[str, Any]],
    curves: dict[str, list[Any]],
    *,
    metric: str = "loss",
    mode: str = "min",
    scheduler: dict[str, Any] | None = None,
    config_types: dict[str, pa.DataType] | None = None,
    pbt: list[dict[str, Any]] | None = None,
) -> Path:
    """An experiment folder as docs/results.md describes it, written directly with pyarrow.

    ``trials``: dicts with trial_id, status, config (flat), optional error; ``curves``: the
    metric values each trial reported, one per iteration (a string metric column when any is a str).
    """
    folder.mkdir(parents=True)
    meta = {b"raytuner.schema_version": b"1", b"raytuner.metric": metric.encode(), b"raytuner.mode": mode.encode()}
    sign = 1 if mode == "max" else -1
    config_types = config_types or {}
    rows = []
    for i, trial in enumerate(trials):
        values = [v for v in curves.get(trial["trial_id"], []) if isinstance(v, (int, float))]
        best = max(values, key=lambda v: sign * v) if values else None
        rows.append(
            {
                "trial_id": trial["trial_id"],
                "status": trial["status"],
                "iterations": len(curves.get(trial["trial_id"], [])),
                "time_total_s": 1.0,
                "started_at": _ts(T0 + i),
                "ended_at": _ts(T0 + i + 1),
                "metric": metric,
                "metric_last": values[-1] if values else None,
                "metric_best": best,
                "metric_best_iteration": (values.index(best) + 1) if best is not None else None,
                "error": trial.get("error"),
                "num_failures": 1 if trial.get("error") else 0,
                "resources_cpu": 1.0,
                "resources_gpu": 0.0,
                "node_ip": "127.0.0.1",
                "trial_dir": None,
                "config_json": json.dumps(trial["config"], sort_keys=True),
                **{f"config/{k}": v for k, v in trial["config"].items()},
            }
        )
    schema = pa.schema(
        list(fixed_schema(TRIAL_COLUMNS)) + [pa.field(f"config/{k}", t) for k, t in config_types.items()], metadata=meta
    )
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), folder / "trials.parquet")
    string = any(isinstance(v, str) for values in curves.values() for v in values)
    results = []
    for i, trial in enumerate(trials):
        for it, value in enumerate(curves.get(trial["trial_id"], []), start=1):
            cell = (value if isinstance(value, str) else json.dumps(value)) if string else value
            results.append(
                {
                    "trial_id": trial["trial_id"],
                    "training_iteration": it,
                    "time_total_s": 0.1 * it,
                    "timestamp": _ts(T0 + i + 0.1 * it),
                    metric: cell,
                }
            )
    rschema = pa.schema(
        list(fixed_schema(RESULT_COLUMNS)) + [pa.field(metric, pa.string() if string else pa.float64())], metadata=meta
    )
    pq.write_table(pa.Table.from_pylist(results, schema=rschema), folder / "results.parquet")
    spec = {
        "name": folder.name,
        "metric": metric,
        "mode": mode,
        "search": {"algorithm": "random"},
        "scheduler": scheduler or {"type": "fifo"},
    }
    (folder / "spec.yaml").write_text(yaml.safe_dump(spec))
    (folder / "status.json").write_text(json.dumps({"name": folder.name, "state": "completed", "metric": metric, "mode": mode}))
    if pbt is not None:
        pq.write_table(
            pa.Table.from_pylist(
                pbt,
                schema=pa.schema(
                    [
                        ("time", pa.timestamp("ms", tz="UTC")),
                        ("step", pa.int64()),
                        ("trial_id", pa.string()),
                        ("source_trial_id", pa.string()),
                        ("old_config_json", pa.string()),
                        ("new_config_json", pa.string()),
                    ]
                ),
            ),
            folder / "pbt_decisions.parquet",
        )
    return folder


def asha_experiment(folder: Path) -> Path:
    """24 trials with ASHA rungs 2, 6 (max_t 18), a log-scale lr, a choice, a branch-only parameter and one error."""
    trials, curves = [], {}
    for i in range(24):
        lr = 10 ** (-4 + 3 * i / 23)
        optimizer = ["sgd", "adam", "rmsprop"][i % 3]
        config = {
            "lr": lr,
            "optimizer": optimizer,
            "momentum": 0.9 if optimizer == "sgd" else None,
            "layers": 1 + i % 4,
        }
        final = abs(math.log10(lr) + 2.5) + 0.1 * (i % 4)
        length = 18 if i % 4 == 0 else (6 if i % 4 == 1 else 2)
        status = "completed" if length == 18 else "stopped"
        tid = f"t{i:03d}"
        error = None
        if i == 23:
            status, length, error = "error", 3, "RuntimeError: diverged at iteration 3"
        trials.append({"trial_id": tid, "status": status, "config": config, "error": error})
        curves[tid] = [final + 0.2 / it for it in range(1, length + 1)]
    types = {"lr": pa.float64(), "optimizer": pa.string(), "momentum": pa.float64(), "layers": pa.int64()}
    return write_experiment(folder, trials, curves, scheduler=ASHA, config_types=types)


def pbt_experiment(folder: Path) -> Path:
    trials = [{"trial_id": f"p{i}", "status": "completed", "config": {"lr": 0.01 * (i + 1)}} for i in range(4)]
    curves = {f"p{i}": [1.0 / (it * (i + 1)) for it in range(1, 13)] for i in range(4)}
    decisions = [
        {
            "time": _ts(T0 + 4),
            "step": 4,
            "trial_id": "p0",
            "source_trial_id": "p3",
            "old_config_json": '{"lr": 0.01}',
            "new_config_json": '{"lr": 0.048}',
        },
        {
            "time": _ts(T0 + 8),
            "step": 8,
            "trial_id": "p1",
            "source_trial_id": "p3",
            "old_config_json": '{"lr": 0.02}',
            "new_config_json": '{"lr": 0.032}',
        },
        {
            "time": _ts(T0 + 8),
            "step": 8,
            "trial_id": "p2",
            "source_trial_id": "p0",
            "old_config_json": '{"lr": 0.03}',
            "new_config_json": '{"lr": 0.0384}',
        },
    ]
    return write_experiment(folder, trials, curves, mode="min", config_types={"lr": pa.float64()}, pbt=decisions)


def svgs(html: str) -> dict[str, str]:
    return dict(re.findall(r'<svg [^>]*data-chart="([^"]+)".*?>(.*?)</svg>', html, re.S))


def test_asha_experiment_draws_every_chart_but_pbt(tmp_path: Path) -> None:
    folder = asha_experiment(tmp_path / "asha")
    result = write_report(folder)
    html = result.html.read_text()
    assert result.html == folder / "report.html"
    drawn = svgs(html)
    # a single metric has no Pareto front: that section is left out, not listed as omitted
    assert set(drawn) == {k.value for k in ChartKind} - {
        ChartKind.PBT_LINEAGE.value,
        ChartKind.PARETO_FRONT.value,
        ChartKind.FINAL_MODEL.value,
    }
    # without PBT, its family tree is left out too, not listed as "not drawn"
    assert result.omitted == [] and "PBT family tree" not in html
    # one learning curve per trial (the best trial drawn last, in black)
    assert drawn["learning-curves"].count('<polyline class="series') == 24
    assert drawn["learning-curves"].count('class="series best"') == 1
    # ASHA: rungs 2 and 6 from spec.yaml; 11 stopped at rung 2 (of 24 reaching it, one failed), 6 at rung 6
    stops = drawn["early-stopping"]
    assert "rung 2" in stops and "rung 6" in stops and "rung 18" not in stops
    assert ">11 / 24<" in stops and ">6 / 12<" in stops
    # parallel coordinates: the lr axis is log, the categorical axis lists its values, momentum has n/a
    parallel = drawn["parallel-coordinates"]
    assert "lr (log)" in parallel and ">rmsprop<" in parallel and ">n/a<" in parallel
    assert parallel.count("<polyline") == 24
    # the failed trial is listed with its error; nothing is loaded from anywhere
    assert "RuntimeError: diverged at iteration 3" in html
    assert "<script" not in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)


def test_parallel_axes_take_their_scale_from_the_space(tmp_path: Path) -> None:
    """A uniform parameter spanning 1000x stays linear; a log one spanning 4x is log (the quick start's x2
    is uniform [0, 15], drawn on a log axis before)."""
    folder = asha_experiment(tmp_path / "asha")
    spec = yaml.safe_load((folder / "spec.yaml").read_text())
    spec["space"] = {
        "lr": {"uniform": [1.0e-4, 0.1]},
        "optimizer": {"choice": [{"name": "sgd", "momentum": {"uniform": [0.8, 0.99]}}, {"name": "adam"}]},
        "layers": {"lograndint": [1, 5]},
    }
    (folder / "spec.yaml").write_text(yaml.safe_dump(spec))
    parallel = svgs(write_report(folder).html.read_text())["parallel-coordinates"]
    assert ">lr<" in parallel and "lr (log)" not in parallel
    assert "layers (log)" in parallel


def test_importance_names_its_method_and_finds_the_parameter_that_matters(tmp_path: Path) -> None:
    data = load(asha_experiment(tmp_path / "asha"))
    rows, method = importances(data)
    by_name = {r.param: r for r in rows}
    assert "random-forest" in method  # scikit-learn is installed with the torch extra
    assert max(rows, key=lambda r: r.forest or 0.0).param == "lr"
    assert by_name["optimizer"].numeric is False and by_name["optimizer"].rank_correlation is not None
    assert math.isclose(sum(r.forest or 0.0 for r in rows), 1.0)
    html = write_report(data.folder).html.read_text()
    assert "random-forest permutation importance" in html and "rank correlation" in html


def test_without_scikit_learn_importance_is_rank_correlation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.ensemble", None)
    trials = [{"trial_id": f"t{i}", "status": "completed", "config": {"x": float(i), "y": float((i * 7) % 5)}} for i in range(10)]
    curves = {f"t{i}": [float(i) ** 2] for i in range(10)}
    folder = write_experiment(tmp_path / "mono", trials, curves, config_types={"x": pa.float64(), "y": pa.float64()})
    rows, method = importances(load(folder))
    assert "Spearman" in method
    x = next(r for r in rows if r.param == "x")
    assert x.forest is None and x.rank_correlation == pytest.approx(1.0)
    assert "Spearman" in write_report(folder).html.read_text()


def test_a_pbt_run_without_its_decisions_says_why_there_is_no_tree(tmp_path: Path) -> None:
    folder = asha_experiment(tmp_path / "pbt")
    spec = yaml.safe_load((folder / "spec.yaml").read_text())
    (folder / "spec.yaml").write_text(yaml.safe_dump({**spec, "scheduler": {"type": "pbt"}}))
    result = write_report(folder)
    assert [(s.kind, s.title) for s in result.omitted] == [(ChartKind.PBT_LINEAGE, "PBT family tree")]
    assert "No pbt_decisions.parquet" in result.omitted[0].reason


def test_pbt_family_tree_has_one_arrow_per_decision(tmp_path: Path) -> None:
    result = write_report(pbt_experiment(tmp_path / "pbt"))
    tree = svgs(result.html.read_text())["pbt-lineage"]
    assert tree.count('<path class="exploit"') == 3
    assert "p2 cloned p0; lr: 0.03 -&gt; 0.0384" in tree
    assert tree.count('class="series lane"') == 4


def test_single_trial_report_leaves_out_what_needs_several(tmp_path: Path) -> None:
    folder = write_experiment(
        tmp_path / "one",
        [{"trial_id": "a", "status": "completed", "config": {"x": 0.5}}],
        {"a": [3.0, 2.0, 1.5]},
        config_types={"x": pa.float64()},
    )
    result = write_report(folder)
    omitted = {s.kind: s.reason for s in result.omitted}
    assert {ChartKind.BEST_SO_FAR, ChartKind.LEARNING_CURVES} <= {c.kind for c in result.drawn}
    assert "same configuration" in omitted[ChartKind.PARALLEL_COORDINATES]
    assert "at least 3 trials" in omitted[ChartKind.IMPORTANCE]
    assert "FIFO" in omitted[ChartKind.EARLY_STOPPING]


def test_string_metric_values_are_left_out_with_a_note(tmp_path: Path) -> None:
    trials = [{"trial_id": f"s{i}", "status": "completed", "config": {"x": float(i)}} for i in range(3)]
    curves = {"s0": [3.0, 2.0, "diverged"], "s1": [4.0, 1.0], "s2": ["n/a", 5.0]}
    folder = write_experiment(tmp_path / "str", trials, curves, mode="min", config_types={"x": pa.float64()})
    assert pa.types.is_string(pq.read_schema(folder / "results.parquet").field("loss").type)
    result = write_report(folder)
    html = result.html.read_text()
    assert "2 of 7 reported values of loss are not numbers" in html
    curves_svg = svgs(html)["learning-curves"]
    assert curves_svg.count("<polyline") == 2 and curves_svg.count('<circle class="series') == 1  # s2: one number


def test_asha_rungs_are_the_ones_ray_uses() -> None:
    from ray.tune.schedulers import AsyncHyperBandScheduler

    for max_t, grace, factor in [(18, 2, 3), (20, 2, 3), (100, 1, 4), (81, 1, 3), (10, 10, 2)]:
        ray_asha = AsyncHyperBandScheduler(max_t=max_t, grace_period=grace, reduction_factor=factor)
        milestones = sorted(rung[0] for rung in ray_asha._brackets[0]._rungs)  # noqa: SLF001 - checking Ray's own
        ours = asha_rungs({"type": "asha", "max_t": max_t, "grace_period": grace, "reduction_factor": factor})
        assert ours == [m for m in milestones if m < max_t], (max_t, grace, factor)


runner = CliRunner()


def test_cli_writes_the_report_where_asked(tmp_path: Path) -> None:
    folder = asha_experiment(tmp_path / "runs" / "asha")
    out = tmp_path / "out" / "r.html"
    result = runner.invoke(app, ["report", "asha", "--storage", str(tmp_path / "runs"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert f"5 charts: {out}" in result.stdout
    assert "not drawn" not in result.stderr  # every chart that applies to an ASHA run is drawn
    assert out.is_file() and not (folder / "report.html").exists()


def _read_only_target() -> Path:
    """A path even root cannot create: sysfs refuses new files (EACCES, or EROFS where mounted read-only)."""
    target = Path("/sys/raytuner-report.html")
    try:
        target.write_text("")
    except OSError:
        return target
    target.unlink()
    pytest.skip("/sys is writable here")


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda tmp: tmp / "existing", "it is a folder; name a file in it"),
        (lambda tmp: tmp / "a-file" / "r.html", "a-file is a file, not a folder"),
        (lambda tmp: _read_only_target(), "/sys/raytuner-report.html: "),
    ],
    ids=["onto-a-folder", "under-a-file", "unwritable"],
)
def test_cli_refuses_an_output_it_cannot_write_in_one_line(tmp_path: Path, make: Any, fragment: str) -> None:
    asha_experiment(tmp_path / "runs" / "asha")
    (tmp_path / "existing").mkdir()
    (tmp_path / "a-file").write_text("x")
    target = make(tmp_path)
    result = runner.invoke(app, ["report", "asha", "--storage", str(tmp_path / "runs"), "-o", str(target)])
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "cannot write the report to" in errors[0] and fragment in errors[0], result.stderr
    assert "Traceback" not in result.output
    assert not target.with_name(target.name + ".tmp").exists()  # no stray temporary file left beside it
    assert not list((tmp_path / "existing").iterdir())


def test_cli_refuses_experiments_with_nothing_to_report(tmp_path: Path) -> None:
    empty = write_experiment(
        tmp_path / "runs" / "failed",
        [{"trial_id": "e", "status": "error", "config": {}, "error": "ImportError: no module x"}],
        {},
    )
    result = runner.invoke(app, ["report", str(empty)])
    assert result.exit_code == 1
    assert "no reported results, nothing to report; first error: ImportError: no module x" in result.stderr
    assert "Traceback" not in result.output
    (tmp_path / "runs" / "fresh").mkdir()
    (tmp_path / "runs" / "fresh" / "spec.yaml").write_text("name: fresh\n")
    result = runner.invoke(app, ["report", "fresh", "--storage", str(tmp_path / "runs")])
    assert result.exit_code == 1 and "no trials.parquet" in result.stderr
    result = runner.invoke(app, ["report", "nope", "--storage", str(tmp_path / "runs")])
    assert result.exit_code == 2 and "no experiment 'nope'" in result.stderr


def test_png_without_chromium_is_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAYTUNER_CHROMIUM", str(tmp_path / "no-such-browser"))
    folder = pbt_experiment(tmp_path / "pbt")
    result = runner.invoke(app, ["report", str(folder), "--png"])
    assert result.exit_code == 1
    assert "apt-get install chromium" in result.stderr and "Traceback" not in result.output


@pytest.mark.ray
@pytest.mark.slow
def test_report_of_a_real_asha_run(ray_session: None, tmp_path: Path) -> None:
    from raytuner.execution.events import Recorder
    from raytuner.execution.runner import RunOptions, run_experiment
    from raytuner.spec.loader import load_experiment_text

    text = f"""
name: real-asha
trainable: {{builtin: analytic, objective: branin, iterations: 9}}
metric: loss
mode: min
space: {{x1: {{uniform: [-5, 10]}}, x2: {{uniform: [0, 15]}}}}
search: {{algorithm: random, num_samples: 8, seed: 3}}
scheduler: {{type: asha, max_t: 9, grace_period: 1, reduction_factor: 3}}
storage: {tmp_path}
"""
    summary = run_experiment(load_experiment_text(text), RunOptions(), Recorder())
    stopped = sum(1 for r in summary.trials.values() if r.status.value == "stopped")
    html = write_report(summary.folder).html.read_text()
    drawn = svgs(html)
    assert drawn["learning-curves"].count("<polyline") + drawn["learning-curves"].count('<circle class="series') == 8
    if stopped:
        assert "rung 1" in drawn["early-stopping"] and "rung 3" in drawn["early-stopping"]
        assert f"{stopped} of 8 trials were stopped early" in html
