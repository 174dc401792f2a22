"""Datasets: shipped and user tables, the checks run at validation time, splits and scaling."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from raytuner.errors import SpecError
from raytuner.workloads.torch.datasets import check_dataset, load_table, make_folds
from raytuner.workloads.torch.options import OPTIONS_BY_BUILTIN, TorchTrainable


def _options(builtin: str = "mlp_classifier", **fields: Any) -> TorchTrainable:
    return OPTIONS_BY_BUILTIN[builtin].model_validate({"builtin": builtin, "dataset": "digits", **fields})


@pytest.fixture
def table_dir(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    rows = 60
    columns: dict[str, Any] = {
        "a": rng.normal(size=rows),
        "b": rng.integers(0, 5, size=rows),
        "name": [f"row{index}" for index in range(rows)],
        "label": rng.integers(0, 3, size=rows),
        "price": rng.normal(100, 10, size=rows),
        "whole": rng.integers(0, 3, size=rows).astype(float),
        "many": np.arange(rows) * 3,
        "animal": rng.choice(["cat", "dog"], size=rows),
    }
    table = pa.table(columns)
    pq.write_table(table, tmp_path / "data.parquet")
    with open(tmp_path / "data.csv", "w") as out:
        out.write(",".join(columns) + "\n")
        for index in range(rows):
            out.write(",".join(str(columns[name][index]) for name in columns) + "\n")
    (tmp_path / "data.txt").write_text("nothing")
    return tmp_path


@pytest.mark.parametrize("file", ["data.csv", "data.parquet"])
def test_table_loads_with_listed_features(table_dir: Path, file: str) -> None:
    options = _options(dataset={"path": file, "target": "label", "features": ["a", "b"]})
    check_dataset(options, table_dir)
    table = load_table(options, table_dir)
    assert table.x.shape == (60, 2) and table.classes == 3


def test_string_and_whole_float_labels_are_classes(table_dir: Path) -> None:
    for target in ("animal", "whole"):
        options = _options(dataset={"path": "data.parquet", "target": target, "features": ["a"]})
        table = load_table(options, table_dir)
        assert set(np.unique(table.y)) <= {0, 1, 2} and table.classes is not None and table.classes >= 2


@pytest.mark.parametrize(
    ("builtin", "fields", "path", "fragment"),
    [
        (
            "mlp_classifier",
            {"dataset": {"path": "missing.csv", "target": "label"}},
            "trainable.dataset.path",
            "not found",
        ),
        ("mlp_classifier", {"dataset": {"path": "data.txt", "target": "label"}}, "trainable.dataset.path", ".csv"),
        ("mlp_classifier", {"dataset": {"path": "data.csv", "target": "lable"}}, "trainable.dataset.target", "lable"),
        (
            "mlp_classifier",
            {"dataset": {"path": "data.csv", "target": "label", "features": ["a", "c"]}},
            "trainable.dataset.features[1]",
            "'c' not in the table",
        ),
        ("mlp_classifier", {"dataset": {"path": "data.csv", "target": "label"}}, "trainable.dataset", "not numeric"),
        (
            "mlp_classifier",
            {"dataset": {"path": "data.parquet", "target": "price", "features": ["a"]}},
            "trainable.dataset.target",
            "non-integer values",
        ),
        (
            "mlp_classifier",
            {"dataset": {"path": "data.parquet", "target": "many", "features": ["a"]}},
            "trainable.dataset.target",
            "60 distinct values",
        ),
        (
            "mlp_regressor",
            {"dataset": {"path": "data.parquet", "target": "animal", "features": ["a"]}},
            "trainable.dataset.target",
            "must be numeric",
        ),
        ("mlp_classifier", {"dataset": "diabetes"}, "trainable.dataset", "regression dataset"),
        ("cnn_classifier", {"dataset": "wine"}, "trainable.image_shape", "needs image_shape"),
        ("cnn_classifier", {"image_shape": [1, 4, 4]}, "trainable.image_shape", "holds 16 values"),
        ("mlp_classifier", {"validation": {"fraction": 0.0001}}, "trainable.validation.fraction", "no training"),
        ("mlp_classifier", {"init_from": "nowhere"}, "trainable.init_from", "no checkpoint"),
    ],
)
def test_check_dataset_errors(table_dir: Path, builtin: str, fields: dict[str, Any], path: str, fragment: str) -> None:
    with pytest.raises(SpecError, match=fragment) as caught:
        check_dataset(_options(builtin, **fields), table_dir)
    assert caught.value.location.path == path


def test_shipped_datasets_load() -> None:
    assert load_table(_options(dataset="wine")).classes == 3
    assert load_table(_options(dataset="breast_cancer")).classes == 2
    diabetes = load_table(_options("mlp_regressor", dataset="diabetes"))
    assert diabetes.classes is None and diabetes.x.shape == (442, 10)
    assert load_table(_options("cnn_classifier")).image_shape == (1, 8, 8)


def test_holdout_is_stratified_and_scaled_on_train_rows_only() -> None:
    options = _options(validation={"fraction": 0.25}, seed=3)
    table = load_table(options)
    (fold,) = make_folds(table, options)
    assert len(fold.y_val) == round(len(table.y) * 0.25)
    assert np.allclose(fold.x_train.mean(axis=0), 0, atol=1e-5)
    assert not np.allclose(fold.x_val.mean(axis=0), 0, atol=1e-3)  # validation rows are not refit
    train_share = np.bincount(fold.y_train) / len(fold.y_train)
    val_share = np.bincount(fold.y_val) / len(fold.y_val)
    assert np.abs(train_share - val_share).max() < 0.01
    (again,) = make_folds(table, options)
    assert np.array_equal(fold.x_val, again.x_val)


def test_kfold_validation_rows_partition_the_dataset() -> None:
    options = _options(validation={"folds": 4})
    table = load_table(options)
    folds = make_folds(table, options)
    assert len(folds) == 4
    assert sum(len(fold.y_val) for fold in folds) == len(table.y)
    assert all(len(fold.y_train) + len(fold.y_val) == len(table.y) for fold in folds)


def test_regression_target_is_standardized_for_training() -> None:
    options = _options("mlp_regressor", dataset="diabetes")
    (fold,) = make_folds(load_table(options), options)
    assert abs(float(fold.y_train.mean())) < 1e-5 and fold.target_std > 50
    raw = _options("mlp_regressor", dataset="diabetes", standardize_target=False)
    (unscaled,) = make_folds(load_table(raw), raw)
    assert unscaled.target_std == 1.0 and float(unscaled.y_train.mean()) > 100


def test_a_validation_split_too_large_to_stratify_is_drawn_at_random() -> None:
    options = _options(validation={"fraction": 0.995})  # 9 training rows for 10 classes
    check_dataset(options)  # was sklearn's ValueError (a traceback from raytuner validate)
    (fold,) = make_folds(load_table(options), options)
    assert fold.x_train.shape[0] == 9
