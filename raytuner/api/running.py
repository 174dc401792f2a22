"""Starting experiments from Python: :func:`run` and :func:`validate` over the CLI's internals.

A spec comes as a YAML file, YAML text, a dict or a :class:`~raytuner.spec.models.Spec`; it goes
through the same validation as ``raytuner run`` (one :class:`~raytuner.errors.SpecError` naming
the key path for anything wrong). Nothing here calls ``sys.exit``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

if TYPE_CHECKING:
    from raytuner.api.experiment import Experiment
    from raytuner.execution.events import Listener
    from raytuner.execution.runner import RunSummary
    from raytuner.spec.loader import Experiment as LoadedSpec
    from raytuner.spec.models import Spec

SpecSource = Union[str, "os.PathLike[str]", Mapping[str, Any], "Spec"]
"""What :func:`run` and :func:`validate` take: a YAML file, YAML text, a dict or a Spec."""

Overrides = Sequence[str] | Mapping[str, Any] | None
"""``--set`` strings (``"search.num_samples=20"``) or a dict of dotted keys to values."""


@dataclass(frozen=True)
class Plan:
    """What ``raytuner validate`` shows, as data.

    Attributes:
        name: the experiment's name.
        spec: the resolved spec as plain data, every default filled in.
        samples: sample configurations drawn from the space.
        trials: how many trials the search starts.
        max_iterations_per_trial: the iteration cap of one trial (None: no cap known).
        max_iterations: ``trials`` times that cap (None: no cap known).
        expected_iterations: the iterations expected with early stopping (None: unknown).
        notes: remarks about the budget (a grid repeated, a time budget...).
        objectives: each metric to optimize with its mode (``min``/``max``), the primary first.
        auto: with ``search.algorithm: auto``, the searcher it starts with and why (None otherwise).
    """

    name: str
    spec: dict[str, Any]
    samples: list[dict[str, Any]]
    trials: int
    max_iterations_per_trial: int | None
    max_iterations: int | None
    expected_iterations: int | None
    notes: tuple[str, ...]
    objectives: tuple[tuple[str, str], ...] = ()
    auto: tuple[str, str] | None = None


def validate(
    spec: SpecSource,
    *,
    overrides: Overrides = None,
    name: str | None = None,
    storage: str | None = None,
    inline: bool = False,
    samples: int = 3,
) -> Plan:
    """Check a spec without starting anything and say what a run of it would do.

    Args:
        spec: a YAML file path, YAML text, a dict (``trainable: {function: obj}`` may hold the
            function or Trainable class itself) or a :class:`raytuner.Spec`.
        overrides: ``--set`` strings or a dict of dotted keys (``{"search.num_samples": 20}``).
        name: replaces the spec's ``name``.
        storage: replaces the spec's ``storage``.
        inline: validate for the inline backend (``execution.backend=inline``).
        samples: how many sample configurations to draw.

    Returns:
        The plan: resolved spec, sample configurations and the budget.

    Raises:
        SpecError: the spec is invalid; the error names the file, line and key path.
    """
    from raytuner.search.auto import choose
    from raytuner.search.preview import budget, sample_configs
    from raytuner.spec.models import Algorithm

    experiment = load_spec(spec, overrides, name=name, storage=storage, inline=inline)
    plan = budget(experiment)
    pick = choose(experiment) if experiment.spec.search.algorithm is Algorithm.AUTO else None
    return Plan(
        name=experiment.spec.name,
        spec=experiment.resolved(),
        samples=sample_configs(experiment, samples),
        trials=plan.trials,
        max_iterations_per_trial=plan.max_iterations_per_trial,
        max_iterations=plan.max_iterations,
        expected_iterations=plan.expected_iterations,
        notes=tuple(plan.notes),
        objectives=tuple((o.metric, o.mode.value) for o in experiment.spec.objectives),
        auto=None if pick is None else (pick.algorithm.value, pick.reason),
    )


def run(
    spec: SpecSource,
    *,
    overrides: Overrides = None,
    name: str | None = None,
    storage: str | None = None,
    address: str | None = None,
    inline: bool = False,
    progress: bool = True,
    cpus: int | None = None,
    gpus: int | None = None,
    verbose: bool = False,
    listener: Listener | None = None,
    dashboard: bool = False,
) -> Experiment:
    """Run an experiment to its end, as ``raytuner run`` does, and return it.

    Args:
        spec: a YAML file path, YAML text, a dict or a :class:`raytuner.Spec`. In a dict,
            ``trainable: {function: obj}`` may hold a function or ``ray.tune.Trainable`` class
            defined anywhere (a notebook, a script's ``__main__``, inside a function): it is
            shipped to Ray's workers by value. Its spec.yaml names it ``<object module.name>``:
            such an experiment is resumed from Python (:meth:`Experiment.resume`), not the CLI.
        overrides: ``--set`` strings or a dict of dotted keys (``{"search.num_samples": 20}``).
        name: replaces the spec's ``name``.
        storage: replaces the spec's ``storage`` (a folder or an ``s3://``/``gs://`` URI).
        address: a Ray cluster to join instead of starting a local Ray.
        inline: run the trials in threads of this process, without Ray.
        progress: show the live view (a terminal) or progress lines, then the best trials;
            False runs silently.
        cpus: CPUs of the local Ray this run starts (default: all).
        gpus: GPUs of the local Ray this run starts (default: all; beyond real ones, logical).
        verbose: show Ray's own logs and progress.
        listener: receives the run's events (``handle(event, book)``) instead of the live
            view; ``progress`` is then ignored and nothing is printed.
        dashboard: also serve ``raytuner dashboard`` of the storage root on loopback, from a
            thread of this process, while it lasts (``raytuner run --dashboard``); its URL goes to stderr.

    Returns:
        The experiment; ``state`` says whether it completed or was interrupted (Ctrl-C), and
        :attr:`~raytuner.Experiment.last_run` what this run did.

    Raises:
        SpecError: the spec is invalid (nothing was started or written).
        MetricNotReportedError: the trainable never reported the spec's metric.
        ExperimentError: the run failed.
    """
    from raytuner.execution.context import RunOptions
    from raytuner.execution.runner import run_experiment

    if address:
        from raytuner.execution.session import enable_token_auth

        enable_token_auth()  # before user code imports Ray while the spec is validated
    experiment = load_spec(spec, overrides, name=name, storage=storage, inline=inline)
    trainable = _object_trainable(experiment)
    if dashboard:
        from raytuner.dashboard import start_beside

        start_beside(experiment.spec.storage, lambda served: print(f"dashboard: {served.url}", file=sys.stderr, flush=True))
    options = RunOptions(address=address, verbose=verbose, num_cpus=cpus, num_gpus=gpus)
    summary = with_display(progress, lambda given: run_experiment(experiment, options, given), listener)
    return opened(summary, trainable)


def load_spec(
    spec: SpecSource,
    overrides: Overrides = None,
    *,
    name: str | None = None,
    storage: str | None = None,
    inline: bool = False,
) -> LoadedSpec:
    """The validated experiment of any spec form :func:`run` takes.

    Raises:
        SpecError: the spec is invalid.
    """
    from raytuner.spec.loader import build_experiment, load_experiment
    from raytuner.spec.models import Spec
    from raytuner.spec.yaml_lines import LineMap, load_yaml_text

    flags = [*override_strings(overrides), *(["execution.backend=inline"] if inline else [])]
    if isinstance(spec, Spec):
        data = spec.model_dump(mode="json", by_alias=True)  # the YAML's form: Enums as their values
        function = getattr(spec.trainable, "function", None)
        if function is not None and not isinstance(function, str):
            data["trainable"]["function"] = function  # the object itself, not its <object ...> stand-in
        spec = data
    if isinstance(spec, Mapping):
        return build_experiment(dict(spec), LineMap("<dict>"), flags, name=name, storage=storage, base_dir=Path.cwd())
    if isinstance(spec, str) and _is_yaml_text(spec):
        data, lines = load_yaml_text(spec, "<text>")
        return build_experiment(data, lines, flags, name=name, storage=storage, base_dir=Path.cwd())
    return load_experiment(Path(spec), flags, name=name, storage=storage)


def _is_yaml_text(text: str) -> bool:
    """A string with a line break or a ``key:`` is YAML text; anything else a file path."""
    return "\n" in text or (":" in text and not Path(text).exists() and not text.endswith((".yaml", ".yml")))


def override_strings(overrides: Overrides) -> list[str]:
    """``--set`` strings from either form :func:`run` takes (dict values written as JSON, which YAML reads)."""
    if overrides is None:
        return []
    if isinstance(overrides, Mapping):
        return [f"{key}={json.dumps(value)}" for key, value in overrides.items()]
    if isinstance(overrides, str):
        return [overrides]
    return list(overrides)


def _object_trainable(experiment: LoadedSpec) -> Any:
    """The trainable object a dict spec carried (None for one named by ``module:name``)."""
    function = getattr(experiment.spec.trainable, "function", None)
    return None if function is None or isinstance(function, str) else function


def with_display(progress: bool, start: Any, listener: Listener | None = None) -> RunSummary:
    """``start(listener)`` with the CLI's live view (or progress lines), then its summary;
    silent without ``progress``; a ``listener`` given is used as it is."""
    if listener is not None:
        given: RunSummary = start(listener)
        return given
    if not progress:
        from raytuner.execution.events import NullListener

        summary: RunSummary = start(NullListener())
        return summary
    from raytuner.cli.render import LiveView, choose_listener, print_summary, stdout_console

    console = stdout_console()
    shown: Listener = choose_listener(console, False, False)
    try:
        summary = start(shown)
    finally:
        if isinstance(shown, LiveView):
            shown.close()
    print_summary(console, summary)
    return summary


def opened(summary: RunSummary, trainable: Any) -> Experiment:
    """The :class:`Experiment` a run left, remembering the trainable object it was given."""
    from raytuner.api.experiment import Experiment

    experiment = Experiment(summary.location, trainable=trainable)
    experiment._last_run = summary
    return experiment
