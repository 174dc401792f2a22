"""Experiments on object storage (``s3://``, ``gs://``...): a working copy mirrored to the bucket.

Ray Tune writes its own files (experiment state, trial folders, checkpoints) straight to the
bucket, from the driver and from every worker. raytuner's files (spec, status, Parquet) are
written where they always are, in a local folder, the *working copy*, and a :class:`Mirror`
uploads what changed every few seconds and once more at the end. The bucket's experiment
folder then looks exactly like a local one, so every reader (``show``, ``best``, ``report``,
``export``, ``resume`` on another machine) works on it, and a driver VM that goes away costs
at most the last few seconds of reports.

A working copy lives under ``$RAYTUNER_CACHE`` (default ``~/.cache/raytuner``)
``/remote/<scheme>/<bucket>/<prefix>/<name>`` and carries a marker file naming its URI.

The bucket's folder is a :class:`~raytuner.results.folder.Folder` (credentials: see there).
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

from raytuner.errors import ExperimentError, Location, SpecError, UsageError
from raytuner.results import layout
from raytuner.results.driver_lock import check_free, is_driven
from raytuner.results.folder import CREDENTIALS, first_line
from raytuner.results.folder import SCHEMES as SCHEMES  # the URI helpers, where the run and the CLI take them
from raytuner.results.folder import Folder as Folder
from raytuner.results.folder import check_scheme as check_scheme
from raytuner.results.folder import child_uri as child_uri
from raytuner.results.folder import is_uri as is_uri
from raytuner.results.folder import redact as redact
from raytuner.results.folder import split_credentials as split_credentials

MARKER = layout.REMOTE_MARKER
PARTS = layout.RESULTS_PARTS
OPEN = layout.RESULTS_OPEN  # the reports not yet in a part (uploaded each round like the parts)
# The tracking loggers' local stores in the experiment folder (execution.loggers: mlflow's
# default file store, wandb's offline runs): mirrored with the tables, fetched for a resume.
TRACKERS = ("mlruns", "wandb")
MIRROR_INTERVAL_S = 5.0
# How long the write probe of a run's storage may take (a healthy bucket answers in about a second).
PROBE_DEADLINE_S = 10.0


def check_writable(bucket: Folder, location: Location | None = None, deadline_s: float | None = None) -> None:
    """Write and remove a probe object, so that missing credentials, a wrong endpoint or a
    missing bucket are reported before Ray starts, not halfway through a run.

    The probe runs in a thread given ``deadline_s`` (default :data:`PROBE_DEADLINE_S`):
    without a network pyarrow's GCS client retries for minutes, its S3 client too.

    Raises:
        SpecError: naming the URI, the storage's own reason (or the deadline) and what to check.
    """
    deadline_s = PROBE_DEADLINE_S if deadline_s is None else deadline_s
    failed: list[BaseException] = []
    done = threading.Event()

    def probe() -> None:
        try:
            _write_probe(bucket)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            failed.append(exc)
        finally:
            done.set()

    # a daemon thread: one stuck in pyarrow's retries does not keep the process alive
    threading.Thread(target=probe, name="raytuner-storage-probe", daemon=True).start()
    if not done.wait(deadline_s):
        raise SpecError(
            f"cannot write experiment folders under {bucket.uri}: no answer within {deadline_s:g} s; check this "
            f"machine reaches the storage (network, proxy, endpoint) and {CREDENTIALS}",
            location,
        )
    if failed:
        raise SpecError(
            f"cannot write experiment folders under {bucket.uri}: {first_line(failed[0])}; check the bucket exists, "
            f"{CREDENTIALS}",
            location,
        ) from failed[0]


def _write_probe(bucket: Folder) -> None:
    probe = posixpath.join(bucket.path, f".raytuner-write-probe-{os.getpid()}")
    bucket.fs.create_dir(bucket.path, recursive=True)
    with bucket.fs.open_output_stream(probe) as out:
        out.write(b"raytuner")
    bucket.fs.delete_file(probe)


def new_name(bucket: Folder, name: str) -> str:
    """``name``, else ``name-2``, ``name-3``... whichever has no folder here yet."""
    candidate, n = name, 1
    while bucket.child(candidate).exists():
        n += 1
        candidate = f"{name}-{n}"
    return candidate


def cache_root() -> Path:
    return Path(os.environ.get("RAYTUNER_CACHE") or Path.home() / ".cache" / "raytuner").expanduser()


def working_copy(remote: Folder) -> Path:
    """The local folder that holds raytuner's files of the experiment at ``remote``."""
    scheme = remote.uri.partition("://")[0].lower()
    return cache_root() / "remote" / scheme / Path(*remote.path.split("/"))


def remote_of(folder: Path) -> Folder | None:
    """The experiment on object storage that ``folder`` is a working copy of, if it is one."""
    marker = folder / MARKER
    if not marker.is_file():
        return None
    return Folder.parse(marker.read_text().strip())


