"""The Ray session a run uses: a private local Ray on 127.0.0.1, or an existing cluster.

A private Ray is started for the run and shut down after it. ``--address`` (or
``RAY_ADDRESS``) joins an existing cluster instead, which is left running. A Ray already
initialised in this process (tests, notebooks) is used as it is and left running.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from raytuner.errors import ExperimentError, UsageError, is_storage_full

# Ray reads these when it builds the run; raytuner keeps its own records and display.
QUIET_ENV = {
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",  # no per-trial CSV/JSON/TensorBoard files
    "RAY_AIR_NEW_OUTPUT": "0",  # no Ray progress tables (verbose=0 does the rest)
    "TUNE_DISABLE_STRICT_METRIC_CHECKING": "1",  # raytuner checks the metric itself, clearly
    "RAY_DEDUP_LOGS": "1",
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "100000",
}
# Ray Tune logs each failed trial's traceback at ERROR unless this is "0" (off without -v)
TRIAL_ERRORS_ENV = "TUNE_PRINT_ALL_TRIAL_ERRORS"


@dataclass(frozen=True)
class Session:
    address: str
    private: bool
    reused: bool


class RayKind(Enum):
    """Which Ray a run uses."""

    REUSED = "reused"  # a Ray already initialised in this process (tests, notebooks), left running
    JOINED = "joined"  # a cluster named by --address or RAY_ADDRESS, left running
    PRIVATE = "private"  # a local Ray of the run's own, on 127.0.0.1, shut down after


def ray_kind(address: str | None) -> RayKind:
    """The one rule for which Ray :func:`ray_session` uses; it does not import Ray."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        return RayKind.REUSED
    if cluster_address(address):
        return RayKind.JOINED
    return RayKind.PRIVATE


def cluster_address(address: str | None) -> str | None:
    """The cluster to join: ``--address``, else ``RAY_ADDRESS``, else none (so also for Ray's
    ``local``, which asks for a Ray of the run's own: the private one, on 127.0.0.1)."""
    found = address or os.environ.get("RAY_ADDRESS") or None
    return None if found == "local" else found


# Set in this process during a run by the trackers' own setup (MLflow's set_tracking_uri writes
# MLFLOW_TRACKING_URI): left behind, the next run in the same process would log into this run's
# store as if the user had chosen it. Restored with the switches below.
TRACKER_ENV = ("MLFLOW_TRACKING_URI",)


@contextmanager
def tune_environment(verbose: bool) -> Iterator[None]:
    """Set Ray Tune's environment switches for the run, and restore them (and what the
    trackers set, :data:`TRACKER_ENV`) after."""
    saved = {key: os.environ.get(key) for key in (*QUIET_ENV, *TRACKER_ENV, TRIAL_ERRORS_ENV)}
    os.environ.update(QUIET_ENV)
    loggers = [logging.getLogger(name) for name in ("ray", "ray.tune", "ray.train", "ray.air")]
    levels = [logger.level for logger in loggers]
    summary = logging.getLogger("ray.tune.tune")
    controller = logging.getLogger("ray.tune.execution.tune_controller")
    if not verbose:
        # a failed trial is one line of raytuner's; its traceback is in error.txt in its folder
        os.environ[TRIAL_ERRORS_ENV] = "0"
        summary.addFilter(_drop_incomplete_summary)
        controller.addFilter(_drop_storage_full)
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
        summary.removeFilter(_drop_incomplete_summary)
        controller.removeFilter(_drop_storage_full)


def _drop_incomplete_summary(record: logging.LogRecord) -> bool:
    """Ray Tune's closing "Trials did not complete: [...]": raytuner's summary counts them."""
    return not str(record.msg).startswith("Trials did not complete")


def _drop_storage_full(record: logging.LogRecord) -> bool:
    """Ray Tune's traceback of a callback that found the storage full: the run stops, and
    raytuner says so in one line naming the storage."""
    return not (record.exc_info and is_storage_full(record.exc_info[1]))


def enable_token_auth() -> None:
    """Send Ray's auth token when joining a cluster, if the user has one.

    Ray 2.60 clusters started with ``ray start`` require a token by default, but a driver
    only sends it when RAY_AUTH_MODE=token is set; without it, joining fails with
    InvalidAuthToken. The token comes from RAY_AUTH_TOKEN or ~/.ray/auth_token.
    """
    if os.environ.get("RAY_AUTH_MODE"):
        return
    if has_token():
        os.environ["RAY_AUTH_MODE"] = "token"


