"""Finding an experiment and opening it for reading: the one resolver of an experiment reference.

A reference is a URI (``s3://bucket/prefix/exp``, ``gs://...``, anything pyarrow or fsspec
can open), a local path, or a name under the storage root (a folder or a URI). :func:`locate`
turns it into a :class:`~raytuner.results.folder.Folder`; :func:`open_experiment` reads the
folder's tables (raytuner's own, or a plain Ray Tune folder converted in a temporary folder);
:func:`find_experiment` gives the local folder a run goes on in (a working copy for object
storage). Nothing in the folder is modified.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from raytuner.errors import UsageError
from raytuner.results import layout
from raytuner.results.folder import Folder, child_uri, first_line, is_uri
from raytuner.results.tables import ExperimentTables, FolderKind, folder_kind, read_raytuner_folder


def _plain_name(ref: str) -> bool:
    return "/" not in ref and ref not in ("", ".", "..")


def locate(ref: str, storage: str = "runs", *, accept: Callable[[Path], bool] | None = None) -> Folder:
    """The folder ``ref`` names: a URI, a local path, or a name under the storage root ``storage``.

    Args:
        ref: the reference, as the user gave it.
        storage: the storage root plain names are looked up in (a folder or a URI).
        accept: which local folders count (default: any folder). With it, a folder on object
            storage is returned without being looked at (its working copy's download does).

    Raises:
        UsageError: nothing by that name, path or URI is a folder, or its storage cannot be reached.
    """
    if not is_uri(ref) and is_uri(storage) and _plain_name(ref):
        ref = child_uri(storage, ref)
    if is_uri(ref):
        folder = Folder.parse(ref)  # shown without the credentials it may carry
        if accept is not None:
            return folder
        try:
            found = folder.exists()
        except OSError as exc:
            raise UsageError(f"cannot read {folder.display}: {first_line(exc)}") from exc
        if not found:
            raise UsageError(f"no experiment folder at {folder.display}")
        return folder
    wanted = accept or Path.is_dir
    direct = Path(ref).expanduser()
    if direct.is_dir() and wanted(direct):
        return Folder.local(direct, str(direct))
    if not _plain_name(ref) and accept is None:
        raise UsageError(f"no experiment folder '{ref}'")
    root = layout.storage_root(storage)
    by_name = root / ref
    if _plain_name(ref) and by_name.is_dir() and wanted(by_name):
        return Folder.local(by_name, ref)
    known = sorted(p.name for p in root.iterdir() if p.is_dir() and layout.is_experiment(p)) if root.is_dir() else []
    hint = f"; experiments under {root}: {', '.join(known[:10])}" if known else f"; no experiments under {root}"
    raise UsageError(f"no experiment '{ref}'{hint}")


def find_experiment(ref: str, storage: str = "runs", *, to_continue: bool = False) -> Path:
    """The local folder of raytuner's experiment ``ref`` (see :func:`locate`).

    On object storage the answer is a working copy of raytuner's files, fetched now (see
    :mod:`raytuner.results.remote`); ``to_continue`` (resume, extend) fetches the tracking
    loggers' stores too.

    Raises:
        UsageError: nothing by that name or path is an experiment folder.
    """
    folder = locate(ref, storage, accept=layout.is_experiment)
    if folder.local_path is not None:
        return folder.local_path
    from raytuner.results import remote

    return remote.download(folder, trackers=to_continue)


def experiment_at(ref: str, storage: str = "runs") -> tuple[Folder, FolderKind | None]:
    """The folder ``ref`` names (see :func:`locate`) and what wrote it.

    Raises:
        UsageError: no such folder, or its storage cannot be read.
    """
    folder = locate(ref, storage)
    try:
        return folder, folder_kind(folder)
    except OSError as exc:
        raise UsageError(f"cannot read {folder.display}: {first_line(exc)}") from exc


@contextmanager
def read_folder(
    folder: Folder, kind: FolderKind | None, metric: str | None = None, mode: str | None = None
) -> Iterator[ExperimentTables]:
    """The tables of ``folder`` (written by ``kind``), for the ``with`` block.

    ``metric`` and ``mode`` matter only for a plain Ray Tune folder (raytuner records its own);
    without them, the metric Ray was given (``TuneConfig(metric=...)``) and ``min`` are used.

    Raises:
        UsageError: ``folder`` is not an experiment folder, or ``mode`` is neither min nor max.
        ExperimentError: its files cannot be read.
    """
    if mode not in (None, "min", "max"):
        raise UsageError(f"--mode: expected 'min' or 'max', found {mode!r}")
    if kind is FolderKind.RAYTUNER:
        yield read_raytuner_folder(folder)
        return
    if kind is None:
        raise UsageError(f"{folder.display} is neither a raytuner nor a Ray Tune experiment folder")
    from raytuner.results.ray_folder import convert_ray_folder

    with tempfile.TemporaryDirectory(prefix="raytuner-") as scratch:
        # named like the experiment, which the report's title shows
        copy = Path(scratch) / (folder.name.replace("/", "_").strip(".") or "experiment")
        copy.mkdir()
        yield convert_ray_folder(folder, copy, metric=metric, mode=mode)


@contextmanager
def open_experiment(
    ref: str, storage: str = "runs", metric: str | None = None, mode: str | None = None
) -> Iterator[ExperimentTables]:
    """The tables of the experiment at ``ref`` (name, path or URI), for the ``with`` block
    (:func:`read_folder` of :func:`experiment_at`).

    Raises:
        UsageError: ``ref`` is not an experiment folder.
        ExperimentError: its files cannot be read.
    """
    if mode not in (None, "min", "max"):
        raise UsageError(f"--mode: expected 'min' or 'max', found {mode!r}")
    with read_folder(*experiment_at(ref, storage), metric=metric, mode=mode) as tables:
        yield tables
