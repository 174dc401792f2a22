"""Where things live in an experiment folder (``<storage>/<name>/``).

Ray Tune's own files (experiment state, trial folders, checkpoints) stay as Ray writes
them, so ``Tuner.restore`` and TensorBoard keep working; raytuner adds these next to them.
"""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

from raytuner.errors import Location, SpecError, UsageError

SPEC = "spec.yaml"
ENVIRONMENT = "environment.json"
GIT_DIFF = "git.diff"  # a dirty working tree's changes when the run started (environment.json has its hash)
STATUS = "status.json"
TRIALS = "trials.parquet"
RESULTS = "results.parquet"
RESULTS_PARTS = "results.parts"
RESULTS_OPEN = "results.open"  # reports not yet in a part, one JSON line each
PBT_DECISIONS = "pbt_decisions.parquet"
EXPERIMENT = "experiment.parquet"

_SUFFIXED = re.compile(r"^(?P<stem>.*)-(?P<n>\d+)$")


def storage_root(storage: str) -> Path:
    return Path(storage).expanduser().resolve()


def check_writable(root: Path, location: Location | None = None) -> None:
    """Make sure experiment folders can be written under ``root`` (created if missing).

    A probe file is written and removed, so a read-only folder, a full disk or a path
    through a regular file is refused before Ray starts, not halfway through a run.

    Raises:
        SpecError: naming the folder, what is wrong and what to do.
    """
    probe = root / f".raytuner-write-probe-{os.getpid()}"
    try:
        root.mkdir(parents=True, exist_ok=True)
        try:
            probe.write_bytes(b"raytuner")
        finally:
            probe.unlink(missing_ok=True)
    except OSError as exc:
        raise SpecError(
            f"cannot write experiment folders under {root}: {unwritable(root, exc)}; make it a writable folder "
            "or choose another one with --storage (or the spec's storage key)",
            location,
        ) from exc


def unwritable(root: Path, exc: OSError) -> str:
    """Why ``root`` (or a file in it) could not be written, in a few words."""
    for path in (root, *root.parents):
        if path.exists() and not path.is_dir():
            return f"{path} is a file, not a folder"
    known = {
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.EROFS: "the file system is read-only",
        errno.ENOSPC: "no space left on the device",
        errno.EDQUOT: "the disk quota is exceeded",
    }
    return known.get(exc.errno or 0) or exc.strerror or str(exc)


def new_experiment_dir(root: Path, name: str) -> Path:
    """A fresh folder for ``name`` under ``root``: ``name``, else ``name-2``, ``name-3``..."""
    candidate = root / name
    n = 1
    while candidate.exists():
        n += 1
        candidate = root / f"{name}-{n}"
    inside(root, candidate)
    return candidate


def make_experiment_dir(root: Path, name: str) -> Path:
    """Create :func:`new_experiment_dir`'s folder; two runs of one name started together each
    get a folder of their own (the one that loses the race for a name takes the next)."""
    while True:
        folder = new_experiment_dir(root, name)
        try:
            folder.mkdir(parents=True)
        except FileExistsError:
            continue
        return folder


def inside(root: Path, path: Path) -> Path:
    """``path`` resolved, refusing anything outside ``root`` (names cannot escape storage)."""
    resolved = path.resolve()
    if resolved != root.resolve() and root.resolve() not in resolved.parents:
        raise UsageError(f"'{path}' is outside the storage root {root}")
    return resolved


def is_experiment(folder: Path) -> bool:
    return (folder / STATUS).is_file() or (folder / SPEC).is_file()


def find_experiment(ref: str, storage: str, *, to_continue: bool = False) -> Path:
    """An experiment folder by path, or by name under the storage root.

    On object storage (a URI, or a name under a URI storage root) the answer is a working copy
    of raytuner's files, fetched now (see :mod:`raytuner.results.remote`); ``to_continue``
    (resume, extend) fetches the tracking loggers' stores too.

    Raises:
        UsageError: nothing by that name or path is an experiment folder.
    """
    from raytuner.results import remote

    if remote.is_uri(ref):  # a working copy of raytuner's files, fetched now
        return remote.download(remote.Remote.parse(ref), trackers=to_continue)
    direct = Path(ref).expanduser()
    if direct.is_dir() and is_experiment(direct):
        return direct.resolve()
    if remote.is_uri(storage) and "/" not in ref and ref not in ("", ".", ".."):
        return remote.download(remote.Remote.parse(storage).child(ref), trackers=to_continue)
    root = storage_root(storage)
    if "/" not in ref and ref not in ("", ".", ".."):
        by_name = root / ref
        if by_name.is_dir() and is_experiment(by_name):
            return by_name.resolve()
    known = sorted(p.name for p in root.iterdir() if p.is_dir() and is_experiment(p)) if root.is_dir() else []
    hint = f"; experiments under {root}: {', '.join(known[:10])}" if known else f"; no experiments under {root}"
    raise UsageError(f"no experiment '{ref}'{hint}")