TOKEN_FIX = (
    "set RAY_AUTH_TOKEN, or write the cluster's token to ~/.ray/auth_token (`ray get-auth-token` on the head prints it)"
)


def has_token() -> bool:
    """Whether a token is there to send (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token)."""
    token_file = os.environ.get("RAY_AUTH_TOKEN_PATH") or os.path.expanduser("~/.ray/auth_token")
    return bool(os.environ.get("RAY_AUTH_TOKEN")) or os.path.isfile(token_file)


def token_source() -> str:
    """Where Ray takes the token from, in Ray's own order of lookup."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return "RAY_AUTH_TOKEN"
    path = os.environ.get("RAY_AUTH_TOKEN_PATH")
    if path:
        return f"RAY_AUTH_TOKEN_PATH ({path})"
    return "~/.ray/auth_token"


def token_refused(address: str, missing: bool) -> UsageError:
    """The one line for a cluster that wants a token and got none, or refused the one sent."""
    if missing:
        return UsageError(f"the Ray cluster at {address} requires a token and none was found: {TOKEN_FIX}")
    return UsageError(f"the Ray cluster at {address} refused the token from {token_source()}: {TOKEN_FIX}")


CONNECT_TIMEOUT_S = 5.0


def check_reachable(address: str, *, verbose: bool = False) -> None:
    """Fail at once, in one line, when the cluster at ``address`` cannot be joined.

    Left to itself, ``ray.init`` retries an address nobody listens on for minutes, printing
    Ray's C++ warnings, and a refused token ends in a bare ConnectionError after 20 s.
    Here the GCS port is tried first (:data:`CONNECT_TIMEOUT_S`), then one GCS client is
    made, which asks the cluster for its id and so checks the token. ``auto`` and other
    forms without a port are left to Ray.

    Raises:
        ExperimentError: nothing answers at the address, or what answers is not Ray's GCS.
        UsageError: the cluster wants a token and none was found, or it refused the token.
    """
    host, _, port_text = address.removeprefix("ray://").rpartition(":")
    if not host or not port_text.isdigit():
        return
    port = int(port_text)
    try:
        with socket.create_connection((host.strip("[]"), port), timeout=CONNECT_TIMEOUT_S) as connection:
            silent = not address.startswith("ray://") and not _answers_http2(connection)
    except OSError as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc)).lower()
        raise ExperimentError(
            f"cannot reach the Ray cluster at {address} ({reason}): check that Ray runs there (`ray status` on the "
            f"head) and that port {port} (the head's `ray start --port`, 6379 by default) is open from this machine"
        ) from exc
    if silent:
        raise ExperimentError(
            f"cannot join the Ray cluster at {address}: something accepts connections on port {port} but does not "
            f"answer (nothing in {CONNECT_TIMEOUT_S:g} s; a Ray head's GCS answers at once); check the address (the "
            "head's `ray start --port`, 6379 by default)"
        )
    if address.startswith("ray://"):  # Ray Client's server checks the token itself
        return
    enable_token_auth()  # before Ray is imported: it reads the mode at import
    from ray._raylet import GcsClient  # type: ignore[attr-defined]
    from ray.exceptions import AuthenticationError, RpcError

    try:
        with _quiet_stderr(not verbose):  # Ray's C++ client prints its own warning for each failure
            GcsClient(address=f"{host}:{port}")
    except AuthenticationError as exc:
        raise token_refused(address, missing=not has_token()) from exc
    except RpcError as exc:
        raise ExperimentError(
            f"cannot join the Ray cluster at {address}: something answers on port {port} but it is not a Ray "
            f"head's GCS ({exc}); check the address (the head's `ray start --port`, 6379 by default)"
        ) from exc


# An HTTP/2 client's opening (the preface and an empty SETTINGS frame): a gRPC server such as
# Ray's GCS answers it at once with its own SETTINGS; TLS or anything else answers or hangs up.
HTTP2_HELLO = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])


def _answers_http2(connection: socket.socket) -> bool:
    """Whether what listens says anything (or hangs up) within :data:`CONNECT_TIMEOUT_S` of an
    HTTP/2 opening. A port that accepts and stays silent kept Ray's GCS client waiting 40 s."""
    try:
        connection.sendall(HTTP2_HELLO)
        connection.recv(1)
    except TimeoutError:
        return False
    except OSError:
        return True  # reset: something is there, and the GCS client says what
    return True


