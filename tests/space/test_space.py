"""The space language: parsing, sampling, grid expansion, HyperOpt translation, points, columns."""

from __future__ import annotations

import math
from typing import Any

import hyperopt
import numpy as np
import pytest
from hyperopt.pyll.stochastic import sample as hp_sample

from raytuner.errors import Location, SpecError
from raytuner.results.schema import ColumnType, config_columns
from raytuner.space.hyperopt import label, match_option, normalize, notes, to_hyperopt, to_vals
from raytuner.space.model import (
    Choice,
    Constant,
    Float,
    Integer,
    Nested,
    Normal,
    Op,
    Path,
    Space,
    parse_space,
    render_path,
    walk,
)
from raytuner.space.points import PointError, complete_point
from raytuner.space.sample import expand, grid_size, sample


def locate(path: Path) -> Location:
    return Location("test", None, render_path(path))


def space(raw: Any) -> Space:
    return parse_space(raw, locate)


def node(raw: Any) -> Any:
    return dict(space({"p": raw}).root.items)["p"]


def draws(raw: Any, n: int = 2000, seed: int = 0) -> list[Any]:
    parsed = node(raw)
    rng = np.random.default_rng(seed)
    return [sample(parsed, rng) for _ in range(n)]


# ---------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"uniform": [0, 1]}, Float(Op.UNIFORM, 0.0, 1.0)),
        ({"loguniform": [1e-4, 1e-1]}, Float(Op.LOGUNIFORM, 1e-4, 1e-1, log=True)),
        ({"quniform": [0, 10, 0.5]}, Float(Op.QUNIFORM, 0.0, 10.0, q=0.5)),
        ({"qloguniform": [1, 100, 5]}, Float(Op.QLOGUNIFORM, 1.0, 100.0, log=True, q=5.0)),
        ({"randint": [1, 4]}, Integer(Op.RANDINT, 1, 4)),
        ({"qrandint": [0, 100, 10]}, Integer(Op.QRANDINT, 0, 100, q=10)),
        ({"lograndint": [1, 1000]}, Integer(Op.LOGRANDINT, 1, 1000, log=True)),
        ({"normal": [0, 2]}, Normal(Op.NORMAL, 0.0, 2.0)),
        ({"qnormal": [0, 2, 0.5]}, Normal(Op.QNORMAL, 0.0, 2.0, q=0.5)),
        ({"choice": [1, "a"]}, Choice((Constant(1), Constant("a")))),
        ({"grid": [1, 2]}, Choice((Constant(1), Constant(2)), grid=True)),
        ({"constant": {"choice": [1]}}, Constant({"choice": [1]})),
        (0.1, Constant(0.1)),
        ([1, 2], Constant([1, 2])),
        (None, Constant(None)),
        ({"a": 1, "b": {"uniform": [0, 1]}}, Nested((("a", Constant(1)), ("b", Float(Op.UNIFORM, 0.0, 1.0))))),
    ],
)
def test_parse_every_operator(raw: Any, expected: Any) -> None:
    assert node(raw) == expected


def test_integer_bounds_accept_integral_floats_and_are_ints() -> None:
    parsed = node({"randint": [1.0, 4.0]})
    assert parsed == Integer(Op.RANDINT, 1, 4)
    assert type(parsed.low) is int and type(parsed.high) is int


def test_every_operator_is_parsed_by_some_case() -> None:
    ops = {
        Op.UNIFORM, Op.LOGUNIFORM, Op.QUNIFORM, Op.QLOGUNIFORM, Op.RANDINT, Op.QRANDINT,
        Op.LOGRANDINT, Op.NORMAL, Op.QNORMAL, Op.CHOICE, Op.GRID, Op.CONSTANT,
    }  # fmt: skip
    assert ops == set(Op)


def test_conditional_choice() -> None:
    parsed = node({"choice": [{"name": "sgd", "m": {"uniform": [0, 1]}}, {"name": "adam"}]})
    assert isinstance(parsed, Choice) and parsed.conditional
    assert not node({"choice": [1, 2]}).conditional
    paths = [p for p, _ in walk(space({"p": {"choice": [{"name": "sgd", "m": {"uniform": [0, 1]}}]}}).root)]
    assert ("p", 0, "m") in paths


