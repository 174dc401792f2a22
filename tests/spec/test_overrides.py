"""--set KEY.PATH=VALUE: YAML-typed values, validated like the file, clear errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from raytuner.errors import SpecError
from raytuner.spec.loader import load_experiment, load_experiment_text
from raytuner.spec.models import AshaScheduler, HyperOptSearch
from raytuner.spec.overrides import apply_overrides, parse_override

BASE = """\
name: t
trainable: {builtin: analytic}
metric: loss
mode: min
space:
  x: {uniform: [0, 1]}
search:
  num_samples: 4
"""


@pytest.mark.parametrize(
    ("text", "path", "value"),
    [
        ("a=1", ("a",), 1),
        ("a=0.5", ("a",), 0.5),
        ("a=1e-3", ("a",), "1e-3"),  # YAML 1.1: no dot, so a string (validated later)
        ("a=1.0e-3", ("a",), 1.0e-3),
        ("a=true", ("a",), True),
        ("a=[1, 2]", ("a",), [1, 2]),
        ("a={b: 1, c: [x]}", ("a",), {"b": 1, "c": ["x"]}),
        ("a=null", ("a",), None),
        ("a=", ("a",), ""),
        ("a='1'", ("a",), "1"),
        ("a=x=y", ("a",), "x=y"),
        (" a.b.0.c =2", ("a", "b", 0, "c"), 2),
    ],
)
def test_parse_override_types(text: str, path: tuple[Any, ...], value: Any) -> None:
    assert parse_override(text) == (path, value)
    assert type(parse_override(text)[1]) is type(value)


def test_overrides_apply_typed_values() -> None:
    exp = load_experiment_text(
        BASE,
        overrides=[
            "search.num_samples=8",
            "search.algorithm=hyperopt",
            "search.gamma=0.5",
            "execution.reuse_actors=false",
            "execution.loggers=[csv, json]",
            "resources={cpu: 2, custom: {special: 0.5}}",
            "space.x={loguniform: [1.0e-3, 1]}",
        ],
    )
    search = exp.spec.search
    assert isinstance(search, HyperOptSearch)
    assert search.num_samples == 8 and search.gamma == 0.5
    assert exp.spec.execution.reuse_actors is False
    assert [lg.value for lg in exp.spec.execution.loggers] == ["csv", "json"]
    assert exp.spec.resources.cpu == 2 and exp.spec.resources.custom == {"special": 0.5}
    assert dict(exp.space.root.items)["x"].log is True


def test_overrides_create_nested_keys() -> None:
    exp = load_experiment_text(BASE, overrides=["scheduler.type=asha", "scheduler.max_t=9", "space.opt.lr=0.1"])
    assert isinstance(exp.spec.scheduler, AshaScheduler) and exp.spec.scheduler.max_t == 9
    assert exp.spec.space["opt"] == {"lr": 0.1}


def test_overrides_replace_null_and_list_items() -> None:
    data = {"a": None, "b": [{"c": 1}, {"c": 2}]}
    result, sources = apply_overrides(data, ["a.x=1", "b.1.c=5"])
    assert result == {"a": {"x": 1}, "b": [{"c": 1}, {"c": 5}]}
    assert data == {"a": None, "b": [{"c": 1}, {"c": 2}]}  # the input is not changed
    assert sources == {("a", "x"): "--set a.x=1", ("b", 1, "c"): "--set b.1.c=5"}


def test_later_overrides_win() -> None:
    exp = load_experiment_text(BASE, overrides=["search.num_samples=2", "search.num_samples=3"])
    assert exp.spec.search.num_samples == 3


@pytest.mark.parametrize(
    ("override", "path", "fragments"),
    [
        ("search.num_samples=many", "search.num_samples", ("integer", "found 'many'")),
        ("search.num_samples=0", "search.num_samples", ("greater than or equal to 1",)),
        ("search.bogus=1", "search.bogus", ("unknown key 'bogus'",)),
        ("serch.num_samples=1", "serch", ("did you mean 'search'",)),
        ("space.x={uniform: [2, 1]}", "space.x.uniform", ("low must be below high",)),
        ("scheduler.type=bohb", "scheduler.type", ("found 'bohb'",)),
        ("mode=sideways", "mode", ("'min' or 'max'",)),
    ],
)
def test_overrides_are_validated_like_the_file(override: str, path: str, fragments: tuple[str, ...]) -> None:
    with pytest.raises(SpecError) as info:
        load_experiment_text(BASE, "exp.yaml", [override])
    exc = info.value
    assert str(exc).startswith(f"--set {override}: {path}: ")
    assert exc.location.source == f"--set {override}"
    assert exc.location.line is None
    for fragment in fragments:
        assert fragment in str(exc)
    assert exc.exit_code == 2


def test_error_in_file_still_points_at_file_when_overrides_given() -> None:
    with pytest.raises(SpecError) as info:
        load_experiment_text(BASE + "stop: {iterations: 0}\n", "exp.yaml", ["search.num_samples=2"])
    assert str(info.value).startswith("exp.yaml:9: stop.iterations: ")


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ("search.num_samples", "found no '='"),
        ("=3", "expected a dotted key path"),
        ("  =3", "expected a dotted key path"),
        ("a..b=3", "found 'a..b'"),
        (".a=3", "found '.a'"),
        ("a.=3", "found 'a.'"),
        ("metric.sub=3", "metric is str, cannot set 'sub' inside it"),
        ("metric.sub.deeper=3", "metric.sub is str, cannot set 'deeper'"),
        ("search.num_samples.x=3", "search.num_samples is int"),
        ("space.x.uniform.5=3", "past the end"),
        ("space.x.uniform.0.y=3", "space.x.uniform.0 is int"),
        ("space.x.uniform.a=3", "space.x.uniform is list"),
        ("x=[1", "value: invalid YAML"),
        ("x={", "value: invalid YAML"),
        ("x={a: 1, a: 2}", "value: duplicate key 'a'"),
        ("x=!!python/object/apply:os.getcwd []", "value: unsupported YAML tag"),
    ],
)
def test_malformed_overrides(override: str, fragment: str) -> None:
    with pytest.raises(SpecError) as info:
        load_experiment_text(BASE, "exp.yaml", [override])
    assert str(info.value).startswith(f"--set {override}: ")
    assert fragment in str(info.value)
    assert info.value.exit_code == 2


def test_an_alias_bomb_in_an_override_is_refused_like_one_in_the_file() -> None:
    """``--set`` values go through the file's loader: 10**9 values from nine aliases stop at MAX_NODES."""
    from raytuner.spec.yaml_lines import MAX_NODES

    levels = ["&l0 [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]"]
    levels += [f"&l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 9)]
    override = f"space.c=[{', '.join(levels)}]"
    with pytest.raises(SpecError) as info:
        load_experiment_text(BASE, "exp.yaml", [override])
    assert str(info.value).startswith(f"--set {override}: value: more than {MAX_NODES:,} values")
    assert info.value.exit_code == 2


@pytest.mark.parametrize(
    ("flags", "prefix"),
    [
        ({"name": "bad name/x"}, "--name 'bad name/x': name: string should match pattern"),
        ({"storage": "ftp://x/y"}, "--storage ftp://x/y: storage: 'ftp://x/y': ftp:// is not a storage"),
    ],
)
def test_name_and_storage_flag_errors_name_the_flag(tmp_path: Path, flags: dict[str, str], prefix: str) -> None:
    file = tmp_path / "exp.yaml"
    file.write_text(BASE)
    with pytest.raises(SpecError) as info:
        load_experiment(file, **flags)
    assert str(info.value).startswith(prefix), str(info.value)
    assert "--set" not in str(info.value)