def fresh_working_copy(remote: Folder) -> Path:
    """An empty working copy for ``remote`` (what was there is removed).

    Raises:
        UsageError: a driver on this machine runs the experiment in that working copy now.
    """
    folder = working_copy(remote)
    check_free(folder)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    (folder / MARKER).write_text(remote.uri + "\n")
    return folder


def _ours(name: str) -> bool:
    """raytuner's files at the top of an experiment folder (Ray's trial folders are not copied)."""
    return not name.endswith(".tmp") and (
        name.endswith((".parquet", ".json", ".yaml")) or name in (PARTS, OPEN, layout.GIT_DIFF)
    )


def download(remote: Folder, *, trackers: bool = False) -> Path:
    """A working copy of raytuner's files of the experiment at ``remote``, fetched now; with
    ``trackers``, the tracking loggers' stores too (a run that goes on writes into them).

    A driver on this machine running the experiment keeps its working copy: readers get it as
    it is (newer than the bucket), ``resume`` and ``extend`` (``trackers``) are refused.

    Raises:
        UsageError: there is no experiment folder at ``remote``, or ``trackers`` and a driver
            on this machine runs it now.
    """
    import pyarrow.fs as pafs

    if not trackers and is_driven(working_copy(remote)):
        return working_copy(remote)

    try:
        entries = remote.fs.get_file_info(pafs.FileSelector(remote.path, allow_not_found=True))
    except Exception as exc:  # noqa: BLE001 - credentials, endpoint, permissions: all the same to the user
        raise UsageError(f"cannot read {remote.uri}: {first_line(exc)}") from exc
    names = {posixpath.basename(info.path): info for info in entries}
    if "spec.yaml" not in names and "status.json" not in names:
        raise UsageError(f"no raytuner experiment at {remote.uri} (no spec.yaml or status.json there)")
    folder = fresh_working_copy(remote)
    for name, info in names.items():
        if not _ours(name):
            continue
        if info.type == pafs.FileType.Directory:
            _fetch_tree(remote, info.path, folder / name)
        else:
            _fetch(remote, info.path, folder / name)
    for name in TRACKERS if trackers else ():
        tree = names.get(name)
        if tree is not None and tree.type == pafs.FileType.Directory:
            _fetch_tree(remote, tree.path, folder / name)
    refit = names.get(layout.REFIT_DIR)
    if refit is not None and refit.type == pafs.FileType.Directory:
        _fetch_files(remote, refit.path, folder / layout.REFIT_DIR)
    return folder


def _fetch_files(remote: Folder, path: str, destination: Path) -> None:
    """Copy the objects directly under ``path``: the final model's files of ``refit/`` for
    ``predict`` and the report, not own code's refit run and checkpoint below them."""
    import pyarrow.fs as pafs

    destination.mkdir(parents=True, exist_ok=True)
    for item in remote.fs.get_file_info(pafs.FileSelector(path, allow_not_found=True)):
        if item.type == pafs.FileType.File:
            _fetch(remote, item.path, destination / posixpath.basename(item.path))


def _fetch_tree(remote: Folder, path: str, destination: Path) -> None:
    """Copy every object under ``path`` into ``destination``, keeping the folders below it."""
    import pyarrow.fs as pafs

    destination.mkdir(parents=True, exist_ok=True)
    for item in remote.fs.get_file_info(pafs.FileSelector(path, allow_not_found=True, recursive=True)):
        if item.type == pafs.FileType.File:
            target = destination / posixpath.relpath(item.path, path)
            target.parent.mkdir(parents=True, exist_ok=True)
            _fetch(remote, item.path, target)


def _fetch(remote: Folder, path: str, destination: Path) -> None:
    """Copy one object; one that went away since the listing (a running experiment compacted its
    result parts into results.parquet) is skipped, the newer table holds its rows."""
    try:
        with remote.fs.open_input_stream(path) as stream:
            data = stream.read()
    except FileNotFoundError:
        return
    destination.write_bytes(data)