def test_empty_space() -> None:
    assert space(None).is_empty()
    assert space({}).is_empty()
    assert not space({"a": 1}).is_empty()


@pytest.mark.parametrize(
    ("raw", "path", "fragment"),
    [
        (3, "space", "expected a mapping of parameter names"),
        ({"": 1}, "space", "non-empty strings"),
        ({1: 1}, "space", "non-empty strings"),
        ({"a.b": 1}, "space.a.b", "cannot contain '.'"),
        ({"a": {"uniform": [0, 1], "b": 1}}, "space.a", "takes no other keys"),
        ({"a": {"choice": [{"uniform": [2, 1]}]}}, "space.a.choice[0].uniform", "low must be below high"),
        ({"a": {"qloguniform": [0, 1, 0.1]}}, "space.a.qloguniform", "log scale needs low > 0"),
        ({"a": {"qnormal": [0, 1, 0]}}, "space.a.qnormal", "q must be > 0"),
        ({"a": {"lograndint": [1, 2**60]}}, "space.a.lograndint", "between -2**53 and 2**53"),
    ],
)
def test_parse_errors(raw: Any, path: str, fragment: str) -> None:
    with pytest.raises(SpecError) as info:
        space(raw)
    assert info.value.location.path == path
    assert fragment in str(info.value)


# ---------------------------------------------------------------------------- sampling


def test_uniform_within_bounds() -> None:
    values = draws({"uniform": [-2, 3]})
    assert all(isinstance(v, float) and -2 <= v <= 3 for v in values)
    assert min(values) < -1.5 and max(values) > 2.5


def test_loguniform_within_bounds_and_log_spread() -> None:
    values = draws({"loguniform": [1e-4, 1e-1]})
    assert all(1e-4 <= v <= 1e-1 for v in values)
    below = sum(v < 1e-3 for v in values) / len(values)
    assert 0.25 < below < 0.42  # a third of the log range, far more than uniform's 1%


def test_quniform_multiples_of_q() -> None:
    values = draws({"quniform": [0, 10, 2.5]})
    assert set(values) == {0.0, 2.5, 5.0, 7.5, 10.0}
    assert all(isinstance(v, float) for v in values)


def test_quniform_clamped_to_bounds() -> None:
    values = draws({"quniform": [0.3, 1.0, 0.5]})
    assert set(values) <= {0.3, 0.5, 1.0}
    assert all(0.3 <= v <= 1.0 for v in values)


def test_qloguniform_multiples_within_bounds() -> None:
    values = draws({"qloguniform": [1, 100, 5]})
    assert all(1 <= v <= 100 for v in values)
    assert all(math.isclose(v / 5, round(v / 5)) or v in (1.0, 100.0) for v in values)


def test_randint_high_exclusive() -> None:
    values = draws({"randint": [1, 4]})
    assert set(values) == {1, 2, 3}
    assert all(type(v) is int for v in values)


def test_qrandint_high_inclusive_multiple_of_q() -> None:
    values = draws({"qrandint": [0, 20, 5]})
    assert set(values) == {0, 5, 10, 15, 20}
    assert all(type(v) is int for v in values)


def test_lograndint_within_low_high_exclusive() -> None:
    values = draws({"lograndint": [1, 10]})
    assert all(type(v) is int for v in values)
    assert set(values) <= set(range(1, 10))
    assert 10 not in values and 1 in values and 9 in values
    assert sum(v <= 3 for v in values) > sum(v >= 7 for v in values)  # log scale favours small values


def test_normal_and_qnormal() -> None:
    values = draws({"normal": [10, 2]}, n=4000)
    assert abs(float(np.mean(values)) - 10) < 0.2
    assert abs(float(np.std(values)) - 2) < 0.2
    qvalues = draws({"qnormal": [0, 3, 0.5]})
    assert all(math.isclose(v / 0.5, round(v / 0.5)) for v in qvalues)


