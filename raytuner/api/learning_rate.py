"""Before the search: the learning-rate range test of a built-in torch workload (``raytuner lr-find``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from raytuner.api.running import Overrides, SpecSource


@dataclass(frozen=True)
class LrFind:
    """What :func:`lr_find` found.

    Attributes:
        name: the experiment's name.
        config: the configuration trained (its own lr ignored).
        lrs: the lr of each step.
        losses: the smoothed training loss after each step (as many as ``lrs``).
        suggested_lr: where the smoothed loss fell fastest per log-lr.
        divergence_lr: where the loss blew up; None if it did not up to ``max_lr``.
    """

    name: str
    config: dict[str, Any]
    lrs: tuple[float, ...]
    losses: tuple[float, ...]
    suggested_lr: float
    divergence_lr: float | None

    def plot_svg(self) -> str:
        """The loss against the lr, the suggestion and the divergence marked, as SVG text."""
        from raytuner.workloads.torch.lr_find import LrFindResult
        from raytuner.workloads.torch.lr_plot import lr_find_svg

        found = LrFindResult(self.lrs, self.losses, self.suggested_lr, self.divergence_lr)
        return lr_find_svg(found, f"{self.name}: learning-rate range test")


def lr_find(
    spec: SpecSource,
    *,
    overrides: Overrides = None,
    min_lr: float = 1e-6,
    max_lr: float = 10.0,
    steps: int = 100,
) -> LrFind:
    """Train briefly while raising the learning rate exponentially, and suggest one.

    The spec's built-in torch workload trains its first point to evaluate, or a configuration
    drawn from its space with the spec's seed.

    Args:
        spec: a YAML file path, YAML text, a dict or a :class:`raytuner.Spec`.
        overrides: ``--set`` strings or a dict of dotted keys.
        min_lr: the first step's lr.
        max_lr: the last step's lr.
        steps: training steps (batches).

    Raises:
        UsageError: not ``0 < min_lr < max_lr``.
        SpecError: the spec is invalid, or its trainable is not a built-in torch workload.
    """
    import numpy as np

    from raytuner.api.running import load_spec
    from raytuner.errors import Location, SpecError, UsageError
    from raytuner.space.points import complete_point
    from raytuner.space.sample import sample
    from raytuner.spec.torch_options import TorchTrainableBase

    if min_lr <= 0 or max_lr <= min_lr:
        raise UsageError(f"expected 0 < --min-lr < --max-lr, found {min_lr:g} and {max_lr:g}")
    experiment = load_spec(spec, overrides)
    options = experiment.spec.trainable
    if not isinstance(options, TorchTrainableBase):
        raise SpecError(
            "lr-find needs a built-in torch workload (mlp_classifier, mlp_regressor, cnn_classifier)",
            Location(experiment.source, None, "trainable.builtin"),
        )
    rng = np.random.default_rng(experiment.spec.search.seed or 0)
    points = experiment.spec.search.points_to_evaluate
    config = complete_point(experiment.space, points[0], rng) if points else sample(experiment.space.root, rng)

    from raytuner.workloads.torch.lr_find import lr_range_test

    found = lr_range_test(options, config, min_lr=min_lr, max_lr=max_lr, steps=steps, base_dir=experiment.base_dir)
    return LrFind(experiment.spec.name, dict(config), found.lrs, found.losses, found.suggested_lr, found.divergence_lr)
