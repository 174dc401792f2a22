"""load_experiment / load_experiment_text: defaults, and one clear SpecError per mistake.

Every error must name the file, the line and the key path, and say what was expected and
what was found; ``exit_code`` is 2 (a spec error, nothing started).
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from raytuner.errors import SpecError
from raytuner.spec import yaml_lines
from raytuner.spec.loader import Experiment, load_experiment, load_experiment_text
from raytuner.spec.models import (
    AnalyticObjective,
    AnalyticTrainable,
    AshaScheduler,
    AutoSearch,
    FifoScheduler,
    FunctionTrainable,
    HyperOptSearch,
    Logger,
    MedianScheduler,
    Mode,
)

SOURCE = "exp.yaml"

# Lines: 1 name, 2 trainable, 3 metric, 4 mode, 5 space, 6 x
BASE = """\
name: t
trainable: {builtin: analytic}
metric: loss
mode: min
space:
  x: {uniform: [0, 1]}
"""


def spec_error(text: str, source: str = SOURCE) -> SpecError:
    with pytest.raises(SpecError) as info:
        load_experiment_text(text, source)
    return info.value


def assert_at(exc: SpecError, line: int | None, path: str | None, *fragments: str, source: str = SOURCE) -> None:
    """``exc`` points at ``source:line`` and ``path`` and its text contains every fragment."""
    text = str(exc)
    where = f"{source}:{line}" if line is not None else source
    prefix = f"{where}: {path}: " if path else f"{where}: "
    assert text.startswith(prefix), f"{text!r} does not start with {prefix!r}"
    assert exc.location.line == line
    assert exc.location.path == path
    for fragment in fragments:
        assert fragment in text, f"{fragment!r} not in {text!r}"
    assert exc.exit_code == 2
    assert "\n" not in text


# ---------------------------------------------------------------------------- valid specs


FULL = """\
name: full-spec
description: every section given
trainable:
  builtin: analytic
  objective: branin
  iterations: 5
metric: loss
mode: max
space:
  x1: {uniform: [-5, 10]}
  x2: {quniform: [0, 15, 0.5]}
  opt:
    choice:
      - {name: sgd, lr: {loguniform: [1.0e-4, 1.0e-1]}}
      - {name: adam}
search:
  algorithm: hyperopt
  num_samples: 8
  n_initial_points: 3
  seed: 3
  points_to_evaluate:
    - {x1: 1.0, opt: {name: adam}}
scheduler: {type: asha, max_t: 5, grace_period: 1}
resources: {cpu: 0.5, gpu: 0, custom: {special: 1}}
stop:
  iterations: 5
  metrics: {loss: {at_least: 10}}
