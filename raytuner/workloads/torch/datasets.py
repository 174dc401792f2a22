"""Offline datasets for the built-in workloads: shipped ones and user tables, split and scaled.

Shipped datasets come with scikit-learn (no download): digits (1797 8x8 images of digits,
as 64 features or as 1x8x8 images), breast_cancer (binary), wine (3 classes) and diabetes
(regression). A user table is a CSV or Parquet file with numeric feature columns.

Standardization statistics come from the training rows only, per fold. This module imports
numpy and pyarrow, never torch, so :func:`check_dataset` is cheap at validation time.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from raytuner.errors import Location, SpecError
from raytuner.workloads.torch.options import (
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
    """A dataset's rows: features, target (class indices or values) and its shape facts.

    ``features`` names the columns of ``x`` in order; ``labels`` holds each class index's
    label as the data wrote it (None for regression).
    """

    x: FloatArray
    y: npt.NDArray[Any]
    classes: int | None
    image_shape: tuple[int, int, int] | None
    features: tuple[str, ...] = ()
    labels: tuple[Any, ...] | None = None

    def rows(self, index: npt.NDArray[Any]) -> Table:
        """The same table reduced to the rows at ``index``."""
        return replace(self, x=self.x[index], y=self.y[index])


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
    feature_mean: FloatArray | None = None  # the scaling of the features (None: unscaled)
    feature_std: FloatArray | None = None


# ---------------------------------------------------------------------------- loading


# features, target, feature names, and a shipped dataset's names of its classes 0..k-1
Loaded = tuple[FloatArray, npt.NDArray[Any], tuple[str, ...], tuple[str, ...] | None]


def _sklearn(loader_name: str) -> Callable[[], Loaded]:
    def load() -> Loaded:
        from sklearn import datasets  # imported here: only trials and checks need it

        bunch = getattr(datasets, loader_name)()
        names = getattr(bunch, "target_names", None)
        classes = None if names is None else tuple(str(name) for name in names)
        features = tuple(str(name) for name in bunch.feature_names)
        return np.asarray(bunch.data, dtype=np.float64), np.asarray(bunch.target), features, classes

    return load


BUILTIN_LOADERS: dict[BuiltinDataset, Callable[[], Loaded]] = {
    BuiltinDataset.DIGITS: _sklearn("load_digits"),
    BuiltinDataset.BREAST_CANCER: _sklearn("load_breast_cancer"),
    BuiltinDataset.WINE: _sklearn("load_wine"),
    BuiltinDataset.DIABETES: _sklearn("load_diabetes"),
}
REGRESSION_DATASETS = frozenset({BuiltinDataset.DIABETES})


@functools.lru_cache(maxsize=8)
def _builtin(name: BuiltinDataset) -> Loaded:
    return BUILTIN_LOADERS[name]()


def _read(file: str, base_dir: Path, key: str = "trainable.dataset.path") -> Any:
    """Read a table file into a pyarrow Table (errors name the file)."""
    where = Location(path=key)
    path = Path(file) if Path(file).is_absolute() else base_dir / file
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


def read_table_file(path: str | Path) -> Any:
    """A CSV or Parquet file as a pyarrow Table.

    Raises:
        UsageError: the file is missing, unreadable or of another kind.
    """
    from raytuner.errors import UsageError

    try:
        return _read(str(path), Path.cwd(), "")
    except SpecError as exc:
        raise UsageError(exc.message) from exc


def _read_csv(path: Path) -> Any:
    from pyarrow import csv

    return csv.read_csv(path)


def _read_parquet(path: Path) -> Any:
    from pyarrow import parquet

    return parquet.read_table(path)


def _table_arrays(options: TorchTrainable, source: TableDataset, table: Any) -> Loaded:
    import pyarrow as pa

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
    return x, (y if numeric or not options.is_classifier else y.astype(str)), tuple(features), None


def _class_indices(y: npt.NDArray[Any], name: str) -> tuple[npt.NDArray[np.int64], npt.NDArray[Any]]:
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
    return indices.astype(np.int64), labels


def load_table(options: TorchTrainable, base_dir: str | Path = ".") -> Table:
    """Load the rows a search may see: the dataset less its test split, class labels
    encoded as 0..k-1 (over the whole dataset, so every split has the same classes).

    Args:
        options: The workload's options.
        base_dir: Folder that relative table paths are relative to (the spec's folder).

    Returns:
        The search's rows, unsplit and unscaled.

    Raises:
        SpecError: The dataset does not fit the workload (see :func:`check_dataset`).
    """
    table = _load_whole(options, Path(base_dir))
    if options.test_fraction is None:
        return table
    return table.rows(np.setdiff1d(np.arange(len(table.y)), _test_rows(table, options)))


def load_test_table(options: TorchTrainable, base_dir: str | Path = ".") -> Table | None:
    """Load the test split no trial sees (``test_fraction`` or ``test_path``); None without one.

    Raises:
        SpecError: The test table does not fit the dataset (columns, unknown class labels).
    """
    base = Path(base_dir)
    whole = _load_whole(options, base)
    if options.test_fraction is not None:
        return whole.rows(_test_rows(whole, options))
    if options.test_path is None or not isinstance(options.dataset, TableDataset):
        return None
    # the dataset's feature columns, by name: the test file may order its columns otherwise
    same_columns = options.dataset.model_copy(update={"features": list(whole.features)})
    x, y, _, _ = _table_arrays(options, same_columns, _read(options.test_path, base, "trainable.test_path"))
    where = Location(path="trainable.test_path")
    y = y.astype(np.float64) if whole.labels is None else encode_labels(y, whole.labels, where)
    return replace(whole, x=x, y=y)


def held_out_record(options: TorchTrainable, base_dir: str | Path = ".") -> dict[str, Any] | None:
    """What identifies the test split, to keep with the experiment: how it was drawn, its
    size and a SHA-256 of its row numbers (``test_fraction``) or of its file (``test_path``)."""
    if options.test_fraction is not None:
        whole = _load_whole(options, Path(base_dir))
        rows = _test_rows(whole, options)
        digest = hashlib.sha256(np.asarray(rows, dtype=np.int64).tobytes()).hexdigest()
        return {
            "test_fraction": options.test_fraction,
            "seed": options.seed,
            "rows": len(rows),
            "of_rows": len(whole.y),
            "stratified": _stratifiable(whole, len(rows)),
            "row_numbers_sha256": digest,
            "row_numbers": [int(row) for row in rows],
        }
    if options.test_path is not None:
        path = Path(options.test_path)
        path = path if path.is_absolute() else Path(base_dir) / path
        test = load_test_table(options, base_dir)
        return {
            "test_path": str(path.resolve()),
            "rows": 0 if test is None else len(test.y),
            "file_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        }
    return None


def _load_whole(options: TorchTrainable, base_dir: Path) -> Table:
    """The whole dataset (test rows included), class labels encoded as 0..k-1."""
    source = options.dataset
    if isinstance(source, TableDataset):
        x, y, features, names = _table_arrays(options, source, _read(source.path, base_dir))
        name = source.target
    else:
        if options.is_classifier and source in REGRESSION_DATASETS:
            raise SpecError(
                f"{source.value} is a regression dataset; use builtin: mlp_regressor",
                Location(path="trainable.dataset"),
            )
        x, y, features, names = _builtin(source)
        name = source.value
    classes: int | None = None
    labels: tuple[Any, ...] | None = None
    if options.is_classifier:
        y, label_values = _class_indices(y, name)
        classes = len(label_values)
        # a shipped dataset's targets are class numbers: its label names say what they mean
        labels = tuple(names[i] for i in label_values.tolist()) if names else tuple(label_values.tolist())
    else:
        y = y.astype(np.float64)
    return Table(x, y, classes, _image_shape(options, x.shape[1]), features, labels)


def encode_labels(y: npt.NDArray[Any], labels: tuple[Any, ...], where: Location) -> npt.NDArray[np.int64]:
    """Class indices of ``y`` in ``labels`` (a model's classes, in index order).

    Raises:
        SpecError: ``y`` holds a label the model has no class for.
    """
    known = {label: index for index, label in enumerate(labels)}
    values = np.round(y).astype(np.int64).tolist() if y.dtype.kind == "f" else y.tolist()
    unknown = sorted({str(value) for value in values if value not in known})
    if unknown:
        raise SpecError(
            f"class labels {', '.join(unknown[:5])} are not among the dataset's: {', '.join(map(str, labels))}", where
        )
    return np.asarray([known[value] for value in values], dtype=np.int64)


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


def _stratifiable(table: Table, held_out: int) -> bool:
    """Whether a stratified split can hold out ``held_out`` rows: each class has two rows, and
    both sides have room for every class."""
    if table.classes is None or np.bincount(table.y).min() < 2:
        return False
    return min(held_out, len(table.y) - held_out) >= table.classes


def _test_rows(table: Table, options: TorchTrainable) -> npt.NDArray[np.int64]:
    """The row numbers of the ``test_fraction`` split, sorted: stratified when every class
    has two rows, drawn with the workload's seed."""
    from sklearn import model_selection

    rows = np.arange(len(table.y))
    fraction = options.test_fraction or 0.0
    held_out = round(len(rows) * fraction)
    if held_out < 1 or len(rows) - held_out < 2:
        raise SpecError(
            f"test fraction {fraction:g} of {len(rows)} rows leaves no test rows or too few to search on",
            Location(path="trainable.test_fraction"),
        )
    stratify = table.y if _stratifiable(table, held_out) else None
    _, test = model_selection.train_test_split(
        rows, test_size=held_out, random_state=options.seed, stratify=stratify
    )
    return np.sort(test).astype(np.int64)


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
    can_stratify = _stratifiable(table, held_out)
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
    return [scaled_fold(table, train, val, options) for train, val in _split_indices(table, options)]


def scaled_fold(
    table: Table, train: npt.NDArray[Any], val: npt.NDArray[Any], options: TorchTrainable
) -> Fold:
    """The fold of ``table`` training on rows ``train`` and validating on rows ``val``, scaled
    with statistics of the training rows."""
    x_train, x_val = table.x[train], table.x[val]
    mean: FloatArray | None = None
    std: FloatArray | None = None
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
    return Fold(
        x_train=x_train.astype(np.float32),
        y_train=y_train,
        x_val=x_val.astype(np.float32),
        y_val=y_val,
        classes=table.classes,
        image_shape=table.image_shape,
        target_mean=target_mean,
        target_std=target_std,
        feature_mean=mean,
        feature_std=std,
    )


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
    load_test_table(options, base_dir)
    if options.init_from is not None:
        source = Path(options.init_from).expanduser()
        source = source if source.is_absolute() else Path(base_dir) / source
        if not (source / "state.pt").is_file() and not source.is_file():
            raise SpecError(
                f"init_from: no checkpoint file at {source} (a checkpoint folder with state.pt, or a file)",
                Location(path="trainable.init_from"),
            )
