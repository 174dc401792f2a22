"""``execution.backend: ray``: each trial a Ray actor, on a private local Ray or a cluster."""

from __future__ import annotations

import contextlib
import inspect
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from raytuner.errors import ExperimentError, SearchStalledError
from raytuner.execution import ray_state
from raytuner.execution.context import ResumeOptions, RunContext, RunOptions, run_parts
from raytuner.execution.run_record import started_event
from raytuner.results import layout
from raytuner.results.folder import Folder
from raytuner.results.records import TrialStatus

INLINE_HINT_TRIALS = 8  # finished trials before a run's trials say what they cost
INLINE_HINT_S = 2.0  # a median trial this short is mostly Ray's per-trial cost


class RayBackend:
    """Trials as Ray actors under Ray Tune's ``Tuner``; a resume goes through ``Tuner.restore``."""

    def check(self, options: RunOptions, *, new_folder: bool) -> None:
        """A cluster that cannot be joined leaves no folder."""
        from raytuner.execution.session import RayKind, check_reachable, cluster_address, ray_kind

        joining = cluster_address(options.address)
        if new_folder and joining and ray_kind(options.address) is RayKind.JOINED:
            check_reachable(joining, verbose=options.verbose)

    def fit(self, run: RunContext) -> int:
        from raytuner.execution.preflight import check_before_start, trial_resources
        from raytuner.execution.session import ray_session, tune_environment
        from raytuner.workloads.function import search_path

        experiment, options, folder, book, resume = run.experiment, run.options, run.folder, run.book, run.resume
        spec = experiment.spec
        wanted = trial_resources(spec.resources.cpu, spec.resources.gpu, spec.resources.custom)
        if _starts_private_ray(options.address):
            check_before_start(wanted, options.num_cpus, options.num_gpus, experiment.source)
        with tune_environment(options.verbose), ray_session(
            options.address,
            verbose=options.verbose,
            python_path=search_path(experiment.base_dir),
            num_cpus=options.num_cpus,
            num_gpus=options.num_gpus,
        ) as session:
            import ray

            from raytuner.execution.session import leave_job_working_dir

            leave_job_working_dir(folder.parent)
            from ray import tune

            from raytuner.execution.devices import DeviceSetup, local_gpu_ids
            from raytuner.execution.extension import WidenedSearch
            from raytuner.execution.loggers import logger_callbacks
            from raytuner.execution.pending import awaited_node
            from raytuner.execution.preflight import check_placeable, local_single_node, preflight
            from raytuner.execution.retention import DeferredDrops
            from raytuner.execution.search_watch import TrialsFeed, WatchedSearch, watched
            from raytuner.search import create_search
            from raytuner.search.population import PopulationSearch

            nodes = ray.nodes()
            awaited = check_placeable(wanted, nodes, experiment.source, local=session.private)
            plan = create_search(experiment)
            spread = local_single_node(nodes, joined=not (session.private or session.reused))
            placement = preflight(
                wanted,
                nodes,
                max_concurrent=spec.search.max_concurrent,
                total_trials=plan.total_trials,
                spread=spread,
                requested_gpus=options.num_gpus if session.private else None,
            )
            parts = run_parts(run, plan.total_trials)
            parts.bookkeeper.drops = DeferredDrops()  # Ray keeps every checkpoint: raytuner deletes those the spec drops
            widen = resume is not None and not isinstance(plan.searcher, PopulationSearch)  # a population has its size
            search = WidenedSearch(plan.searcher, plan.total_trials) if widen else watched(plan.searcher)
            feed = [TrialsFeed(search)] if isinstance(search, WatchedSearch) else []
            cluster = ray.cluster_resources()
            # no live node holds a trial yet; the autoscaler can start this node type (None: one does)
            awaits = None if awaited is None else awaited_node(wanted, awaited)
            told = plan.told if resume is None else 0  # a restored searcher already learned them
            total = plan.total_trials
            started = started_event(experiment, run.location, total, session.address, cluster, placement, awaits, told)
            run.listener.handle(started, book)
            parts.bookkeeper.search_decisions = plan.decisions
            parts.bookkeeper.note_search_decisions()
            resources: dict[str, Any] = {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu, **spec.resources.custom}
            devices = DeviceSetup.start(spec.resources.gpu, local_gpu_ids(int(placement.cluster_gpus)), spread)
            trainable = tune.with_resources(devices.wrap(parts.build.trainable), resources)
            run_config = tune.RunConfig(
                name=folder.name,
                storage_path=run.bucket.parent_uri if run.bucket is not None else str(folder.parent),
                verbose=1 if options.verbose else 0,
                stop=parts.stopper,
                callbacks=[parts.bookkeeper, *feed, *devices.callbacks(book), *logger_callbacks(spec, folder)],
                failure_config=tune.FailureConfig(max_failures=spec.failure.max_retries, fail_fast=spec.failure.fail_fast),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=None, checkpoint_at_end=_saves_at_end(parts.build.trainable)),
            )
            if resume is None:
                tuner = tune.Tuner(
                    trainable,
                    tune_config=tune.TuneConfig(
                        search_alg=search,
                        scheduler=parts.scheduler,
                        num_samples=plan.total_trials,
                        reuse_actors=spec.execution.reuse_actors and parts.build.reusable,
                        time_budget_s=spec.search.time_budget_s,
                    ),
                    run_config=run_config,
                )
            else:
                tuner = _restore(tune, folder, run.bucket, trainable, run_config, resume, parts.bookkeeper, search)
            try:
                with _pending_trials(placement.trials_at_once), ray_state.watching_restore() as watch:
                    parts.bookkeeper.restore_watch = watch if resume is not None else None
                    tuner.fit()
            except Exception as exc:
                if resume is None or watch.failure is None:
                    raise
                raise ExperimentError(
                    f"{folder.name}: Ray could not restore its saved state ({watch.failure}); nothing was run "
                    "and the tables are as they were (raytuner show reads them; --debug shows Ray's traceback)"
                ) from exc
            finally:
                devices.close()
            if isinstance(search, WatchedSearch) and search.stalled is not None:
                raise SearchStalledError(f"{folder.name}: {search.stalled}")
            return plan.total_trials

    def hint(self, run: RunContext) -> str | None:
        """Suggest ``--inline`` after a private-Ray run of short trials that could have run inline."""
        from raytuner.spec.checks import inline_obstacle

        options, folder = run.options, run.folder
        if options.address or options.num_gpus:
            return None
        if inline_obstacle(run.spec) is not None or not (folder / layout.TRIALS).is_file():
            return None
        import pyarrow.parquet as pq

        trials = pq.read_table(folder / layout.TRIALS, columns=["status", "time_total_s"]).to_pylist()
        ended = {status.value for status in TrialStatus if status.finished}
        times = sorted(t["time_total_s"] for t in trials if t["status"] in ended and (t["time_total_s"] or 0) > 0)
        if len(times) < INLINE_HINT_TRIALS:
            return None
        median = times[len(times) // 2]
        if median >= INLINE_HINT_S:
            return None
        return (
            f"trials took a median {median:.2g} s, less than Ray's cost per trial: raytuner run --inline runs them "
            "in this process (docs/spec.md, execution backends)"
        )


def _saves_at_end(trainable: Any) -> bool:
    """Whether Ray saves each trial's last state (``checkpoint_at_end``; DeferredDrops applies
    the spec's keep policy to what Ray keeps). Ray's default does so for every class trainable,
    and a class without ``save_checkpoint`` then failed every trial at its end with
    NotImplementedError, after all its reports."""
    from ray.tune import Trainable

    if not (inspect.isclass(trainable) and issubclass(trainable, Trainable)):
        return False
    return trainable.save_checkpoint is not Trainable.save_checkpoint


def _starts_private_ray(address: str | None) -> bool:
    """Whether :func:`ray_session` will start a Ray of this run's own (not join one, nor reuse
    the Ray already running in this process)."""
    from raytuner.execution.session import RayKind, ray_kind

    return ray_kind(address) is RayKind.PRIVATE


@contextlib.contextmanager
def _pending_trials(at_once: int) -> Iterator[None]:
    """Let Ray Tune start as many trials as can run at once.

    Ray Tune keeps one trial pending at a time for any searcher other than its own
    BasicVariantGenerator unless the searcher is wrapped in a ConcurrencyLimiter; with trials
    that each wait for an actor, that ran raytuner's trials one after another on a machine
    with room for several. TUNE_MAX_PENDING_TRIALS_PG (read when the Tuner starts) raises it
    to the number of trials the cluster can hold at once; a value the user set is kept.
    """
    if "TUNE_MAX_PENDING_TRIALS_PG" in os.environ:
        yield
        return
    os.environ["TUNE_MAX_PENDING_TRIALS_PG"] = str(max(1, at_once))
    try:
        yield
    finally:
        os.environ.pop("TUNE_MAX_PENDING_TRIALS_PG", None)


def _restore(
    tune: Any,
    folder: Path,
    bucket: Folder | None,
    trainable: Any,
    run_config: Any,
    resume: ResumeOptions,
    keeper: Any,
    search: Any,
) -> Any:
    """Ray's Tuner.restore, with this run's callbacks and stopper instead of the pickled ones.

    Ray restores the searcher's and scheduler's state from the experiment folder; the run
    config it pickled holds the first run's bookkeeping, which must not be reused. The
    searcher is built again from the saved spec (Ray restores its state into it), so a spec
    widened by ``raytuner extend`` raises the sample count Ray saved. Ray's ``Tuner.restore``
    takes neither a run config nor a searcher: they are set on its private tuner
    (docs/architecture.md, "Ray internals raytuner sets").
    """
    path = bucket.uri if bucket is not None else str(folder)
    if bucket is None:
        ray_state.repair(folder)  # a file Ray's copy left cut short (a full disk) gets its whole copy back
    if not tune.Tuner.can_restore(path):
        raise ExperimentError(
            f"{folder.name}: Ray saved no experiment state to resume from (the run stopped before its first "
            "save); start it again with raytuner run"
        )
    tuner = tune.Tuner.restore(
        path, trainable=trainable, resume_unfinished=True, restart_errored=resume.retry_errored
    )
    if resume.retry_errored:  # Ray starts each failed trial over as a new trial (a new id): the failed ones go
        for record in [r for r in keeper.book.trials.values() if r.status is TrialStatus.ERROR]:
            del keeper.book.trials[record.trial_id]
            keeper.store.forget(record.trial_id)
    internal = tuner._local_tuner
    internal._run_config = run_config
    internal._tune_config.search_alg = search
    scheduler = internal._tune_config.scheduler
    keeper.decisions = getattr(scheduler, "drain", None)
    keeper.early_stopped = getattr(scheduler, "early_stopped", keeper.early_stopped)
    return tuner
