"""A real PBT experiment's four tables, read with pyarrow.dataset, pandas, Polars and DuckDB."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from raytuner.execution.events import Recorder
from raytuner.execution.runner import RunOptions, RunState, run_experiment
from raytuner.results import layout
from raytuner.spec.loader import load_experiment_text

pytestmark = [pytest.mark.ray, pytest.mark.slow]

PBT = """
name: readers
trainable: {builtin: analytic, objective: sphere, iterations: 8}
metric: loss
mode: min
space:
  x: {uniform: [-2, 2]}
  depth: {randint: [1, 4]}
  act: {choice: [relu, tanh]}
  flag: {choice: [true, false]}
search: {num_samples: 4, seed: 5}
scheduler:
  type: pbt
  perturbation_interval: 2
  hyperparam_mutations:
    x: {uniform: [-2, 2]}
checkpoint: {every: 2}
"""
TABLES = (layout.EXPERIMENT, layout.TRIALS, layout.RESULTS, layout.PBT_DECISIONS)


@pytest.fixture(scope="module")
def folder(ray_session: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    storage = tmp_path_factory.mktemp("runs")
    summary = run_experiment(load_experiment_text(PBT + f"storage: {storage}\n"), RunOptions(), Recorder())
    assert summary.state is RunState.COMPLETED
    return summary.folder


def test_every_library_reads_the_same_rows(folder: Path) -> None:
    counts: dict[str, set[int]] = {}
    for name in TABLES:
        path = str(folder / name)
        counts[name] = {
            ds.dataset(path, format="parquet").count_rows(),
            len(pd.read_parquet(path)),
            pl.scan_parquet(path).select(pl.len()).collect().item(),
            duckdb.sql(f"select count(*) from read_parquet('{path}')").fetchall()[0][0],
        }
    assert counts[layout.EXPERIMENT] == {1} and counts[layout.TRIALS] == {4}
    assert counts[layout.RESULTS] == {4 * 8}  # one row per trial and iteration
    assert len(counts[layout.PBT_DECISIONS]) == 1 and counts[layout.PBT_DECISIONS] != {0}


def test_config_and_time_columns_are_typed_in_every_library(folder: Path) -> None:
    trials = str(folder / layout.TRIALS)
    arrow = ds.dataset(trials, format="parquet").schema
    assert [arrow.field(f"config/{k}").type for k in ("x", "depth", "act", "flag")] == [
        pa.float64(),
        pa.int64(),
        pa.string(),
        pa.bool_(),
    ]
    assert arrow.field("started_at").type == pa.timestamp("ms", tz="UTC")

    frame = pd.read_parquet(trials)
    assert frame["config/x"].dtype == "float64" and frame["config/depth"].dtype == "int64"
    assert frame["config/flag"].dtype == "bool" and set(frame["config/act"]) <= {"relu", "tanh"}
    assert str(frame["started_at"].dt.tz) == "UTC"

    polars = pl.read_parquet(trials)
    assert polars.schema["config/x"] == pl.Float64 and polars.schema["config/depth"] == pl.Int64
    assert polars.schema["config/act"] == pl.String and polars.schema["config/flag"] == pl.Boolean
    assert polars.schema["started_at"] == pl.Datetime("ms", "UTC")

    described = {row[0]: row[1] for row in duckdb.sql(f"describe select * from read_parquet('{trials}')").fetchall()}
    assert (described["config/x"], described["config/depth"]) == ("DOUBLE", "BIGINT")
    assert (described["config/act"], described["config/flag"]) == ("VARCHAR", "BOOLEAN")
    assert described["started_at"] == "TIMESTAMP WITH TIME ZONE"

    experiment = pl.read_parquet(folder / layout.EXPERIMENT)
    assert experiment.schema["gpu_names"] == pl.List(pl.String) and experiment.schema["git_dirty"] == pl.Boolean
    assert experiment.row(0, named=True)["status"] == "completed"


def test_the_libraries_agree_on_a_query_across_tables(folder: Path) -> None:
    """The best trial by its reports, and the trial it copied last, asked four ways."""
    trials, results = folder / layout.TRIALS, folder / layout.RESULTS

    table = ds.dataset(str(results), format="parquet").to_table(columns=["trial_id", "loss"])
    lowest = table.sort_by("loss").slice(0, 1).to_pylist()[0]
    frame = pd.read_parquet(results)
    by_pandas = frame.loc[frame["loss"].idxmin(), ["trial_id", "loss"]].to_dict()
    by_polars = pl.read_parquet(results).sort("loss").select("trial_id", "loss").row(0, named=True)
    by_sql = duckdb.sql(
        f"select r.trial_id, r.loss from read_parquet('{results}') r "
        f"join read_parquet('{trials}') t using (trial_id) order by r.loss limit 1"
    ).fetchall()[0]
    assert lowest == by_pandas == by_polars == {"trial_id": by_sql[0], "loss": by_sql[1]}

    best = pl.read_parquet(trials).sort("metric_best").row(0, named=True)
    assert best["trial_id"] == lowest["trial_id"] and best["metric_best"] == lowest["loss"]
    decisions = pd.read_parquet(folder / layout.PBT_DECISIONS)
    assert set(decisions["trial_id"]) | set(decisions["source_trial_id"]) <= set(pd.read_parquet(trials)["trial_id"])
