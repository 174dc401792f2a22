"""Going on from an experiment: :meth:`~Continuing.resume`, :meth:`~Continuing.extend` and
:meth:`~Continuing.refit`, the part of :class:`~raytuner.api.experiment.Experiment` that runs
trials again rather than reading them."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from raytuner.api.experiment import Experiment
    from raytuner.execution.events import Listener
    from raytuner.final.refit import RefitSummary


class Continuing:
    """Resume, extend and refit; :class:`~raytuner.api.experiment.Experiment` sets the fields."""

    _ref: str  # the local folder, or the URI of one on object storage
    _plain_ray: bool  # a plain Ray Tune folder, which raytuner reads but does not continue
    _trainable: Any  # the function or class object the run was given, if any

    @property
    def name(self) -> str:
        raise NotImplementedError

    @property
    def source(self) -> str:
        raise NotImplementedError

    def resume(
        self,
        *,
        trainable: Any = None,
        retry_errored: bool = False,
        address: str | None = None,
        progress: bool = True,
        verbose: bool = False,
        listener: Listener | None = None,
    ) -> Experiment:
        """Continue the interrupted experiment (``raytuner resume``) and return it.

        Args:
            trainable: the function or Trainable class object the run was given, when it was
                given one (an experiment returned by :func:`raytuner.run` remembers it).
            retry_errored: start failed trials over too.
            address: a Ray cluster to join instead of starting a local Ray.
            progress: show the live view or progress lines; False is silent.
            verbose: show Ray's own logs and progress.
            listener: receives the run's events instead of the live view (as for :func:`raytuner.run`).

        Raises:
            SpecError: the run was given a trainable object and none is known here.
            ExperimentError: nothing to resume from, or the run failed.
        """
        from raytuner.api.running import opened, with_display
        from raytuner.execution.context import RunOptions
        from raytuner.execution.runner import resume_experiment

        folder = self._continued(address)
        given = trainable if trainable is not None else self._trainable
        options = RunOptions(address=address, verbose=verbose)
        summary = with_display(
            progress,
            lambda shown: resume_experiment(folder, options, shown, retry_errored=retry_errored, trainable=given),
            listener,
        )
        return opened(summary, given)

    def extend(
        self,
        num_samples: int,
        *,
        trainable: Any = None,
        address: str | None = None,
        progress: bool = True,
        verbose: bool = False,
        listener: Listener | None = None,
    ) -> Experiment:
        """Run ``num_samples`` more trials of the completed experiment (``raytuner extend``),
        the searcher going on from what the earlier trials taught it.

        Args:
            num_samples: how many more samples.
            trainable: as for :meth:`resume`.
            address: a Ray cluster to join instead of starting a local Ray.
            progress: show the live view or progress lines; False is silent.
            verbose: show Ray's own logs and progress.
            listener: receives the run's events instead of the live view (as for :func:`raytuner.run`).

        Raises:
            UsageError: the experiment is not completed, or its search cannot take more trials.
        """
        from raytuner.api.running import opened, with_display
        from raytuner.execution.context import RunOptions
        from raytuner.execution.runner import extend_experiment

        folder = self._continued(address)
        given = trainable if trainable is not None else self._trainable
        options = RunOptions(address=address, verbose=verbose)
        summary = with_display(
            progress, lambda shown: extend_experiment(folder, num_samples, options, shown, trainable=given), listener
        )
        return opened(summary, given)

    def refit(
        self,
        *,
        epochs: int | None = None,
        overrides: Sequence[str] = (),
        trainable: Any = None,
        progress: bool = False,
        on_epoch: Callable[[Mapping[str, float]], None] | None = None,
        listener: Listener | None = None,
        address: str | None = None,
        inline: bool = False,
    ) -> RefitSummary:
        """Train the best configuration on every row the search saw and score it on the test
        split (``raytuner refit``); the model and ``metrics.json`` go to ``refit/`` in the folder
        (or the bucket), its row to ``refit.parquet``. On the Ray backend it trains as one Ray task
        with a trial's resources. Own code runs once with the best configuration as a single
        trial; its last checkpoint is kept in ``refit/``.

        Args:
            epochs: epochs to train; None: the epoch where the best trial peaked.
            overrides: ``--set`` strings for the spec the model is trained from, whose space
                is the best configuration (``"space.lr=0.01"``).
            progress: print each epoch's metrics (own code: progress lines).
            trainable: as for :meth:`resume`.
            on_epoch: called with each epoch's metrics instead of printing them (built-in workloads).
            listener: receives own code's one-trial run's events instead of the progress lines.
            address: a Ray cluster to refit on instead of a local Ray (the Ray backend).
            inline: train in this process even if the experiment ran on Ray.

        Raises:
            UsageError: several metrics, a plain Ray Tune folder, or ``address`` for a refit
                in this process.
            ExperimentError: no trial reported a finite value of the metric.
        """
        from raytuner.errors import UsageError
        from raytuner.final.refit import refit_experiment

        if self._plain_ray:
            raise UsageError(f"{self.source} is a plain Ray Tune folder: raytuner refit takes a raytuner experiment")
        if address:
            from raytuner.execution.session import enable_token_auth

            enable_token_auth()  # before anything imports Ray: it reads the mode at import

        def show(metrics: Mapping[str, float]) -> None:
            print(", ".join(f"{key} {value:.4g}" for key, value in metrics.items()))

        if listener is None and progress:
            from raytuner.cli.render import PlainLines

            listener = PlainLines(sys.stdout)
        given = trainable if trainable is not None else self._trainable
        return refit_experiment(
            self._ref,
            epochs=epochs,
            overrides=overrides,
            on_epoch=on_epoch if on_epoch is not None else (show if progress else None),
            trainable=given,
            listener=listener,
            address=address,
            inline=inline,
        )

    def _continued(self, address: str | None) -> Path:
        """The folder to run on (a working copy for object storage)."""
        from raytuner.errors import UsageError
        from raytuner.results.reader import find_experiment

        if self._plain_ray:
            raise UsageError(f"{self.name} is a plain Ray Tune folder: raytuner cannot continue it")
        if address:
            from raytuner.execution.session import enable_token_auth

            enable_token_auth()
        return find_experiment(self._ref, "runs", to_continue=True)