def test_choice_uniform_over_options_and_constants_copied() -> None:
    values = draws({"choice": ["a", "b", [1, 2]]}, n=3000)
    for option in ("a", "b"):
        assert 900 < values.count(option) < 1100
    parsed = node({"choice": [[1, 2]]})
    first = sample(parsed, np.random.default_rng(0))
    first.append(3)
    assert sample(parsed, np.random.default_rng(0)) == [1, 2]  # constants are not shared


def test_conditional_sample_only_draws_the_chosen_branch() -> None:
    raw = {"choice": [{"name": "sgd", "m": {"uniform": [0, 1]}}, {"name": "adam", "b": {"randint": [0, 2]}}]}
    for config in draws(raw, n=200):
        assert set(config) in ({"name", "m"}, {"name", "b"})
        assert ("m" in config) == (config["name"] == "sgd")


def test_tiny_q_does_not_overflow() -> None:
    values = draws({"qnormal": [0, 1e10, 1e-300]}, n=50)
    assert all(math.isfinite(v) for v in values)


@pytest.mark.parametrize("seed", [0, 1, 42])
def test_seeded_reproducibility(seed: int) -> None:
    raw = {
        "lr": {"loguniform": [1e-4, 1e-1]},
        "n": {"qrandint": [0, 64, 8]},
        "opt": {"choice": [{"name": "sgd", "m": {"uniform": [0, 1]}}, {"name": "adam"}]},
    }
    parsed = space(raw)
    a = [sample(parsed.root, np.random.default_rng(seed)) for _ in range(5)]
    b = [sample(parsed.root, np.random.default_rng(seed)) for _ in range(5)]
    c = [sample(parsed.root, np.random.default_rng(seed + 1000)) for _ in range(5)]
    assert a == b
    assert a != c


# ---------------------------------------------------------------------------- grid


GRIDDED = {
    "seed": {"grid": [1, 2, 3]},
    "bs": {"choice": [32, 64]},
    "opt": {"choice": [{"name": "sgd", "m": {"grid": [0.8, 0.9]}}, {"name": "adam"}]},
    "lr": {"uniform": [0, 1]},
}


def test_grid_size_random_enumerates_only_grid() -> None:
    parsed = space(GRIDDED)
    # random: seed (3) x opt's inner grid is inside a choice that is not enumerated -> 3
    assert grid_size(parsed, enumerate_choices=False) == 3
    # grid: seed 3 x bs 2 x (sgd: 2 momenta + adam: 1) = 18
    assert grid_size(parsed, enumerate_choices=True) == 18
    assert grid_size(space({"lr": {"uniform": [0, 1]}}), True) == 1
    assert grid_size(space({}), True) == 1


def test_expand_grid_enumerates_every_branch() -> None:
    parsed = space(GRIDDED)
    variants = expand(parsed.root, enumerate_choices=True)
    assert len(variants) == grid_size(parsed, True)
    rng = np.random.default_rng(0)
    configs = [v(rng) for v in variants]
    combos = {(c["seed"], c["bs"], c["opt"]["name"], c["opt"].get("m")) for c in configs}
    expected = {(s, b, *o) for s in (1, 2, 3) for b in (32, 64) for o in (("sgd", 0.8), ("sgd", 0.9), ("adam", None))}
    assert combos == expected
    assert all(0 <= c["lr"] <= 1 for c in configs)
    assert len({c["lr"] for c in configs}) == len(configs)  # lr is drawn, not enumerated


def test_expand_random_enumerates_only_grid_nodes() -> None:
    parsed = space(GRIDDED)
    variants = expand(parsed.root, enumerate_choices=False)
    assert len(variants) == 3
    rng = np.random.default_rng(0)
    assert [v(rng)["seed"] for v in variants] == [1, 2, 3]
    seen = {(c["bs"], c["opt"]["name"]) for c in (variants[0](rng) for _ in range(200))}
    assert seen == {(32, "sgd"), (32, "adam"), (64, "sgd"), (64, "adam")}


