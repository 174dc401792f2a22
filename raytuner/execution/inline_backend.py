"""``execution.backend: inline``: the run's parts handed to :class:`~raytuner.execution.inline.InlineExecutor`."""

from __future__ import annotations

import os

from raytuner.execution.context import RunContext, RunOptions, run_parts
from raytuner.execution.inline import InlineExecutor, InlineSetup


class InlineBackend:
    """``execution.backend: inline``: the trials in threads of this process, no Ray started."""

    def check(self, options: RunOptions, *, new_folder: bool) -> None:
        """Refuse what asks for a Ray: a cluster to join, GPUs."""
        from raytuner.errors import UsageError

        if options.address:
            raise UsageError(
                f"execution.backend is inline (trials run in this process), but a Ray cluster was given "
                f"({options.address}, from --address or RAY_ADDRESS): drop one of them"
            )
        if options.num_gpus:
            raise UsageError("execution.backend is inline, which runs trials on CPUs only: drop --gpus")

    def fit(self, run: RunContext) -> int:
        from raytuner.execution.gpus import GpuInventory, plan_placement
        from raytuner.execution.retention import Retention
        from raytuner.execution.run_record import started_event
        from raytuner.search import create_search

        experiment, folder, book, resume = run.experiment, run.folder, run.book, run.resume
        spec = experiment.spec
        cpus = float(run.options.num_cpus or os.cpu_count() or 1)
        plan = create_search(experiment)
        wanted = {"CPU": spec.resources.cpu}
        placement = plan_placement(
            wanted,
            [{"Alive": True, "Resources": {"CPU": cpus}}],
            inventory=GpuInventory((), "none"),
            max_concurrent=spec.search.max_concurrent,
            total_trials=plan.total_trials,
            spread=False,
        )
        parts = run_parts(run, plan.total_trials)
        bookkeeper = parts.bookkeeper
        bookkeeper.pending_watch = None  # no trial waits for resources here: each starts when a thread is free
        setup = InlineSetup(
            searcher=plan.searcher,
            scheduler=parts.scheduler,
            stopper=parts.stopper,
            bookkeeper=bookkeeper,
            trainable=parts.build.trainable,
            label=parts.build.label,
            total_trials=plan.total_trials,
            at_once=max(1, placement.trials_at_once),
            cpu=spec.resources.cpu,
            max_retries=spec.failure.max_retries,
            fail_fast=spec.failure.fail_fast,
            retention=Retention.of(spec),
            time_budget_s=spec.search.time_budget_s,
        )
        executor = InlineExecutor(setup, folder, book, run.store)
        if resume is not None:
            executor.restore(resume.retry_errored)
            bookkeeper.early_stopped = getattr(setup.scheduler, "early_stopped", bookkeeper.early_stopped)
        told = plan.told if resume is None else 0  # a restored searcher already learned them
        started = started_event(experiment, run.location, plan.total_trials, "inline", {"CPU": cpus}, placement, None, told)
        run.listener.handle(started, book)
        bookkeeper.search_decisions = plan.decisions
        bookkeeper.note_search_decisions()
        executor.run()
        return plan.total_trials

    def hint(self, run: RunContext) -> str | None:
        return None
