"""The Ray session a run uses: a private local Ray on 127.0.0.1, or an existing cluster.

A private Ray is started for the run and shut down after it. ``--address`` (or
``RAY_ADDRESS``) joins an existing cluster instead, which is left running. A Ray already
initialised in this process (tests, notebooks) is used as it is and left running.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Ray reads these when it builds the run; raytuner keeps its own records and display.
QUIET_ENV = {
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",  # no per-trial CSV/JSON/TensorBoard files
    "RAY_AIR_NEW_OUTPUT": "0",  # no Ray progress tables (verbose=0 does the rest)
    "TUNE_DISABLE_STRICT_METRIC_CHECKING": "1",  # raytuner checks the metric itself, clearly
    "RAY_DEDUP_LOGS": "1",
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "100000",
}


@dataclass(frozen=True)
class Session:
    address: str
    private: bool
    reused: bool


# Set in this process during a run by the trackers' own setup (MLflow's set_tracking_uri writes
# MLFLOW_TRACKING_URI): left behind, the next run in the same process would log into this run's
# store as if the user had chosen it. Restored with the switches below.
TRACKER_ENV = ("MLFLOW_TRACKING_URI",)


@contextmanager
def tune_environment(verbose: bool) -> Iterator[None]:
    """Set Ray Tune's environment switches for the run, and restore them (and what the
    trackers set, :data:`TRACKER_ENV`) after."""
    saved = {key: os.environ.get(key) for key in (*QUIET_ENV, *TRACKER_ENV)}
    os.environ.update(QUIET_ENV)
    loggers = [logging.getLogger(name) for name in ("ray", "ray.tune", "ray.train", "ray.air")]
    levels = [logger.level for logger in loggers]
    if not verbose:
        for logger in loggers:
            logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            if not verbose:
                warnings.simplefilter("ignore")
            yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def enable_token_auth() -> None:
    """Send Ray's auth token when joining a cluster, if the user has one.

    Ray 2.60 clusters started with ``ray start`` require a token by default, but a driver
    only sends it when RAY_AUTH_MODE=token is set; without it, joining fails with
    InvalidAuthToken. The token comes from RAY_AUTH_TOKEN or ~/.ray/auth_token.
    """
    if os.environ.get("RAY_AUTH_MODE"):
        return
    token_file = os.environ.get("RAY_AUTH_TOKEN_PATH") or os.path.expanduser("~/.ray/auth_token")
    if os.environ.get("RAY_AUTH_TOKEN") or os.path.isfile(token_file):
        os.environ["RAY_AUTH_MODE"] = "token"


def cluster_runtime_env(python_path: Sequence[str]) -> dict[str, object]:
    """What a cluster's workers get: the working directory, and the import path inside it.

    Ray uploads the working directory (without the files .gitignore names) and starts each
    worker in its copy; folders inside it go on PYTHONPATH relative, so they resolve there.
    """
    cwd = os.path.realpath(os.getcwd())
    paths = []
    for entry in (part for joined in python_path for part in joined.split(os.pathsep) if part):
        real = os.path.realpath(entry)
        inside = real == cwd or real.startswith(cwd + os.sep)
        paths.append(os.path.relpath(real, cwd) if inside else entry)
    env: dict[str, object] = {"env_vars": {"PYTHONPATH": os.pathsep.join(paths)}}
    if not _job_working_dir():
        env["working_dir"] = cwd
    return env


def leave_job_working_dir(to: Path) -> None:
    """Move a Ray job's driver out of the job's copy of the working directory, into ``to``.

    Seen with Ray 2.60 on a two-node cluster: the node's runtime-env agent can delete that copy
    while the job's driver still runs in it (its reference to the package is dropped once the
    first worker that used it exits). Everything the driver needs from there is loaded by now;
    Ray Tune itself needs a current directory that exists (it resolves relative paths on object
    storage with os.path.relpath). Workers keep their own copy.
    """
    if _job_working_dir():
        os.chdir(to)


def _job_working_dir() -> str | None:
    """The working directory a Ray job (``raytuner submit``) runs in, when this driver is one.

    Its workers already start in a copy of it. Uploading it again from here would replace the
    job's own copy in the job's runtime env, and Ray would then delete that copy, which is
    this driver's current directory, while the run goes on.
    """
    raw = os.environ.get("RAY_JOB_CONFIG_JSON_ENV_VAR")  # set by Ray's job supervisor for the job's driver
    if not raw:
        return None
    try:
        runtime_env = json.loads(raw).get("runtime_env") or {}
    except (ValueError, AttributeError):
        return None
    working_dir = runtime_env.get("working_dir") if isinstance(runtime_env, dict) else None
    return working_dir if isinstance(working_dir, str) else None


@contextmanager
def ray_session(
    address: str | None,
    *,
    verbose: bool,
    python_path: Sequence[str] = (),
    num_cpus: int | None = None,
    num_gpus: int | None = None,
) -> Iterator[Session]:
    """Start or join Ray for one run.

    Args:
        address: a Ray cluster to join; None starts a private local Ray (unless
            ``RAY_ADDRESS`` is set).
        verbose: show Ray's own logs and worker output.
        python_path: folders workers import user modules from.
        num_cpus: size of a private Ray (default: every core).
        num_gpus: GPUs of a private Ray (default: those detected).
    """
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address:
        enable_token_auth()  # before Ray is imported: it reads the mode at import

    import ray

    if ray.is_initialized():
        yield Session(address="(this process)", private=False, reused=True)
        return
    existing = os.environ.get("PYTHONPATH", "")
    paths = [*python_path, *([existing] if existing else [])]
    runtime_env: dict[str, object] | None = {"env_vars": {"PYTHONPATH": os.pathsep.join(paths)}} if paths else None
    if address:
        runtime_env = cluster_runtime_env(paths)
    common: dict[str, Any] = {
        "logging_level": logging.INFO if verbose else logging.ERROR,
        "log_to_driver": verbose,
        "runtime_env": runtime_env,
    }
    if address:
        ray.init(address=address, **common)
    else:
        ray.init(
            _node_ip_address="127.0.0.1",
            include_dashboard=False,
            num_cpus=num_cpus,
            num_gpus=num_gpus,
            **common,
        )
    try:
        yield Session(address=address or "local", private=not address, reused=False)
    finally:
        ray.shutdown()