@contextmanager
def _quiet_stderr(quiet: bool) -> Iterator[None]:
    """Send what C++ code writes to file descriptor 2 to /dev/null for a moment."""
    if not quiet:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


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
    kind = ray_kind(address)
    if kind is RayKind.REUSED:
        yield Session(address="(this process)", private=False, reused=True)
        return
    address = cluster_address(address)
    if address:
        check_reachable(address, verbose=verbose)  # sets the token mode before Ray is imported

    import ray
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
    with _own_sigterm_kept():
        if address:
            _join(ray, address, common)
        else:
            with loopback_only():
                ray.init(
                    # "local": a Ray of the run's own; without it ray.init joins the Ray that Ray's
                    # ray_current_cluster file names (any `ray start` on the machine, a dead one too)
                    address="local",
                    _node_ip_address="127.0.0.1",
                    include_dashboard=False,
                    num_cpus=num_cpus,
                    num_gpus=num_gpus,
                    **common,
                )
    try:
        yield Session(address=address or "local", private=not address, reused=False)
    finally:
        if not address:
            _stop_autoscaler_monitor()
        ray.shutdown()


@contextlib.contextmanager
def _own_sigterm_kept() -> Iterator[None]:
    """``ray.init`` makes SIGTERM ``sys.exit(15)`` in the driver; a handler raytuner's command
    installed before it (SIGTERM as Ctrl-C, :mod:`raytuner.cli.signals`) is put back after.

    Ray's SystemExit landed in the middle of a fit: the run ended ``failed`` with trials still
    ``running``. Without a handler of raytuner's, Ray's stays.
    """
    previous = signal.getsignal(signal.SIGTERM) if threading.current_thread() is threading.main_thread() else None
    try:
        yield
    finally:
        if callable(previous):
            signal.signal(signal.SIGTERM, previous)


def _stop_autoscaler_monitor() -> None:
    """Kill a private Ray's autoscaler monitor, which has nothing to scale, before ``ray.shutdown()``.

    ``ray.shutdown()`` stops Ray's processes one by one, each with SIGTERM and up to a second's
    wait: the monitor does not exit on SIGTERM, so every run ended with a second of waiting
    (1.0 of shutdown's 1.4 s here). A monitor already gone is passed over.
    """
    try:
        from ray._private import ray_constants
        from ray._private.worker import _global_node as node
    except ImportError:  # another Ray layout: shut down as Ray does
        return
    if node is None:
        return
    for info in node.all_processes.get(ray_constants.PROCESS_TYPE_MONITOR, []):
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            info.process.kill()
            info.process.wait(timeout=5)


@contextmanager
def loopback_only() -> Iterator[None]:
    """Keep a private Ray on 127.0.0.1 while it starts.

    On Linux Ray replaces a node address of 127.0.0.1 by the machine's network address (it
    expects other nodes to join), and its GCS then listens on every interface: a private Ray
    of a laptop run was reachable from the network. Ray keeps the loopback address only where
    it believes clusters unsupported (``ray_constants.ENABLE_RAY_CLUSTER``, read by
    ``services.get_node_ip_address`` when ``ray.init`` resolves the address); that switch is
    off for the start of a private Ray and restored after, so a later ``ray.init`` in the
    process can still join a cluster.
    """
    from ray._private import ray_constants

    before = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = before


def _join(ray: Any, address: str, common: dict[str, Any]) -> None:
    """``ray.init`` on a cluster, its failures as one line (after :func:`check_reachable`)."""
    from ray.exceptions import AuthenticationError

    try:
        ray.init(address=address, **common)
    except AuthenticationError as exc:
        raise token_refused(address, missing=not has_token()) from exc
    except ConnectionError as exc:
        raise ExperimentError(
            f"cannot join the Ray cluster at {address}: {exc}; check the address, and that this machine runs the "
            "cluster's Ray and Python versions"
        ) from exc
