"""Learning-rate schedules: factors per epoch, warmup, plateau state."""

from __future__ import annotations

import math
from typing import Any

import pytest

from raytuner.workloads.torch.hyperparams import ScheduleName, parse_config
from raytuner.workloads.torch.schedules import build_schedule


def _schedule(config: Any, total: int = 10) -> Any:
    return build_schedule(parse_config({"schedule": config}).schedule, total)


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ("constant", [1, 1, 1, 1]),
        ({"name": "exponential", "gamma": 0.5}, [1, 0.5, 0.25, 0.125]),
        ({"name": "step", "step_size": 2, "gamma": 0.1}, [1, 1, 0.1, 0.1]),
        ({"name": "piecewise", "milestones": [1, 3], "gamma": 0.5}, [1, 0.5, 0.5, 0.25]),
        ({"name": "polynomial", "power": 1.0}, [1, 0.75, 0.5, 0.25]),
        ({"name": "cosine"}, [1, (1 + math.cos(math.pi / 4)) / 2, 0.5, (1 + math.cos(3 * math.pi / 4)) / 2]),
        ({"name": "cosine", "warmup_epochs": 2}, [1 / 3, 2 / 3, 1, (1 + math.cos(math.pi / 4)) / 2]),
        ({"name": "step", "step_size": 1, "gamma": 0.5, "warmup_epochs": 1}, [0.5, 1, 0.5, 0.25]),
    ],
)
def test_factors(config: Any, expected: list[float]) -> None:
    schedule = _schedule(config, total=4 + (config.get("warmup_epochs", 0) if isinstance(config, dict) else 0))
    assert [schedule.factor(epoch) for epoch in range(4)] == pytest.approx(expected)


def test_every_schedule_name_has_a_factory() -> None:
    from raytuner.workloads.torch.schedules import SCHEDULES

    assert set(SCHEDULES) == set(ScheduleName)


def test_plateau_cuts_after_patience_and_exhausts_below_one_1024th() -> None:
    schedule = _schedule({"name": "plateau", "factor": 0.5, "patience": 2})
    factors = []
    for epoch in range(40):
        schedule.observe(epoch, 1.0)  # never improves after the first epoch
        factors.append(schedule.factor(epoch + 1))
        if schedule.exhausted:
            break
    # First epoch sets the best; then every 3rd stalled epoch (patience 2) halves the lr.
    assert factors[:7] == [1, 1, 1, 0.5, 0.5, 0.5, 0.25]
    assert factors[-1] == 0.5**11 and factors[-2] == 0.5**10
    assert len(factors) == 1 + 3 * 11


def test_plateau_improvement_resets_patience_and_state_round_trips() -> None:
    schedule = _schedule({"name": "plateau", "factor": 0.1, "patience": 1})
    for epoch, loss in enumerate([1.0, 1.0, 1.0, 0.5, 0.5]):
        schedule.observe(epoch, loss)
    assert schedule.factor(5) == pytest.approx(0.1)
    copy = _schedule({"name": "plateau", "factor": 0.1, "patience": 1})
    copy.load_state_dict(schedule.state_dict())
    for target in (schedule, copy):
        target.observe(5, 0.5)
    assert copy.factor(6) == schedule.factor(6) == pytest.approx(0.01)
