"""Offline datasets for the built-in workloads: shipped ones and user tables, split and scaled.

Shipped datasets come with scikit-learn (no download): digits (1797 8x8 images of digits,
as 64 features or as 1x8x8 images), breast_cancer (binary), wine (3 classes) and diabetes
(regression). A user table is a CSV or Parquet file with numeric feature columns.

Standardization statistics come from the training rows only, per fold. This module imports
numpy and pyarrow, never torch, so :func:`check_dataset` is cheap at validation time.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from raytuner.errors import Location, SpecError
from raytuner.spec.torch_options import (
    BuiltinDataset,
    CnnClassifierTrainable,
    KFold,
    MlpRegressorTrainable,
    TableDataset,
    TorchTrainable,
)

MAX_CLASSES = 100
DIGITS_IMAGE = (1, 8, 8)
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Table:
    """A whole dataset: features, target (class indices or values) and its shape facts."""

    x: FloatArray
    y: npt.NDArray[Any]
    classes: int | None
    image_shape: tuple[int, int, int] | None


@dataclass(frozen=True)
class Fold:
    """One train/validation split, scaled; regression targets keep their scale for metrics."""

    x_train: npt.NDArray[np.float32]
    y_train: npt.NDArray[Any]
    x_val: npt.NDArray[np.float32]
    y_val: npt.NDArray[Any]
    classes: int | None
    image_shape: tuple[int, int, int] | None
    target_mean: float = 0.0
    target_std: float = 1.0


# ---------------------------------------------------------------------------- loading


def _sklearn(loader_name: str) -> Callable[[], tuple[FloatArray, npt.NDArray[Any]]]:
    def load() -> tuple[FloatArray, npt.NDArray[Any]]:
        from sklearn import datasets  # imported here: only trials and checks need it

        x, y = getattr(datasets, loader_name)(return_X_y=True)
        return np.asarray(x, dtype=np.float64), np.asarray(y)

    return load


BUILTIN_LOADERS: dict[BuiltinDataset, Callable[[], tuple[FloatArray, npt.NDArray[Any]]]] = {
    BuiltinDataset.DIGITS: _sklearn("load_digits"),
    BuiltinDataset.BREAST_CANCER: _sklearn("load_breast_cancer"),
    BuiltinDataset.WINE: _sklearn("load_wine"),
    BuiltinDataset.DIABETES: _sklearn("load_diabetes"),
}
REGRESSION_DATASETS = frozenset({BuiltinDataset.DIABETES})


@functools.lru_cache(maxsize=8)
def _builtin(name: BuiltinDataset) -> tuple[FloatArray, npt.NDArray[Any]]:
    return BUILTIN_LOADERS[name]()


def _read(source: TableDataset, base_dir: Path) -> Any:
    """Read a table file into a pyarrow Table (errors name the file)."""
    where = Location(path="trainable.dataset.path")
    path = Path(source.path) if Path(source.path).is_absolute() else base_dir / source.path
    if not path.is_file():
        raise SpecError(f"dataset file not found: {path}", where)
    readers: dict[str, Callable[[Path], Any]] = {".csv": _read_csv, ".parquet": _read_parquet, ".pq": _read_parquet}
    reader = readers.get(path.suffix.lower())
    if reader is None:
        raise SpecError(f"dataset file must end in .csv, .parquet or .pq, found {path.name!r}", where)
    try:
        return reader(path)
    except Exception as exc:  # pyarrow raises several types for unreadable files
        raise SpecError(f"could not read dataset file {path}: {exc}", where) from exc


def _read_csv(path: Path) -> Any:
    from pyarrow import csv

    return csv.read_csv(path)


def _read_parquet(path: Path) -> Any:
    from pyarrow import parquet

    return parquet.read_table(path)


def _table_arrays(options: TorchTrainable, source: TableDataset, base_dir: Path) -> tuple[FloatArray, npt.NDArray[Any]]:
    import pyarrow as pa

    table = _read(source, base_dir)
    columns = list(table.column_names)
    if source.target not in columns:
        raise SpecError(
            f"target column {source.target!r} not in the table; its columns are {', '.join(columns)}",
            Location(path="trainable.dataset.target"),
        )
    features = source.features or [name for name in columns if name != source.target]
    for index, name in enumerate(features):
        where = Location(path=f"trainable.dataset.features[{index}]" if source.features else "trainable.dataset")
        if name not in columns:
            raise SpecError(f"feature column {name!r} not in the table; its columns are {', '.join(columns)}", where)
        if name == source.target:
            raise SpecError(f"the target column {name!r} cannot also be a feature", where)
        kind = table.schema.field(name).type
        if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)):
            raise SpecError(
                f"feature column {name!r} is not numeric (type {kind}); encode it as numbers "
                "or leave it out with features: [...]",
                where,
            )
        if table.column(name).null_count:
            raise SpecError(f"feature column {name!r} has {table.column(name).null_count} missing values", where)
    if not features:
        raise SpecError("the table has no feature columns besides the target", Location(path="trainable.dataset"))
    x = np.column_stack([table.column(name).to_numpy(zero_copy_only=False).astype(np.float64) for name in features])
    target = table.column(source.target)
    where = Location(path="trainable.dataset.target")
    if target.null_count:
        raise SpecError(f"target column {source.target!r} has {target.null_count} missing values", where)
    kind = target.type
    numeric = pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)
    if not options.is_classifier and not numeric:
        raise SpecError(f"regression target {source.target!r} must be numeric, found type {kind}", where)
    y = np.asarray(target.to_numpy(zero_copy_only=False))
    return x, (y if numeric or not options.is_classifier else y.astype(str))


def _class_indices(y: npt.NDArray[Any], name: str) -> tuple[npt.NDArray[np.int64], int]:
    """Encode class labels as 0..k-1, refusing targets that look continuous."""
    where = Location(path="trainable.dataset.target")
    if y.dtype.kind == "f":
        fractional = y[~np.isclose(y, np.round(y))]
        if fractional.size:
            raise SpecError(
                f"target {name!r} has non-integer values (e.g. {fractional[0]:g}): it looks like a "
                "regression target; use builtin: mlp_regressor",
                where,
            )
        y = np.round(y).astype(np.int64)
    labels, indices = np.unique(y, return_inverse=True)
    # More classes than half the rows leaves fewer than two examples per class.
    if len(labels) > MAX_CLASSES or len(labels) > max(2, len(y) // 2):
        raise SpecError(
            f"target {name!r} has {len(labels)} distinct values in {len(y)} rows (a classifier takes at "
            f"most {MAX_CLASSES} classes and half as many as rows): it looks like a regression target; "
            "use builtin: mlp_regressor",
            where,
        )
    if len(labels) < 2:
        raise SpecError(f"target {name!r} has a single class; a classifier needs at least 2", where)
    return indices.astype(np.int64), len(labels)


def load_table(options: TorchTrainable, base_dir: str | Path = ".") -> Table:
    """Load the dataset a workload names, with class labels encoded as 0..k-1.

    Args:
        options: The workload's options.
        base_dir: Folder that relative table paths are relative to (the spec's folder).

    Returns:
        The whole dataset, unsplit and unscaled.

    Raises:
        SpecError: The dataset does not fit the workload (see :func:`check_dataset`).
    """
    source = options.dataset
    if isinstance(source, TableDataset):
        x, y = _table_arrays(options, source, Path(base_dir))
        name = source.target
    else:
        if options.is_classifier and source in REGRESSION_DATASETS:
            raise SpecError(
                f"{source.value} is a regression dataset; use builtin: mlp_regressor",
                Location(path="trainable.dataset"),
            )
        x, y = _builtin(source)
        name = source.value
    classes: int | None = None
    if options.is_classifier:
        y, classes = _class_indices(y, name)
    else:
        y = y.astype(np.float64)
    return Table(x=x, y=y, classes=classes, image_shape=_image_shape(options, x.shape[1]))


def _image_shape(options: TorchTrainable, features: int) -> tuple[int, int, int] | None:
    if not isinstance(options, CnnClassifierTrainable):
        return None
    shape = options.image_shape
    if shape is None:
        if options.dataset is BuiltinDataset.DIGITS:
            return DIGITS_IMAGE
        raise SpecError(
            f"cnn_classifier needs image_shape: [channels, height, width] for this dataset ({features} features)",
            Location(path="trainable.image_shape"),
        )
    if int(np.prod(shape)) != features:
        raise SpecError(
            f"image_shape {list(shape)} holds {int(np.prod(shape))} values but each row has {features} features",
            Location(path="trainable.image_shape"),
        )
    return shape


# ---------------------------------------------------------------------------- splitting


def _split_indices(table: Table, options: TorchTrainable) -> list[tuple[npt.NDArray[Any], npt.NDArray[Any]]]:
    from sklearn import model_selection

    rows = np.arange(len(table.y))
    stratify = table.y if table.classes is not None else None
    validation = options.validation
    if isinstance(validation, KFold):
        if validation.folds > len(rows):
            raise SpecError(
                f"{validation.folds} folds need at least {validation.folds} rows, the dataset has {len(rows)}",
                Location(path="trainable.validation.folds"),
            )
        splitter: Any = model_selection.KFold(validation.folds, shuffle=True, random_state=options.seed)
        if stratify is not None and np.bincount(stratify).min() >= validation.folds:
            splitter = model_selection.StratifiedKFold(validation.folds, shuffle=True, random_state=options.seed)
        return [(train, val) for train, val in splitter.split(rows, stratify)]
    held_out = round(len(rows) * validation.fraction)
    if held_out < 1 or held_out >= len(rows):
        raise SpecError(
            f"validation fraction {validation.fraction:g} of {len(rows)} rows leaves no training or validation rows",
            Location(path="trainable.validation.fraction"),
        )
    can_stratify = stratify is not None and np.bincount(stratify).min() >= 2 and held_out >= (table.classes or 0)
    train, val = model_selection.train_test_split(
        rows, test_size=held_out, random_state=options.seed, stratify=stratify if can_stratify else None
    )
    return [(np.sort(train), np.sort(val))]


def make_folds(table: Table, options: TorchTrainable) -> list[Fold]:
    """Split and scale a dataset as the options say (one fold for a holdout split).

    Args:
        table: The loaded dataset.
        options: The workload's options (validation scheme, seed, standardization).

    Returns:
        The folds, features as float32; reproducible for a given seed.
    """
    folds = []
    for train, val in _split_indices(table, options):
        x_train, x_val = table.x[train], table.x[val]
        if options.standardize:
            mean = x_train.mean(axis=0)
            std = x_train.std(axis=0)
            std[std == 0] = 1.0
            x_train, x_val = (x_train - mean) / std, (x_val - mean) / std
        y_train, y_val = table.y[train], table.y[val]
        target_mean, target_std = 0.0, 1.0
        if table.classes is None and isinstance(options, MlpRegressorTrainable) and options.standardize_target:
            target_mean, target_std = float(y_train.mean()), float(y_train.std()) or 1.0
            y_train, y_val = (y_train - target_mean) / target_std, (y_val - target_mean) / target_std
        if table.classes is None:
            y_train, y_val = y_train.astype(np.float32), y_val.astype(np.float32)
        folds.append(
            Fold(
                x_train=x_train.astype(np.float32),
                y_train=y_train,
                x_val=x_val.astype(np.float32),
                y_val=y_val,
                classes=table.classes,
                image_shape=table.image_shape,
                target_mean=target_mean,
                target_std=target_std,
            )
        )
    return folds


def check_dataset(options: TorchTrainable, base_dir: str | Path = ".") -> None:
    """Check at validation time that a workload's dataset can be loaded and split.

    Args:
        options: The workload's options.
        base_dir: Folder that relative table paths are relative to (the spec's folder).

    Raises:
        SpecError: A missing or unreadable file, an unknown column, a non-numeric feature,
            a regression target given to a classifier, a bad image shape, too few rows, a
            missing ``init_from`` checkpoint.
    """
    table = load_table(options, base_dir)
    _split_indices(table, options)
    if options.init_from is not None:
        source = Path(options.init_from).expanduser()
        source = source if source.is_absolute() else Path(base_dir) / source
        if not (source / "state.pt").is_file() and not source.is_file():
            raise SpecError(
                f"init_from: no checkpoint file at {source} (a checkpoint folder with state.pt, or a file)",
                Location(path="trainable.init_from"),
            )