def test_nested_grid_inside_conditional_branch_grid_search() -> None:
    branches = [{"name": "a", "k": {"grid": [1, 2, 3]}}, {"name": "b", "k": {"choice": [4, 5]}}]
    parsed = space({"opt": {"choice": branches}})
    assert grid_size(parsed, True) == 5
    configs = [v(np.random.default_rng(0)) for v in expand(parsed.root, True)]
    assert [c["opt"]["k"] for c in configs] == [1, 2, 3, 4, 5]


# ---------------------------------------------------------------------------- HyperOpt


NESTED = {
    # issue 13614 / 19507: choice of dicts containing choices of dicts, nested dicts in branches
    "opt": {
        "choice": [
            {
                "name": "sgd",
                "lr": {"loguniform": [1e-4, 1e-1]},
                "sched": {"choice": [{"kind": "step", "gamma": {"uniform": [0.1, 0.9]}}, {"kind": "cos"}]},
                "extra": {"depth": {"randint": [1, 4]}, "fixed": 3},
            },
            # issue 28753: same parameter names in different branches
            {"name": "adam", "lr": {"uniform": [0.5, 1.0]}, "sched": {"choice": [{"kind": "cos"}]}},
        ]
    },
    # issue 24050: choices of lists and dicts as constants
    "layers": {"choice": [[64, 64], [128], {"constant": {"w": 1}}]},
    "bs": {"qrandint": [16, 128, 16]},
    "n": {"lograndint": [1, 100]},
    "drop": {"quniform": [0.0, 0.5, 0.1]},
    "noise": {"normal": [0, 1]},
    "seed": {"grid": [1, 2]},
}


def _check_types(parsed: Space, config: dict[str, Any]) -> None:
    assert type(config["bs"]) is int and 16 <= config["bs"] <= 128 and config["bs"] % 16 == 0
    assert type(config["n"]) is int and 1 <= config["n"] <= 99
    assert type(config["drop"]) is float and 0.0 <= config["drop"] <= 0.5
    assert type(config["noise"]) is float
    assert config["seed"] in (1, 2) and type(config["seed"]) is int
    assert config["layers"] in ([64, 64], [128], {"w": 1})
    opt = config["opt"]
    if opt["name"] == "sgd":
        assert type(opt["extra"]["depth"]) is int and 1 <= opt["extra"]["depth"] <= 3
        assert opt["extra"]["fixed"] == 3
        assert 1e-4 <= opt["lr"] <= 1e-1
        assert opt["sched"]["kind"] in ("step", "cos")
    else:
        assert opt["name"] == "adam" and 0.5 <= opt["lr"] <= 1.0
        assert opt["sched"] == {"kind": "cos"}


def test_hyperopt_round_trip_nested_conditional() -> None:
    parsed = space(NESTED)
    expr = to_hyperopt(parsed)
    rng = np.random.default_rng(0)
    names = set()
    for _ in range(150):
        config = normalize(parsed.root, hp_sample(expr, rng=rng))
        _check_types(parsed, config)
        names.add((config["opt"]["name"], config["opt"]["sched"]["kind"]))
        vals = to_vals(parsed, config)
        assert hyperopt.space_eval(expr, vals) == config
        assert normalize(parsed.root, hyperopt.space_eval(expr, vals)) == config
    assert names == {("sgd", "step"), ("sgd", "cos"), ("adam", "cos")}


def test_to_vals_only_active_labels() -> None:
    parsed = space(NESTED)
    config = {
        "opt": {"name": "adam", "lr": 0.7, "sched": {"kind": "cos"}},
        "layers": {"w": 1},
        "bs": 32,
        "n": 5,
        "drop": 0.2,
        "noise": -0.5,
        "seed": 2,
    }
    vals = to_vals(parsed, config)
    assert vals == {
        "opt": 1, "opt/1/lr": 0.7, "opt/1/sched": 0, "layers": 2, "bs": 32, "n": 5, "drop": 0.2,
        "noise": -0.5, "seed": 1,
    }  # fmt: skip
    assert not any(key.startswith("opt/0") for key in vals)
    assert hyperopt.space_eval(to_hyperopt(parsed), vals) == config


