"""Several metrics in one spec: the shapes the loader accepts, and the ones it refuses in one line."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from raytuner.cli import app
from raytuner.errors import SpecError
from raytuner.spec.loader import load_experiment, load_experiment_text
from raytuner.spec.models import Mode, Objective
from raytuner.spec.schema import spec_json_schema

ROOT = Path(__file__).resolve().parents[2]
TORCH_EXAMPLE = ROOT / "experiments" / "torch-digits-multiobjective.yaml"

BASE = """\
name: mo
trainable: {builtin: analytic, objective: zdt1}
space: {x1: {uniform: [0, 1]}, x2: {uniform: [0, 1]}}
"""


def load(extra: str) -> object:
    return load_experiment_text(BASE + extra, "spec.yaml")


def refused(extra: str) -> SpecError:
    with pytest.raises(SpecError) as caught:
        load(extra)
    message = str(caught.value)
    assert "\n" not in message and message.startswith("spec.yaml:")
    return caught.value


def test_a_single_metric_stays_a_string_everywhere() -> None:
    experiment = load_experiment_text(BASE.replace("zdt1", "sphere") + "metric: loss\nmode: min\n")
    spec = experiment.spec
    assert spec.metric == "loss" and spec.mode is Mode.MIN and not spec.multi_objective
    assert spec.objectives == (Objective("loss", Mode.MIN),)
    resolved = experiment.resolved()
    assert resolved["metric"] == "loss" and resolved["mode"] == "min"
    assert "metric_names" not in resolved and "modes" not in resolved


@pytest.mark.parametrize(
    ("extra", "modes"),
    [
        ("metric: [f1, f2]\nmode: [min, max]\n", [Mode.MIN, Mode.MAX]),
        ("metric: [f1, f2]\nmode: max\n", [Mode.MAX, Mode.MAX]),  # one mode for every metric
    ],
)
def test_a_list_of_metrics_is_several_objectives(extra: str, modes: list[Mode]) -> None:
    experiment = load_experiment_text(BASE + extra)
    spec = experiment.spec
    assert spec.multi_objective
    assert [o.metric for o in spec.objectives] == ["f1", "f2"]
    assert [o.mode for o in spec.objectives] == modes
    assert spec.metric == "f1" and spec.mode is modes[0]  # the primary objective, for Ray Tune
    # the resolved spec round-trips: what is written next to the results loads again the same
    again = load_experiment_text(yaml.safe_dump(experiment.resolved()))
    assert again.spec.objectives == spec.objectives


@pytest.mark.parametrize(
    ("extra", "where", "words"),
    [
        ("metric: [f1, f2]\nmode: [min]\n", ":5: mode:", ["2 metrics", "1 mode", "one mode per metric"]),
        ("metric: f1\nmode: [min, min]\n", ":5: mode:", ["1 metric", "2 modes"]),
        ("metric: [f1]\nmode: min\n", ":4: metric:", ["at least 2"]),
        ("metric: [f1, f1]\nmode: min\n", ":4: metric:", ["f1 more than once"]),
        ("metric: [f1, 3]\nmode: min\n", ":4: metric:", ["a metric name", "or a list of them", "found ['f1', 3]"]),
        ("metric: [f1, '']\nmode: min\n", ":4: metric:", ["at least 1 character"]),
        ("metric: [f1, f2]\nmode: [min, up]\n", ":5: mode:", ["'min' or 'max'", "found ['min', 'up']"]),
    ],
)
def test_bad_shapes_are_one_clear_line(extra: str, where: str, words: list[str]) -> None:
    message = str(refused(extra))
    assert where in message, message
    for word in words:
        assert word in message, message


@pytest.mark.parametrize("algorithm", ["hyperopt", "cmaes", "nevergrad_de", "bohb"])
def test_single_metric_searchers_are_refused(algorithm: str) -> None:
    message = str(refused(f"metric: [f1, f2]\nmode: min\nsearch: {{algorithm: {algorithm}}}\n"))
    assert f"algorithm {algorithm} optimizes one metric" in message
    assert "search.algorithm" in message or ":" in message
    assert "nsga2" in message and "optuna_tpe" in message


@pytest.mark.parametrize(
    "scheduler",
    [
        "{type: asha, max_t: 4}",
        "{type: hyperband}",
        "{type: median}",
        "{type: pbt, hyperparam_mutations: {x1: {uniform: [0, 1]}}}",
        "{type: pb2, hyperparam_bounds: {x1: [0, 1]}}",
    ],
)
def test_schedulers_that_compare_one_metric_are_refused(scheduler: str) -> None:
    kind = scheduler.split(",")[0].split(":")[1].strip(" }")
    message = str(refused(f"metric: [f1, f2]\nmode: min\nscheduler: {scheduler}\n"))
    assert f"scheduler {kind} compares trials on one metric" in message and "fifo" in message


@pytest.mark.parametrize("algorithm", ["random", "grid", "optuna_tpe", "nsga2", "gp"])
def test_multi_objective_searchers_are_accepted(algorithm: str) -> None:
    space = "space: {x1: {uniform: [0, 1]}, x2: {uniform: [0, 1]}, x3: {grid: [0.0, 0.5]}}\n" if algorithm == "grid" else ""
    text = BASE + f"metric: [f1, f2]\nmode: min\nsearch: {{algorithm: {algorithm}}}\n"
    if space:
        text = text.replace("space: {x1: {uniform: [0, 1]}, x2: {uniform: [0, 1]}}\n", space)
    assert load_experiment_text(text).spec.search.algorithm.value == algorithm


def test_json_schema_takes_a_list_of_two_or_more_distinct_metrics() -> None:
    schema = spec_json_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    base = yaml.safe_load(BASE)
    assert validator.is_valid({**base, "metric": ["f1", "f2"], "mode": ["min", "max"]})
    assert validator.is_valid({**base, "metric": "f1", "mode": "min"})
    assert not validator.is_valid({**base, "metric": ["f1"], "mode": "min"})
    assert not validator.is_valid({**base, "metric": ["f1", "f1"], "mode": "min"})
    assert not validator.is_valid({**base, "metric": ["f1", "f2"], "mode": ["min", "sideways"]})


def test_torch_example_reports_both_of_its_metrics() -> None:
    spec = load_experiment(TORCH_EXAMPLE).spec
    assert [o.metric for o in spec.objectives] == ["val_loss", "num_params"]
    data = yaml.safe_load(TORCH_EXAMPLE.read_text())
    data["metric"] = ["val_loss", "latency"]
    with pytest.raises(SpecError, match=r"found metric 'latency'"):
        load_experiment_text(yaml.safe_dump(data), str(TORCH_EXAMPLE))


def test_validate_shows_every_objective(tmp_path: Path) -> None:
    path = tmp_path / "mo.yaml"
    path.write_text(BASE + "metric: [f1, f2]\nmode: [min, max]\nsearch: {algorithm: nsga2}\n")
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "f1 (min), f2 (max)" in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(BASE + "metric: [f1, f2]\nmode: min\nsearch: {algorithm: hyperopt}\n")
    result = CliRunner().invoke(app, ["validate", str(bad)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output and "optimizes one metric" in result.output