class Mirror:
    """Uploads a working copy's changed files to its remote folder, in the background and at the end.

    Only raytuner's files are uploaded (Ray writes its own to the bucket); parts of the results
    table removed locally when they were compacted into ``results.parquet`` are removed there too.
    """

    def __init__(self, folder: Path, remote: Folder, interval_s: float = MIRROR_INTERVAL_S) -> None:
        self.folder = folder
        self.remote = remote
        self.interval_s = interval_s
        self._sent: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: str | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="raytuner-mirror", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the background uploads (a round in progress finishes first)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def close(self) -> None:
        """Stop the background uploads and upload everything once more.

        Raises:
            ExperimentError: the last upload failed; the results are still in the working copy.
        """
        self.stop()
        try:
            self.sync(final=True)
        except Exception as exc:  # noqa: BLE001
            raise ExperimentError(
                f"could not upload the results to {self.remote.uri}: {first_line(exc)}; they are complete in "
                f"{self.folder} (run raytuner resume {self.folder} once the storage is reachable again)"
            ) from exc

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.round()

    def round(self) -> None:
        """Upload what changed now; a failure is kept in ``error`` and retried on the next round."""
        try:
            self.sync()
            self.error = None
        except Exception as exc:  # noqa: BLE001 - a failed upload is retried on the next round
            self.error = first_line(exc)

    def sync(self, *, final: bool = False) -> None:
        """Upload what changed since the last round, remove what the working copy no longer has.

        Order matters to a driver killed mid-round: result parts first, then the tables that
        account for them, then the parts compacted away are removed, the run's status last. A
        bucket whose status is final so never holds stale parts beside ``results.parquet``.
        With ``final`` (the last round), leftovers the working copy never sent (a killed
        run's parts, fetched then compacted) are removed from the bucket as well.
        """
        with self._lock:
            local = dict(self._local_files())
            ranked = sorted(local.items(), key=lambda item: _upload_rank(item[0]))
            for relative, stamp in (item for item in ranked if item[0] != layout.STATUS):
                self._send(relative, stamp)
            emptied: set[str] = set()
            for relative in [r for r in self._sent if r not in local]:
                if relative.startswith((PARTS + "/", OPEN + "/")):
                    self._delete(relative)
                    emptied.add(relative.partition("/")[0])
                del self._sent[relative]
            for name in (PARTS, OPEN):
                if not any(relative.startswith(name + "/") for relative in local):
                    if final or name in emptied:  # the folder's marker stays behind its last file
                        self._delete_dir(name)
                elif final:
                    self._delete_strays(name, local)
            if layout.STATUS in local:
                self._send(layout.STATUS, local[layout.STATUS])

    def _send(self, relative: str, stamp: tuple[int, int]) -> None:
        if self._sent.get(relative) == stamp:
            return
        with contextlib.suppress(FileNotFoundError):  # compacted or replaced meanwhile: next round
            data = (self.folder / relative).read_bytes()
            self._put(relative, data)
            self._sent[relative] = stamp

    def _delete_strays(self, name: str, local: dict[str, tuple[int, int]]) -> None:
        """Remove the objects under ``name`` in the bucket that the working copy does not hold."""
        import pyarrow.fs as pafs

        root = posixpath.join(self.remote.path, name)
        for info in self.remote.fs.get_file_info(pafs.FileSelector(root, allow_not_found=True, recursive=True)):
            relative = posixpath.join(name, posixpath.relpath(info.path, root))
            if info.type == pafs.FileType.File and relative not in local:
                self._delete(relative)

    def _local_files(self) -> Iterator[tuple[str, tuple[int, int]]]:
        for entry in os.scandir(self.folder):
            if not (entry.name in TRACKERS or _ours(entry.name)):
                continue
            if entry.is_dir(follow_symlinks=False):  # results.parts, a tracker's store
                yield from self._tree_files(entry.name)
            elif entry.is_file():
                stat = entry.stat()
                yield entry.name, (stat.st_size, stat.st_mtime_ns)

    def _tree_files(self, name: str) -> Iterator[tuple[str, tuple[int, int]]]:
        """Every plain file under a folder of the working copy; links (wandb's latest-run) and
        files still being written (``.tmp``) are skipped."""
        for root, _, files in os.walk(self.folder / name):
            for file in files:
                path = Path(root, file)
                if path.is_symlink() or file.endswith(".tmp"):
                    continue
                with contextlib.suppress(FileNotFoundError):  # compacted or a tracker's temporary file: gone
                    stat = path.stat()
                    yield path.relative_to(self.folder).as_posix(), (stat.st_size, stat.st_mtime_ns)

    def _put(self, relative: str, data: bytes) -> None:
        target = posixpath.join(self.remote.path, relative)
        if "/" in relative:
            self.remote.fs.create_dir(posixpath.dirname(target), recursive=True)
        with self.remote.fs.open_output_stream(target) as out:
            out.write(data)

    def _delete(self, relative: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.remote.fs.delete_file(posixpath.join(self.remote.path, relative))

    def _delete_dir(self, relative: str) -> None:
        import pyarrow.fs as pafs

        target = posixpath.join(self.remote.path, relative)
        if self.remote.fs.get_file_info(target).type == pafs.FileType.Directory:
            self.remote.fs.delete_dir(target)


def _upload_rank(relative: str) -> int:
    return 0 if "/" in relative else 1  # results.parts/ (and a tracker's store) before the tables


def remove(remote: Folder) -> None:
    """Delete the experiment folder at ``remote`` (a run refused before any trial)."""
    with contextlib.suppress(Exception):
        if remote.exists():
            remote.fs.delete_dir(remote.path)