def test_points_inside_branches_become_hyperopt_values() -> None:
    parsed = space(NESTED)
    point = {"opt": {"name": "sgd", "sched": {"kind": "step", "gamma": 0.5}}, "bs": 64}
    config = complete_point(parsed, point, np.random.default_rng(0))
    assert config["opt"]["name"] == "sgd" and config["opt"]["sched"] == {"kind": "step", "gamma": 0.5}
    assert config["bs"] == 64
    _check_types(parsed, config)
    vals = to_vals(parsed, config)
    assert vals["opt"] == 0 and vals["opt/0/sched"] == 0 and vals["opt/0/sched/0/gamma"] == 0.5
    assert hyperopt.space_eval(to_hyperopt(parsed), vals) == config


def test_labels_are_paths_and_unique() -> None:
    assert label(("opt", 0, "lr")) == "opt/0/lr"
    parsed = space(NESTED)
    expr = to_hyperopt(parsed)
    from hyperopt.pyll import as_apply
    from hyperopt.pyll.base import dfs

    labels = [n.arg["label"].obj for n in dfs(as_apply(expr)) if n.name == "hyperopt_param"]
    assert len(labels) == len(set(labels))
    assert {"opt/0/lr", "opt/1/lr", "opt/0/sched/0/gamma", "opt/0/extra/depth"} <= set(labels)


def test_to_vals_errors_name_the_key() -> None:
    parsed = space(NESTED)
    with pytest.raises(ValueError, match="opt.*not one of the options"):
        bad = {"opt": {"name": "rmsprop"}, "layers": [128], "bs": 16, "n": 1, "drop": 0, "noise": 0, "seed": 1}
        to_vals(parsed, bad)
    with pytest.raises(ValueError, match="missing"):
        to_vals(parsed, {"opt": {"name": "adam", "lr": 0.7, "sched": {"kind": "cos"}}})


def test_normalize_types() -> None:
    parsed = space({"i": {"qrandint": [0, 10, 2]}, "r": {"randint": [0, 3]}, "f": {"quniform": [0, 1, 0.25]}})
    out = normalize(parsed.root, {"i": np.float64(4.0), "r": np.int64(2), "f": np.float64(1.2)})
    assert out == {"i": 4, "r": 2, "f": 1.0}
    assert type(out["i"]) is int and type(out["r"]) is int and type(out["f"]) is float
    # randint's high is excluded: a rounded value at high is clamped inside
    assert normalize(node({"lograndint": [1, 10]}), 10.0) == 9


def test_match_option_tells_branches_apart_by_range() -> None:
    parsed = node({"choice": [{"lr": {"uniform": [0, 1]}}, {"lr": {"uniform": [5, 6]}}]})
    assert match_option(parsed, {"lr": 0.5}) == 0
    assert match_option(parsed, {"lr": 5.5}) == 1
    assert match_option(parsed, {"lr": 3.0}) is None
    assert match_option(node({"choice": [True, 1]}), 1) == 1  # a bool is not the integer 1


def test_notes_for_grid_under_hyperopt() -> None:
    assert notes(space(NESTED)) == ["space.seed: hyperopt treats grid as a categorical choice (sampled by TPE, not enumerated)"]
    assert notes(space({"a": {"choice": [1]}})) == []


# ---------------------------------------------------------------------------- points


def test_complete_point_full_and_partial() -> None:
    parsed = space({"x": {"uniform": [0, 1]}, "n": {"randint": [1, 4]}, "c": 7})
    rng = np.random.default_rng(0)
    assert complete_point(parsed, {"x": 0.5, "n": 2, "c": 7}, rng) == {"x": 0.5, "n": 2, "c": 7}
    partial = complete_point(parsed, {"n": 3.0}, rng)
    assert partial["n"] == 3 and type(partial["n"]) is int
    assert 0 <= partial["x"] <= 1 and partial["c"] == 7


