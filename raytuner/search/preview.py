"""What ``raytuner validate`` shows: sample configurations and the budget of a spec."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from raytuner.search import total_trials
from raytuner.space.model import lookalikes
from raytuner.space.points import complete_point
from raytuner.space.sample import expand
from raytuner.spec.loader import Experiment
from raytuner.spec.models import Algorithm, AnalyticTrainable, AshaScheduler, HyperbandScheduler, Nsga2Search


@dataclass(frozen=True)
class Budget:
    trials: int
    max_iterations_per_trial: int | None
    max_iterations: int | None
    expected_iterations: int | None
    notes: tuple[str, ...]


def sample_configs(experiment: Experiment, n: int) -> list[dict[str, Any]]:
    """The first ``n`` configurations random/grid search would draw (HyperOpt starts at random too)."""
    search = experiment.spec.search
    rng = np.random.default_rng(search.seed)
    configs = [complete_point(experiment.space, p, rng) for p in search.points_to_evaluate[:n]]
    variants = expand(experiment.space.root, search.algorithm is Algorithm.GRID)
    i = 0
    while len(configs) < min(n, total_trials(experiment)):
        configs.append(dict(variants[i % len(variants)](rng)))
        i += 1
    return configs


def budget(experiment: Experiment) -> Budget:
    spec = experiment.spec
    trials = total_trials(experiment)
    limits = []
    if spec.stop.iterations is not None:
        limits.append(spec.stop.iterations)
    if isinstance(spec.trainable, AnalyticTrainable):
        limits.append(spec.trainable.iterations)
    max_epochs = getattr(spec.trainable, "max_epochs", None)
    if isinstance(max_epochs, int):
        limits.append(max_epochs)
    scheduler = spec.scheduler
    if isinstance(scheduler, (AshaScheduler, HyperbandScheduler)) and scheduler.time_attr == "training_iteration":
        limits.append(int(scheduler.max_t))
    per_trial = min(limits) if limits else None
    notes = lookalikes(experiment.space)
    if spec.search.algorithm is Algorithm.HYPEROPT:
        from raytuner.space.hyperopt import notes as hyperopt_notes

        notes.extend(hyperopt_notes(experiment.space))
    if isinstance(spec.search, Nsga2Search) and (note := _nsga2_note(trials, spec.search.population_size)) is not None:
        notes.append(note)
    mutations = getattr(scheduler, "hyperparam_mutations", None) or getattr(scheduler, "hyperparam_bounds", None)
    for key in mutations or {}:
        if key not in spec.space:
            notes.append(
                f"scheduler mutates '{key}', which is not in space: each trial starts from a sample of its "
                "mutation spec (as in Ray)"
            )
    expected = None
    if per_trial is not None:
        expected = trials * per_trial
        if isinstance(scheduler, AshaScheduler) and scheduler.time_attr == "training_iteration":
            expected = _asha_iterations(trials, scheduler.grace_period, scheduler.reduction_factor, per_trial)
            notes.append("expected iterations assume ASHA keeps 1/reduction_factor of trials at each rung")
    return Budget(trials, per_trial, None if per_trial is None else trials * per_trial, expected, tuple(notes))


def _nsga2_note(trials: int, population: int) -> str | None:
    """NSGA-II draws its first generation at random: with under two generations it barely evolves."""
    if trials >= 2 * population:
        return None
    bred = max(0, trials - population)
    what = "every trial is random search" if bred == 0 else f"only {bred} are bred (under 2 generations: close to random search)"
    return (
        f"nsga2 runs {trials} trials with population_size {population}: the first generation ({population} trials) "
        f"is drawn at random, so {what}; set num_samples to at least {2 * population} "
        f"or population_size to at most {max(2, trials // 2)}"
    )


def _asha_iterations(trials: int, grace: float, eta: float, max_t: int) -> int:
    total = 0.0
    alive = float(trials)
    previous = 0.0
    rung = float(grace)
    while rung < max_t:
        total += alive * (rung - previous)
        previous, rung, alive = rung, rung * eta, alive / eta
    total += alive * (max_t - previous)
    return int(round(total))
