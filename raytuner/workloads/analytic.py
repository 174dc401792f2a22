"""The built-in analytic objective: known test functions reported as learning curves.

At iteration ``t`` a trial reports ``loss = f(config) + decay / t`` (plus optional noise):
the curve falls towards the function's value, so early stopping has something to compare,
and nothing but NumPy is needed. Used by the quick start and the fast tests. The
two-objective functions (ZDT1, Binh and Korn) report ``f1`` and ``f2`` the same way, for
multi-objective tuning with a known Pareto front.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from raytuner.errors import Location, SpecError
from raytuner.space.model import Choice, Constant, Float, Integer, Nested, Normal, Path, Space
from raytuner.spec.models import AnalyticObjective, AnalyticTrainable

Objective = Callable[[Mapping[str, Any]], float]

_HARTMANN3_A = np.array([[3.0, 10, 30], [0.1, 10, 35], [3.0, 10, 30], [0.1, 10, 35]])
_HARTMANN3_P = 1e-4 * np.array([[3689, 1170, 2673], [4699, 4387, 7470], [1091, 8732, 5547], [381, 5743, 8828]])

_HARTMANN6_A = np.array(
    [
        [10, 3, 17, 3.5, 1.7, 8],
        [0.05, 10, 17, 0.1, 8, 14],
        [3, 3.5, 1.7, 10, 17, 8],
        [17, 8, 0.05, 10, 0.1, 14],
    ]
)
_HARTMANN6_P = 1e-4 * np.array(
    [
        [1312, 1696, 5569, 124, 8283, 5886],
        [2329, 4135, 8307, 3736, 1004, 9991],
        [2348, 1451, 3522, 2883, 3047, 6650],
        [4047, 8828, 8732, 5743, 1091, 381],
    ]
)
_HARTMANN6_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def numeric_leaves(config: Mapping[str, Any]) -> Iterator[float]:
    """Every number in ``config``, depth first, in key order (bools are not numbers)."""
    for value in config.values():
        if isinstance(value, Mapping):
            yield from numeric_leaves(value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            yield float(value)


def sphere(config: Mapping[str, Any]) -> float:
    return float(sum(x * x for x in numeric_leaves(config)))


def rosenbrock(config: Mapping[str, Any]) -> float:
    xs = list(numeric_leaves(config))
    return float(sum(100 * (b - a * a) ** 2 + (1 - a) ** 2 for a, b in zip(xs, xs[1:], strict=False)))


def branin(config: Mapping[str, Any]) -> float:
    x1, x2 = float(config["x1"]), float(config["x2"])
    b, c = 5.1 / (4 * math.pi**2), 5 / math.pi
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1) + 10


def hartmann3(config: Mapping[str, Any]) -> float:
    x = np.array([float(config[f"x{i}"]) for i in range(1, 4)])
    inner = np.sum(_HARTMANN3_A * (x - _HARTMANN3_P) ** 2, axis=1)
    return float(-np.sum(_HARTMANN6_ALPHA * np.exp(-inner)))  # the same weights as Hartmann6


def hartmann6(config: Mapping[str, Any]) -> float:
    x = np.array([float(config[f"x{i}"]) for i in range(1, 7)])
    inner = np.sum(_HARTMANN6_A * (x - _HARTMANN6_P) ** 2, axis=1)
    return float(-np.sum(_HARTMANN6_ALPHA * np.exp(-inner)))


def zdt1(config: Mapping[str, Any]) -> tuple[float, float]:
    """ZDT1 (Zitzler, Deb, Thiele 2000) over x1, x2, ... in [0, 1], both minimized.

    f1 = x1, g = 1 + 9 * mean(x2..xn), f2 = g * (1 - sqrt(f1 / g)). The Pareto front is
    x2..xn = 0 (g = 1): f2 = 1 - sqrt(f1) for f1 in [0, 1].
    """
    x1 = float(config["x1"])
    rest = [float(config[name]) for name in _x_names(config)[1:]]
    g = 1.0 + 9.0 * (sum(rest) / len(rest) if rest else 0.0)
    return x1, g * (1.0 - math.sqrt(max(x1, 0.0) / g))


def zdt1_front(f1: float) -> float:
    """ZDT1's Pareto-optimal f2 for a given f1 in [0, 1]."""
    return 1.0 - math.sqrt(min(max(f1, 0.0), 1.0))


