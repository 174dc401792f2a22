"""Property tests: whatever the spec or the --set strings, loading succeeds or raises SpecError."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from raytuner.errors import SpecError
from raytuner.results.layout import inside, new_experiment_dir
from raytuner.spec.loader import build_experiment, load_experiment, load_experiment_text
from raytuner.spec.yaml_lines import LineMap

VALID: dict[str, Any] = {
    "name": "fuzz",
    "trainable": {"builtin": "analytic", "objective": "sphere", "iterations": 3},
    "metric": "loss",
    "mode": "min",
    "space": {
        "x": {"uniform": [-1, 1]},
        "n": {"randint": [1, 4]},
        "opt": {"choice": [{"name": "sgd", "m": {"uniform": [0, 1]}}, {"name": "adam"}]},
    },
    "search": {"algorithm": "random", "num_samples": 4, "points_to_evaluate": [{"x": 0.5}]},
    "scheduler": {"type": "asha", "max_t": 10, "grace_period": 1},
    "resources": {"cpu": 1},
}

KEYS = [
    "name", "trainable", "metric", "mode", "space", "search", "scheduler", "resources", "stop",
    "checkpoint", "failure", "execution", "storage", "description", "algorithm", "type", "builtin",
    "function", "objective", "num_samples", "points_to_evaluate", "max_t", "grace_period", "x", "n", "opt",
    "uniform", "loguniform", "quniform", "randint", "qrandint", "lograndint", "normal", "qnormal", "choice",
    "grid", "constant", "seed", "gpu", "cpu", "custom", "metrics", "at_least", "loggers", "bogus", "",
]  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        [
            "min",
            "max",
            "random",
            "grid",
            "hyperopt",
            "asha",
            "fifo",
            "median",
            "analytic",
            "branin",
            "../x",
            "a/b",
            "json:loads",
            "math:pi",
            "nosuch:thing",
            "",
            "csv",
        ]
    ),
    st.text(max_size=8),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.sampled_from(KEYS), children, max_size=4),
    ),
    max_leaves=12,
)


def _set_at(data: Any, path: list[str | int], value: Any) -> None:
    target = data
    for part in path[:-1]:
        into_dict = isinstance(target, dict) and isinstance(target.get(part), (dict, list))
        into_list = isinstance(target, list) and isinstance(part, int) and part < len(target)
        if into_dict or into_list:
            target = target[part]
        else:
            return
    if isinstance(target, dict) or isinstance(target, list) and isinstance(path[-1], int) and path[-1] < len(target):
        target[path[-1]] = value


paths = st.lists(st.one_of(st.sampled_from(KEYS), st.integers(0, 3)), min_size=1, max_size=4)


@st.composite
def specs(draw: st.DrawFn) -> dict[str, Any]:
    """The valid base with a few keys replaced, added or removed."""
    data = copy.deepcopy(VALID)
    for _ in range(draw(st.integers(0, 4))):
        path = draw(paths)
        if draw(st.booleans()):
            _set_at(data, path, draw(values))
        else:
            target = data
            for part in path[:-1]:
                target = target.get(part) if isinstance(target, dict) else None
            if isinstance(target, dict):
                target.pop(path[-1], None)
    return data


def _load(text: str | dict[str, Any], overrides: Sequence[str] = ()) -> None:
    """Load YAML text, or already-parsed data (skipping PyYAML's pure-Python parser, the slow part)."""
    try:
        if isinstance(text, str):
            exp = load_experiment_text(text, "fuzz.yaml", overrides)
        else:
            exp = build_experiment(copy.deepcopy(text), LineMap("fuzz.yaml"), overrides, base_dir=Path.cwd())
    except SpecError as exc:
        assert exc.exit_code == 2
        assert str(exc).strip()
        assert exc.location.source is not None
    else:
        assert exp.spec.name
        exp.resolved()


def test_base_is_valid() -> None:
    assert load_experiment_text(yaml.safe_dump(VALID)).spec.name == "fuzz"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs())
def test_generated_specs_load_or_raise_spec_error(data: dict[str, Any]) -> None:
    _load(data)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs())
def test_generated_spec_files_load_or_raise_spec_error(data: dict[str, Any]) -> None:
    _load(yaml.safe_dump(data, allow_unicode=True))


override_keys = st.lists(st.sampled_from([*KEYS, "0", "1", "5", " "]), min_size=0, max_size=4).map(".".join)
override_values = st.one_of(
    st.sampled_from(
        [
            "1",
            "0.5",
            "true",
            "[1, 2]",
            "{a: 1}",
            "{uniform: [0, 1]}",
            "null",
            "",
            "[",
            "}",
            "'x",
            "&a",
            "*a",
            "!!python/name:os.system",
            "~",
            "1e400",
            "-1",
            "hyperopt",
            "asha",
            "a: b: c",
        ]
    ),
    st.text(max_size=10),
)
override_texts = st.one_of(
    st.builds(lambda k, v: f"{k}={v}", override_keys, override_values),
    st.text(max_size=20),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(override_texts, max_size=3))
def test_random_overrides_load_or_raise_spec_error(overrides: list[str]) -> None:
    _load(VALID, overrides)


@settings(max_examples=120, deadline=None)
@given(st.text(max_size=200))
def test_random_text_loads_or_raises_spec_error(text: str) -> None:
    _load(text)


@settings(max_examples=60, deadline=None)
@given(
    st.one_of(
        st.text(max_size=40),
        st.lists(st.sampled_from(["..", ".", "/", "a", "~", "\\", "%2e", "\x00", " "]), max_size=8).map("".join),
    )
)
def test_names_cannot_escape_storage(name: str) -> None:
    root = _ROOT
    try:
        exp = load_experiment(_SPEC, name=name, storage=str(root))
    except SpecError as exc:
        assert exc.location.path == "name" or "--set" in str(exc)
        return
    assert exp.spec.name == name
    folder = new_experiment_dir(root, exp.spec.name)
    assert folder.parent == root
    assert inside(root, folder) == folder.resolve()


_ROOT: Path
_SPEC: Path


def setup_module() -> None:
    import tempfile

    global _ROOT, _SPEC
    folder = Path(tempfile.mkdtemp(prefix="raytuner-fuzz-"))
    _ROOT = folder / "storage"
    _ROOT.mkdir()
    _SPEC = folder / "spec.yaml"
    _SPEC.write_text(yaml.safe_dump(VALID))