checkpoint: {every: 2, keep: null}
failure: {max_retries: -1, fail_fast: true}
execution: {reuse_actors: false, loggers: [csv, tensorboard]}
storage: /tmp/somewhere
"""


def test_full_spec_loads_with_every_section() -> None:
    exp = load_experiment_text(FULL, SOURCE)
    assert isinstance(exp, Experiment)
    spec = exp.spec
    assert spec.name == "full-spec"
    assert spec.mode is Mode.MAX
    assert isinstance(spec.trainable, AnalyticTrainable)
    assert spec.trainable.objective is AnalyticObjective.BRANIN
    assert spec.trainable.decay == 1.0  # default filled
    assert isinstance(spec.search, HyperOptSearch)
    assert spec.search.gamma == 0.25  # default filled
    assert spec.search.points_to_evaluate == [{"x1": 1.0, "opt": {"name": "adam"}}]
    assert isinstance(spec.scheduler, AshaScheduler)
    assert spec.scheduler.reduction_factor == 4  # default filled
    assert spec.scheduler.time_attr == "training_iteration"
    assert spec.resources.custom == {"special": 1.0}
    assert spec.stop.metrics["loss"].at_least == 10
    assert spec.checkpoint.keep is None
    assert spec.failure.max_retries == -1
    assert spec.execution.loggers == [Logger.CSV, Logger.TENSORBOARD]
    assert spec.storage == "/tmp/somewhere"
    assert [key for key, _ in exp.space.root] == ["x1", "x2", "opt"]
    assert exp.source == SOURCE


def test_minimal_spec_gets_defaults() -> None:
    exp = load_experiment_text(BASE, SOURCE)
    spec = exp.spec
    assert isinstance(spec.search, AutoSearch)  # the default algorithm (README, "Search algorithms")
    assert spec.search.num_samples == 16
    assert spec.search.points_to_evaluate == []
    assert isinstance(spec.scheduler, FifoScheduler)
    assert spec.resources.cpu == 1 and spec.resources.gpu == 0
    assert spec.storage == "runs"
    assert spec.checkpoint.every == 0 and spec.checkpoint.keep == 2
    assert spec.execution.reuse_actors is True
    resolved = exp.resolved()
    assert resolved["search"]["algorithm"] == "auto"
    assert resolved["scheduler"] == {"type": "fifo"}
    assert resolved["trainable"]["iterations"] == 20
    assert set(resolved) == {
        "name", "description", "trainable", "metric", "mode", "space", "space_preset", "search", "scheduler",
        "resources", "stop", "checkpoint", "failure", "execution", "storage",
    }  # fmt: skip


def test_name_defaults_to_file_stem(tmp_path: Path) -> None:
    file = tmp_path / "my experiment!.yaml"
    file.write_text(BASE.replace("name: t\n", ""))
    exp = load_experiment(file)
    assert exp.spec.name == "my-experiment"
    assert exp.base_dir == tmp_path.resolve()
    assert load_experiment_text(BASE.replace("name: t\n", "")).spec.name == "experiment"


def test_load_experiment_file_reads_quickstart_like_text(tmp_path: Path) -> None:
    file = tmp_path / "spec.yaml"
    file.write_text(FULL)
    assert load_experiment(file).spec == load_experiment_text(FULL).spec


def test_grid_and_median_and_function_trainables_load(tmp_path: Path) -> None:
    (tmp_path / "rt_good_mod.py").write_text("def train(config):\n    pass\n")
    file = tmp_path / "spec.yaml"
    file.write_text(
        BASE.replace("{builtin: analytic}", "{function: rt_good_mod:train}")
        + "search: {algorithm: grid}\nscheduler: {type: median, hard_stop: false}\n"
    )
    exp = load_experiment(file)
    assert isinstance(exp.spec.trainable, FunctionTrainable)
    assert isinstance(exp.spec.scheduler, MedianScheduler)
    assert exp.spec.scheduler.hard_stop is False
    assert exp.spec.search.num_samples == 1  # grid's own default


# ---------------------------------------------------------------------------- the file


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(SpecError) as info:
        load_experiment(missing)
    assert_at(info.value, None, None, "file not found", source=str(missing))


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_experiment(tmp_path)
    assert_at(info.value, None, None, "expected a YAML file, found a directory", source=str(tmp_path))


def test_file_over_size_limit(tmp_path: Path) -> None:
    file = tmp_path / "big.yaml"
    file.write_text(BASE + "#" * (yaml_lines.MAX_BYTES + 10) + "\n")
    with pytest.raises(SpecError) as info:
        load_experiment(file)
    assert_at(info.value, None, None, f"{yaml_lines.MAX_BYTES:,}", "bytes", source=str(file))


def test_file_not_utf8(tmp_path: Path) -> None:
    file = tmp_path / "latin.yaml"
    file.write_bytes(BASE.encode() + b"description: caf\xe9\n")
    with pytest.raises(SpecError) as info:
        load_experiment(file)
    assert_at(info.value, None, None, "not UTF-8", source=str(file))


def test_file_errors_carry_file_name_and_line(tmp_path: Path) -> None:
    file = tmp_path / "bad.yaml"
    file.write_text(BASE + "serch: {}\n")
    with pytest.raises(SpecError) as info:
        load_experiment(file)
    assert_at(info.value, 7, "serch", "did you mean 'search'", source=str(file))


# ---------------------------------------------------------------------------- YAML


def test_yaml_syntax_error_has_line() -> None:
    exc = spec_error("name: t\nmetric: loss\nspace:\n  x: [1, 2\nmode: min\n")
    assert "invalid YAML" in str(exc)
    assert exc.location.source == SOURCE
    assert exc.location.line in (4, 5)  # the open flow sequence, or where the parser gave up
    assert isinstance(exc.__cause__, Exception)
    assert exc.exit_code == 2


def test_yaml_bad_indent_points_at_line() -> None:
    exc = spec_error("name: t\nmetric: loss\n  mode: min\n")
    assert exc.location.line == 3
    assert str(exc).startswith(f"{SOURCE}:3: invalid YAML")


def test_duplicate_key_names_both_lines() -> None:
    exc = spec_error(BASE + "metric: acc\n")
    assert_at(exc, 7, None, "duplicate key 'metric'", "first on line 3")


def test_duplicate_nested_key() -> None:
    exc = spec_error(BASE + "  x: 3\n")
    assert_at(exc, 7, None, "duplicate key 'x'", "first on line 6")


@pytest.mark.parametrize(
    "text",
    [
        "!!python/object/apply:os.system ['touch PWNED']\n",
        BASE + "description: !!python/object/apply:os.system ['touch PWNED']\n",
        BASE + "description: !!python/name:os.system ''\n",
        BASE + "description: !!python/object:collections.OrderedDict {a: 1}\n",
        BASE + "description: !!python/object/new:os.system [touch PWNED]\n",
    ],
)
def test_python_objects_are_refused(text: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    exc = spec_error(text)
    assert "python" in str(exc)
    assert exc.location.line == text.count("\n")
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize(("tagged", "word"), [("!!set {a, b}", "set"), ("!!omap [{a: 1}]", "omap")])
def test_other_collection_tags_are_refused_not_dropped(tagged: str, word: str) -> None:
    exc = spec_error(BASE + f"description: {tagged}\n")
    assert_at(exc, 7, None, "unsupported YAML tag", word)


@pytest.mark.parametrize("tagged", ["!!int abc", "!!float abc", "!!bool abc", "!!timestamp abc"])
def test_bad_explicitly_tagged_scalars(tagged: str) -> None:
    exc = spec_error(BASE + f"description: {tagged}\n")
    assert_at(exc, 7, None, "invalid YAML value 'abc'")


def test_nesting_over_max_depth() -> None:
    depth = yaml_lines.MAX_DEPTH + 5
    body = "".join("  " * i + f"k{i}:\n" for i in range(1, depth + 1)) + "  " * (depth + 1) + "v: 1\n"
    exc = spec_error("name: t\nspace:\n" + body)
    # the mapping at depth MAX_DEPTH + 1 starts on the line of its first key (k{MAX_DEPTH+1})
    assert_at(exc, yaml_lines.MAX_DEPTH + 3, None, f"nested more than {yaml_lines.MAX_DEPTH} levels")


def test_flow_nesting_deeper_than_the_yaml_parser_recurses() -> None:
    # PyYAML's composer recurses per level (and its scanner is quadratic in flow depth), so a
    # low recursion limit makes this fast; the loader must turn RecursionError into a SpecError.
    depth, frame = 0, sys._getframe()
    while frame is not None:
        depth, frame = depth + 1, frame.f_back
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(depth + 150)
    try:
        exc = spec_error("space: " + "[" * 400 + "]" * 400 + "\n")
    finally:
        sys.setrecursionlimit(limit)
    assert isinstance(exc.__cause__, RecursionError)
    assert f"nested more than {yaml_lines.MAX_DEPTH} levels" in str(exc)
    assert exc.exit_code == 2


def test_nesting_at_max_depth_is_fine() -> None:
    # a constant mapping nested MAX_DEPTH - 3 levels under space.x.constant stays within the limit
    inner = "{a: " * (yaml_lines.MAX_DEPTH - 4) + "1" + "}" * (yaml_lines.MAX_DEPTH - 4)
    exp = load_experiment_text(BASE + f"  y: {{constant: {inner}}}\n")
    assert "y" in dict(exp.space.root.items)


def test_billion_laughs_refused_by_max_nodes() -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, cur in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 10) + "]")
    exc = spec_error("\n".join(lines) + "\n")
    assert f"more than {yaml_lines.MAX_NODES:,} values" in str(exc)
    assert exc.location.source == SOURCE and exc.location.line is not None
    assert exc.exit_code == 2


def test_aliases_below_the_limit_are_fine() -> None:
    text = BASE.replace("  x: {uniform: [0, 1]}", "  x: &r {uniform: [0, 1]}\n  y: *r")
    exp = load_experiment_text(text)
    params = dict(exp.space.root.items)
    assert params["x"] == params["y"]


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("", 1, "the spec is empty"),
        ("# only a comment\n", 1, "the spec is empty"),
        ("- 1\n- 2\n", 1, "found list"),
        ("just text\n", 1, "found str"),
        ("? [1, 2]\n: 3\n", 1, "mapping keys must be plain values"),
    ],
)
def test_top_level_not_a_mapping(text: str, line: int, fragment: str) -> None:
    exc = spec_error(text)
    assert_at(exc, line, None, fragment)


# ---------------------------------------------------------------------------- keys and types


def test_unknown_top_level_key_suggests() -> None:
    assert_at(spec_error(BASE + "serch: {}\n"), 7, "serch", "unknown key 'serch'", "did you mean 'search'?")


def test_unknown_top_level_key_without_close_match_lists_keys() -> None:
    exc = spec_error(BASE + "zzzzzz: 1\n")
    assert_at(exc, 7, "zzzzzz", "unknown key 'zzzzzz'", "expected one of", "scheduler", "trainable")


def test_unknown_nested_key() -> None:
    exc = spec_error(BASE + "search:\n  num_samples: 2\n  bogus: 1\n")
    assert_at(exc, 9, "search.bogus", "unknown key 'bogus'", "expected one of", "num_samples")


def test_unknown_nested_key_follows_union_tag() -> None:
    exc = spec_error(BASE + "search:\n  algorithm: hyperopt\n  n_initial: 3\n")
    assert_at(exc, 9, "search.n_initial", "did you mean 'n_initial_points'?")
    exc = spec_error(BASE + "scheduler:\n  type: asha\n  grace: 3\n")
    assert_at(exc, 9, "scheduler.grace", "did you mean 'grace_period'?")


@pytest.mark.parametrize(
    ("extra", "line", "path", "fragments"),
    [
        ("search:\n  num_samples: many\n", 8, "search.num_samples", ("integer", "found 'many'")),
        ("search:\n  num_samples: 0\n", 8, "search.num_samples", ("greater than or equal to 1", "found 0")),
        ("search:\n  seed: -1\n", 8, "search.seed", ("greater than or equal to 0", "found -1")),
        ("search:\n  points_to_evaluate: {x: 1}\n", 8, "search.points_to_evaluate", ("list", "a mapping")),
        ("search: [1, 2]\n", 7, "search", ("dictionary", "found a list")),
        ("scheduler: asha\n", 7, "scheduler", ("found 'asha'",)),
        ("scheduler:\n  type: asha\n  max_t: [1]\n", 9, "scheduler.max_t", ("number", "found a list")),
        ("resources:\n  cpu: lots\n", 8, "resources.cpu", ("number", "found 'lots'")),
        ("resources:\n  gpu: 1.5\n", 7, "resources", ("whole number", "1.5")),
        ("execution:\n  reuse_actors: maybe\n", 8, "execution.reuse_actors", ("boolean", "found 'maybe'")),
        ("execution:\n  loggers: [xml]\n", 8, "execution.loggers[0]", ("'csv'", "found 'xml'")),
        ("stop:\n  metrics: {loss: {}}\n", 8, "stop.metrics.loss", ("exactly one of at_least or at_most",)),
        ("checkpoint:\n  every: -1\n", 8, "checkpoint.every", ("greater than or equal to 0", "found -1")),
        ("checkpoint:\n  score: loss\n", 7, "checkpoint", ("checkpoint.every 0", "makes none")),
        ("checkpoint:\n  score: {metric: loss, mode: up}\n", 8, "checkpoint.score.mode", ("'min' or 'max'", "found 'up'")),
        ("checkpoint:\n  every: 1\n  score: acc\n", 9, "checkpoint.score.metric", ("reports loss, objective", "metric 'acc'")),
        ("checkpoint:\n  every: 1\n  score: objective\n", 9, "checkpoint.score", ("not the spec's metric", "mode: max}")),
        ("storage: ''\n", 7, "storage", ("at least 1 character", "found ''")),
        ("description: [a]\n", 7, "description", ("string", "found a list")),
    ],
)
def test_wrong_types_and_values(extra: str, line: int, path: str, fragments: tuple[str, ...]) -> None:
    assert_at(spec_error(BASE + extra), line, path, *fragments)


@pytest.mark.parametrize(
    ("old", "new", "line", "path", "fragments"),
    [
        ("mode: min", "mode: sideways", 4, "mode", ("'min' or 'max'", "found 'sideways'")),
        ("metric: loss", "metric: ''", 3, "metric", ("at least 1 character", "found ''")),
        ("metric: loss", "metric: [a]", 3, "metric", ("string", "found a list")),
        ("space:\n  x: {uniform: [0, 1]}", "space: 3", 5, "space", ("dictionary", "found 3")),
    ],
)
def test_wrong_types_in_place(old: str, new: str, line: int, path: str, fragments: tuple[str, ...]) -> None:
    assert_at(spec_error(BASE.replace(old, new)), line, path, *fragments)


def test_checkpoint_score_takes_a_name_or_a_metric_and_mode() -> None:
    named = load_experiment_text(BASE + "checkpoint: {every: 1, keep: 1, score: loss}\n").spec
    assert (named.checkpoint_objective.metric, named.checkpoint_objective.mode.value) == ("loss", "min")  # the spec's
    given = load_experiment_text(BASE + "checkpoint: {every: 1, score: {metric: objective, mode: max}}\n").spec
    assert (given.checkpoint_objective.metric, given.checkpoint_objective.mode.value) == ("objective", "max")
    assert load_experiment_text(BASE).spec.checkpoint_objective.metric == "loss"  # without score: the spec's metric


def test_missing_required_key() -> None:
    exc = spec_error(BASE.replace("metric: loss\n", ""))
    assert exc.location.path == "metric"
    assert "required key 'metric' is missing" in str(exc)
    assert exc.location.line == 1


def test_several_problems_are_counted() -> None:
    exc = spec_error("name: t\ntrainable: {builtin: analytic}\nspace: {}\n")
    assert "required key" in str(exc)
    assert "(and 1 more problem)" in str(exc)


# ---------------------------------------------------------------------------- the space


@pytest.mark.parametrize(
    ("node", "path", "fragments"),
    [
        ("{uniform: [1, 0]}", "space.x.uniform", ("low must be below high", "low=1 >= high=0")),
        ("{uniform: [1, 1]}", "space.x.uniform", ("low must be below high", "low=1 >= high=1")),
        ("{randint: [5, 2]}", "space.x.randint", ("low must be below high", "low=5 >= high=2")),
        ("{loguniform: [0, 1]}", "space.x.loguniform", ("log scale needs low > 0", "low=0")),
        ("{loguniform: [-1, 1]}", "space.x.loguniform", ("log scale needs low > 0", "low=-1")),
        ("{lograndint: [0, 10]}", "space.x.lograndint", ("log scale needs low > 0", "low=0")),
        ("{choice: []}", "space.x.choice", ("at least one option", "empty list")),
        ("{grid: []}", "space.x.grid", ("at least one option", "empty list")),
        ("{choice: 3}", "space.x.choice", ("expected a list of options", "found int 3")),
        ("{uniform: [0]}", "space.x.uniform", ("expected a list [low, high]", "found [0]")),
        ("{uniform: 3}", "space.x.uniform", ("expected a list [low, high]", "found 3")),
        ("{uniform: [a, 1]}", "space.x.uniform", ("low must be a number", "found 'a'")),
        ("{uniform: [true, 1]}", "space.x.uniform", ("low must be a number", "found True")),
        ("{uniform: [.nan, 1]}", "space.x.uniform", ("low must be finite",)),
        ("{uniform: [-1.0e+308, 1.0e+308]}", "space.x.uniform", ("range is too wide",)),
        ("{randint: [0, 1.5]}", "space.x.randint", ("high must be an integer", "found 1.5")),
        ("{randint: [0, 100000000000000000000]}", "space.x.randint", ("high must be between",)),
        ("{quniform: [0, 1, 0]}", "space.x.quniform", ("q must be > 0", "q=0")),
        ("{qrandint: [0, 10, -2]}", "space.x.qrandint", ("q must be > 0", "q=-2")),
        ("{normal: [0, 0]}", "space.x.normal", ("sd must be > 0", "sd=0")),
        ("{uniform: [0, 1], extra: 2}", "space.x", ("takes no other keys", "found extra", "constant")),
    ],
)
def test_space_errors(node: str, path: str, fragments: tuple[str, ...]) -> None:
    exc = spec_error(BASE.replace("{uniform: [0, 1]}", node))
    assert_at(exc, 6, path, *fragments)


@pytest.mark.parametrize(
    ("node", "wrote", "meant"),
    [
        ("{loguniforn: [0.001, 1]}", "loguniforn", "loguniform"),
        ("{Uniform: [0, 1]}", "Uniform", "uniform"),
        ("{randInt: [1, 4]}", "randInt", "randint"),
        ("{choices: [1, 2]}", "choices", "choice"),
        ("{grids: [a, b]}", "grids", "grid"),
    ],
)
def test_a_misspelt_distribution_is_refused_not_made_a_constant(node: str, wrote: str, meant: str) -> None:
    exc = spec_error(BASE.replace("{uniform: [0, 1]}", node))
    assert_at(exc, 6, "space.x", f"unknown distribution '{wrote}': did you mean '{meant}'?", "{constant: ...}")


def test_a_misspelt_distribution_inside_a_branch_is_refused() -> None:
    text = BASE + "  opt:\n    choice:\n      - {name: sgd, momentum: {unifrom: [0.8, 0.99]}}\n      - {name: adam}\n"
    assert_at(spec_error(text), 9, "space.opt.choice[0].momentum", "did you mean 'uniform'?")


@pytest.mark.parametrize(
    "node",
    [
        "{norm: {uniform: [0, 1]}}",  # a sub-space whose one parameter is named like an operator
        "{normalize: true}",  # a constant mapping whose key is close to 'normal'
        "{constant: {loguniforn: [0.001, 1]}}",  # the way to keep such a mapping as a value
        "{name: sgd}",
    ],
)
def test_mappings_close_to_an_operator_but_not_a_distribution_still_load(node: str) -> None:
    load_experiment_text(BASE.replace("{uniform: [0, 1]}", node))


def test_space_error_inside_a_branch_points_at_its_line() -> None:
    text = BASE + "  opt:\n    choice:\n      - {name: sgd}\n      - name: adam\n        lr: {uniform: [2, 1]}\n"
    exc = spec_error(text)
    assert_at(exc, 11, "space.opt.choice[1].lr.uniform", "low must be below high")


def test_space_parameter_names() -> None:
    assert_at(spec_error(BASE + "  a.b: 1\n"), 7, "space.a.b", "cannot contain '.'")


def test_unknown_algorithm() -> None:
    exc = spec_error(BASE + "search:\n  algorithm: bayes\n")
    assert_at(exc, 8, "search.algorithm", "expected one of 'random', 'grid', 'hyperopt'", "found 'bayes'")


def test_unknown_scheduler_type() -> None:
    exc = spec_error(BASE + "scheduler:\n  type: bohb\n")
    assert_at(exc, 8, "scheduler.type", "expected one of 'fifo', 'asha', 'hyperband', 'median', 'pbt', 'pb2'", "found 'bohb'")
    assert "SchedulerType" not in str(exc)


def test_unknown_builtin() -> None:
    exc = spec_error(BASE.replace("{builtin: analytic}", "{builtin: resnet}"))
    assert_at(exc, 2, "trainable.builtin", "expected one of 'analytic'", "found 'resnet'")


@pytest.mark.parametrize(
    ("trainable", "found"),
    [("{}", "found nothing"), ("{builtin: analytic, function: 'a:b'}", "found builtin, function")],
)
def test_trainable_needs_exactly_one_kind(trainable: str, found: str) -> None:
    exc = spec_error(BASE.replace("{builtin: analytic}", trainable))
    assert_at(exc, 2, "trainable", "expected exactly one of the keys builtin, function or command", found)


def test_asha_grace_period_over_max_t() -> None:
    exc = spec_error(BASE + "scheduler:\n  type: asha\n  max_t: 5\n  grace_period: 10\n")
    assert_at(exc, 7, "scheduler", "grace_period must be <= max_t", "grace_period=10 > max_t=5")


def test_hyperopt_with_only_constants() -> None:
    text = BASE.replace("{uniform: [0, 1]}", "3") + "search:\n  algorithm: hyperopt\n"
    exc = spec_error(text)
    assert_at(exc, 8, "search.algorithm", "hyperopt needs at least one distribution or choice", "found only constants")


def test_hyperopt_with_a_choice_of_constants_is_searchable() -> None:
    text = BASE.replace("{uniform: [0, 1]}", "{choice: [1, 2]}") + "search:\n  algorithm: hyperopt\n"
    assert isinstance(load_experiment_text(text).spec.search, HyperOptSearch)


def test_grid_too_large() -> None:
    text = BASE.replace("{uniform: [0, 1]}", "{grid: [" + ", ".join(map(str, range(1001))) + "]}")
    text += "  y: {grid: [" + ", ".join(map(str, range(1000))) + "]}\n"
    exc = spec_error(text)
    # no `search` key in the file: the error points at the top of the file
    assert_at(exc, 1, "search", "1,001,000 points", "the limit is 1,000,000")


# ---------------------------------------------------------------------------- points_to_evaluate


POINTS = BASE + "  n: {randint: [1, 4]}\nsearch:\n  points_to_evaluate:\n    - {x: 0.5}\n    - {%s}\n"


def test_points_unknown_key() -> None:
    exc = spec_error(POINTS % "y: 1")
    assert_at(exc, 11, "search.points_to_evaluate[1].y", "'y' is not a parameter of the space")


@pytest.mark.parametrize(
    ("point", "fragments"),
    [
        ("x: 5", ("x", "expected a number in [0, 1]", "found 5")),
        ("n: 4", ("n", "expected an integer in [1, 3]", "found 4")),
        ("n: 1.5", ("n", "expected an integer", "found 1.5")),
        ("x: abc", ("x", "expected a number", "found 'abc'")),
        ("x: true", ("x", "expected a number", "found True")),
    ],
)
def test_points_out_of_range(point: str, fragments: tuple[str, ...]) -> None:
    exc = spec_error(POINTS % point)
    key = point.split(":")[0]
    assert_at(exc, 11, f"search.points_to_evaluate[1].{key}", *fragments[1:])


def test_points_valid_partial_points_load() -> None:
    exp = load_experiment_text(POINTS % "n: 3")
    assert exp.spec.search.points_to_evaluate == [{"x": 0.5}, {"n": 3}]


def test_points_inside_branches() -> None:
    text = (
        BASE
        + "  opt:\n    choice:\n      - {name: sgd, lr: {uniform: [0, 1]}}\n      - {name: adam}\n"
        + "search:\n  points_to_evaluate:\n    - {opt: {name: sgd, lr: 0.5}}\n    - {opt: {name: rmsprop}}\n"
    )
    exc = spec_error(text)
    assert_at(exc, 14, "search.points_to_evaluate[1].opt", "is not one of the options")
    ok = text.replace("rmsprop", "adam")
    assert len(load_experiment_text(ok).spec.search.points_to_evaluate) == 2


# ---------------------------------------------------------------------------- names


@pytest.mark.parametrize("name", ["../x", "a/b", "/abs", "..", ".hidden", "-dash", "a b", "x" * 200, "a\\b"])
def test_bad_experiment_names(name: str) -> None:
    exc = spec_error(BASE.replace("name: t", f"name: '{name}'"))
    assert_at(exc, 1, "name", "should match pattern", f"found {name!r}")


@pytest.mark.parametrize("name", ["exp", "Exp_1.2-b", "123", "true", "2024-01-01", "null"])
def test_name_flag_is_always_a_string(name: str, tmp_path: Path) -> None:
    file = tmp_path / "s.yaml"
    file.write_text(BASE)
    assert load_experiment(file, name=name).spec.name == name


@pytest.mark.parametrize("name", ["../x", "a/../../b", "~"])
def test_name_flag_refuses_paths(name: str, tmp_path: Path) -> None:
    file = tmp_path / "s.yaml"
    file.write_text(BASE)
    with pytest.raises(SpecError) as info:
        load_experiment(file, name=name)
    assert info.value.location.path == "name"
    assert "should match pattern" in str(info.value)
    assert info.value.exit_code == 2


def test_storage_flag_is_kept_verbatim(tmp_path: Path) -> None:
    file = tmp_path / "s.yaml"
    file.write_text(BASE)
    assert load_experiment(file, storage="it's: [odd]").spec.storage == "it's: [odd]"


# ---------------------------------------------------------------------------- trainables


def _function_spec(tmp_path: Path, target: str) -> Path:
    file = tmp_path / "spec.yaml"
    file.write_text(BASE.replace("{builtin: analytic}", f"{{function: '{target}'}}"))
    return file


@pytest.mark.parametrize(
    ("module", "target", "fragments"),
    [
        (None, "rt_no_such_module_xyz:train", ("cannot import module 'rt_no_such_module_xyz'",)),
        ("x = 1\n", "rt_attr_mod:train", ("module 'rt_attr_mod' has no attribute 'train'",)),
        ("train = 3\n", "rt_const_mod:train", ("is a int", "expected a function taking a config dict")),
        ("class train:\n    pass\n", "rt_class_mod:train", ("not a ray.tune.Trainable subclass",)),
        ("def train(a, b):\n    pass\n", "rt_args_mod:train", ("takes (a, b)", "takes one argument")),
        ("raise RuntimeError('boom')\n", "rt_boom_mod:train", ("importing 'rt_boom_mod' failed", "boom")),
        ("import rt_missing_dep_xyz\n", "rt_dep_mod:train", ("importing 'rt_dep_mod' failed",)),
    ],
)
def test_function_trainable_that_does_not_resolve(
    tmp_path: Path, module: str | None, target: str, fragments: tuple[str, ...]
) -> None:
    if module is not None:
        (tmp_path / f"{target.split(':')[0]}.py").write_text(module)
    file = _function_spec(tmp_path, target)
    with pytest.raises(SpecError) as info:
        load_experiment(file)
    assert_at(info.value, 2, "trainable.function", *fragments, source=str(file))


def test_function_trainable_pattern() -> None:
    exc = spec_error(BASE.replace("{builtin: analytic}", "{function: 'not a target'}"))
    assert_at(exc, 2, "trainable.function", "should match pattern", "found 'not a target'")


@pytest.mark.parametrize(
    ("objective", "space", "fragments", "line", "path"),
    [
        ("branin", "  x: {uniform: [0, 1]}", ("parameter 'x1'", "found nothing"), 2, "trainable.objective"),
        ("branin", "  x1: 1\n  x2: {choice: [1, 2]}", ("parameter 'x2'", "found choice"), 7, "space.x2"),
        ("branin", "  x1: abc\n  x2: 1", ("needs a numeric parameter 'x1'", "found constant"), 6, "space.x1"),
        ("hartmann6", "  x1: 0.1", ("needs a numeric parameter 'x2'",), 2, "trainable.objective"),
    ],
)
def test_analytic_objective_needs_its_parameters(
    objective: str, space: str, fragments: tuple[str, ...], line: int, path: str
) -> None:
    text = BASE.replace("{builtin: analytic}", f"{{builtin: analytic, objective: {objective}}}")
    text = text.replace("  x: {uniform: [0, 1]}", space)
    assert_at(spec_error(text), line, path, *fragments)


def test_branin_with_both_parameters_loads() -> None:
    text = BASE.replace("{builtin: analytic}", "{builtin: analytic, objective: branin}")
    text = text.replace("  x: {uniform: [0, 1]}", "  x1: {uniform: [-5, 10]}\n  x2: 2.5")
    assert load_experiment_text(text).spec.trainable.objective is AnalyticObjective.BRANIN  # type: ignore[union-attr]


def test_errors_keep_their_cause() -> None:
    exc = spec_error(BASE + "search:\n  num_samples: many\n")
    assert exc.__cause__ is not None
    assert "num_samples" in repr(exc.__cause__)


def test_source_name_shown_verbatim() -> None:
    exc = spec_error(BASE + "serch: 1\n", source="<stdin>")
    assert str(exc).startswith("<stdin>:7: serch: ")


def test_text_is_dedented_equivalently() -> None:
    text = textwrap.dedent(
        """\
        name: t
        trainable: {builtin: analytic}
        metric: loss
        mode: min
        """
    )
    assert load_experiment_text(text).space.is_empty()