def binh_korn(config: Mapping[str, Any]) -> tuple[float, float]:
    """Binh and Korn (1997), x1 in [0, 5], x2 in [0, 3], both minimized (unconstrained form).

    f1 = 4 x1^2 + 4 x2^2, f2 = (x1 - 5)^2 + (x2 - 5)^2. The Pareto set is x1 = x2 in [0, 3],
    then x2 = 3 with x1 in [3, 5].
    """
    x1, x2 = float(config["x1"]), float(config["x2"])
    return 4 * x1**2 + 4 * x2**2, (x1 - 5) ** 2 + (x2 - 5) ** 2


def _x_names(config: Mapping[str, Any]) -> list[str]:
    """x1, x2, ... in numeric order (x10 after x9)."""
    names = [k for k in config if k.startswith("x") and k[1:].isdigit()]
    return sorted(names, key=lambda k: int(k[1:]))


# Two-objective functions: they report f1 and f2 (use metric: [f1, f2], mode: min).
MULTI_OBJECTIVES: dict[AnalyticObjective, Callable[[Mapping[str, Any]], tuple[float, float]]] = {
    AnalyticObjective.ZDT1: zdt1,
    AnalyticObjective.BINH_KORN: binh_korn,
}

OBJECTIVES: dict[AnalyticObjective, Objective] = {
    AnalyticObjective.SPHERE: sphere,
    AnalyticObjective.BRANIN: branin,
    AnalyticObjective.HARTMANN3: hartmann3,
    AnalyticObjective.HARTMANN6: hartmann6,
    AnalyticObjective.ROSENBROCK: rosenbrock,
}

REQUIRED: dict[AnalyticObjective, tuple[str, ...]] = {
    AnalyticObjective.BRANIN: ("x1", "x2"),
    AnalyticObjective.HARTMANN3: tuple(f"x{i}" for i in range(1, 4)),
    AnalyticObjective.HARTMANN6: tuple(f"x{i}" for i in range(1, 7)),
    AnalyticObjective.ZDT1: ("x1", "x2"),
    AnalyticObjective.BINH_KORN: ("x1", "x2"),
}


def check_space(options: AnalyticTrainable, space: Space, locate: Callable[[Path], Location]) -> None:
    """Refuse a space that lacks the numeric parameters the objective reads."""
    params = dict(space.root.items)
    for name in REQUIRED.get(options.objective, ()):
        node = params.get(name)
        numeric = isinstance(node, (Float, Integer, Normal)) or (
            isinstance(node, Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool)
        )
        if isinstance(node, (Choice, Nested)) or not numeric:
            found = "nothing" if node is None else type(node).__name__.lower()
            raise SpecError(
                f"objective {options.objective.value} needs a numeric parameter '{name}' in the space, found {found}",
                locate(("space", name) if node is not None else ("trainable", "objective")),
            )


def make_trainable(options: AnalyticTrainable, checkpoint_every: int) -> Callable[[dict[str, Any]], None]:
    """A Ray Tune function trainable reporting ``loss`` (``f1`` and ``f2`` for a two-objective
    function) for ``options.iterations`` iterations."""
    double = MULTI_OBJECTIVES.get(options.objective)
    single = OBJECTIVES[options.objective] if double is None else None
    iterations, decay, noise, sleep_s, fail_at = (
        options.iterations,
        options.decay,
        options.noise,
        options.sleep_s,
        options.fail_at,
    )

    def analytic(config: dict[str, Any]) -> None:
        from ray import tune

        values: tuple[float, ...] = double(config) if double is not None else (single(config),) if single is not None else ()
        seed = zlib.crc32(json.dumps(config, sort_keys=True, default=str).encode())
        rng = np.random.default_rng(seed)
        start = 0
        checkpoint = tune.get_checkpoint()
        if checkpoint is not None:
            with checkpoint.as_directory() as folder, open(os.path.join(folder, "state.json")) as fh:
                start = int(json.load(fh)["iteration"])
        for t in range(start + 1, iterations + 1):
            if sleep_s:
                time.sleep(sleep_s)
            if fail_at is not None and t == fail_at:
                raise RuntimeError(f"analytic objective failed at iteration {t} (fail_at={fail_at})")
            curve = [value + decay / t + (float(rng.normal(0.0, noise)) if noise else 0.0) for value in values]
            metrics = (
                {"f1": curve[0], "f2": curve[1]} if double is not None else {"loss": curve[0], "objective": values[0]}
            )
            if checkpoint_every and (t % checkpoint_every == 0 or t == iterations):
                with tempfile.TemporaryDirectory() as folder:
                    with open(os.path.join(folder, "state.json"), "w") as fh:
                        json.dump({"iteration": t}, fh)
                    tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))
            else:
                tune.report(metrics)

    return analytic