def test_complete_point_branch_selection() -> None:
    parsed = space({"opt": {"choice": [{"name": "sgd", "m": {"uniform": [0, 1]}}, {"name": "adam", "b": {"randint": [0, 2]}}]}})
    rng = np.random.default_rng(0)
    sgd = complete_point(parsed, {"opt": {"name": "sgd"}}, rng)
    assert sgd["opt"]["name"] == "sgd" and 0 <= sgd["opt"]["m"] <= 1
    adam = complete_point(parsed, {"opt": {"name": "adam"}}, rng)
    assert set(adam["opt"]) == {"name", "b"}
    by_param = complete_point(parsed, {"opt": {"b": 1}}, rng)
    assert by_param["opt"] == {"name": "adam", "b": 1}
    left_out = complete_point(parsed, {}, rng)
    assert left_out["opt"]["name"] in ("sgd", "adam")


def test_complete_point_branch_chosen_by_range() -> None:
    parsed = space({"p": {"choice": [{"lr": {"uniform": [0, 1]}}, {"lr": {"uniform": [5, 6]}}]}})
    assert complete_point(parsed, {"p": {"lr": 5.5}}, np.random.default_rng(0)) == {"p": {"lr": 5.5}}


@pytest.mark.parametrize(
    ("point", "path", "fragment"),
    [
        ({"y": 1}, ("y",), "not a parameter"),
        ({"x": 2}, ("x",), "expected a number in [0, 1]"),
        ({"x": "a"}, ("x",), "expected a number"),
        ({"n": 4}, ("n",), "expected an integer in [1, 3]"),
        ({"n": 10**400}, ("n",), "expected an integer in [1, 3]"),
        ({"g": 10**400}, ("g",), "expected a finite number"),
        ({"g": float("inf")}, ("g",), "expected a finite number"),
        ({"c": 8}, ("c",), "fixes this to 7"),
        ({"opt": {"name": "rmsprop"}}, ("opt",), "not one of the options"),
        ({"opt": {"name": "sgd", "zzz": 1}}, ("opt",), "not one of the options"),
        ({"opt": 3}, ("opt",), "not one of the options"),
        ({"nest": 3}, ("nest",), "expected a mapping"),
        ({"nest": {"q": 1}}, ("nest", "q"), "not a parameter"),
    ],
)
def test_complete_point_errors(point: dict[str, Any], path: Path, fragment: str) -> None:
    parsed = space(
        {
            "x": {"uniform": [0, 1]},
            "n": {"randint": [1, 4]},
            "g": {"normal": [0, 1]},
            "c": 7,
            "opt": {"choice": [{"name": "sgd", "m": {"uniform": [0, 1]}}, {"name": "adam"}]},
            "nest": {"a": {"uniform": [0, 1]}},
        }
    )
    with pytest.raises(PointError) as info:
        complete_point(parsed, point, np.random.default_rng(0))
    assert info.value.path == path
    assert fragment in str(info.value)


# ---------------------------------------------------------------------------- result columns


def test_config_columns_types_from_the_space() -> None:
    parsed = space(
        {
            "lr": {"loguniform": [1e-4, 1e-1]},
            "n": {"randint": [1, 4]},
            "g": {"normal": [0, 1]},
            "flag": True,
            "tag": "x",
            "none": None,
            "mixed_num": {"choice": [1, 2.5]},
            "mixed_str": {"choice": [1, "a"]},
            "const_map": {"constant": {"a": 1, "b": "z"}},
            "opt": {
                "choice": [
                    {"name": "sgd", "lr": {"uniform": [0, 1]}, "k": {"randint": [0, 3]}},
                    {"name": "adam", "lr": 0.001, "k": "auto", "only_adam": {"qrandint": [0, 8, 2]}},
                ]
            },
        }
    )
    cols = config_columns(parsed)
    assert cols == {
        "config/lr": ColumnType.FLOAT,
        "config/n": ColumnType.INT,
        "config/g": ColumnType.FLOAT,
        "config/flag": ColumnType.BOOL,
        "config/tag": ColumnType.STRING,
        "config/mixed_num": ColumnType.FLOAT,
        "config/mixed_str": ColumnType.STRING,
        "config/const_map/a": ColumnType.INT,
        "config/const_map/b": ColumnType.STRING,
        "config/opt/name": ColumnType.STRING,
        "config/opt/lr": ColumnType.FLOAT,
        "config/opt/k": ColumnType.STRING,
        "config/opt/only_adam": ColumnType.INT,
    }
    assert "config/none" not in cols
