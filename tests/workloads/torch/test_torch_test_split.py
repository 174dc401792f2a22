"""The test split: set aside before any trial's split, stratified and seeded, never trained or validated on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from raytuner.errors import SpecError
from raytuner.workloads.torch.datasets import held_out_record, load_table, load_test_table
from raytuner.workloads.torch.options import OPTIONS_BY_BUILTIN, TorchTrainable
from raytuner.workloads.torch.training import TrainingRun

WINE_ROWS = 178


def _options(builtin: str = "mlp_classifier", **fields: Any) -> TorchTrainable:
    return OPTIONS_BY_BUILTIN[builtin].model_validate({"builtin": builtin, "dataset": "wine", "max_epochs": 1, **fields})


def _row_keys(x: np.ndarray[Any, Any]) -> set[bytes]:
    return {row.tobytes() for row in np.ascontiguousarray(x, dtype=np.float64)}


@pytest.mark.parametrize("validation", [{"fraction": 0.25}, {"folds": 3}], ids=["holdout", "kfold"])
def test_no_test_row_reaches_a_trial(validation: dict[str, Any]) -> None:
    options = _options(test_fraction=0.2, validation=validation, standardize=False)
    test = load_test_table(options)
    search = load_table(options)
    assert test is not None and len(test.y) == round(WINE_ROWS * 0.2)
    assert len(search.y) + len(test.y) == WINE_ROWS
    assert not _row_keys(test.x) & _row_keys(search.x)  # wine has no duplicate rows
    run = TrainingRun(options, {"batch_size": 32})  # what a trial builds, from the options alone
    seen_by_trial: set[bytes] = set()
    for fold in run.folds:
        assert fold.x_train.shape[0] + fold.x_val.shape[0] == WINE_ROWS - len(test.y)
        seen_by_trial |= _row_keys(fold.fold.x_train) | _row_keys(fold.fold.x_val)
    assert len(seen_by_trial) == WINE_ROWS - len(test.y)
    assert not seen_by_trial & _row_keys(test.x.astype(np.float32))


def test_split_is_stratified_seeded_and_recorded() -> None:
    options = _options(test_fraction=0.2, seed=3)
    test = load_test_table(options)
    assert test is not None and test.labels == ("class_0", "class_1", "class_2")
    whole = np.bincount(np.concatenate([load_table(options).y, test.y])) / WINE_ROWS
    assert np.allclose(np.bincount(test.y) / len(test.y), whole, atol=0.03)
    record = held_out_record(options)
    assert record is not None and record["rows"] == len(test.y) and record["stratified"]
    assert record == held_out_record(options)  # the same seed draws the same rows
    other = held_out_record(_options(test_fraction=0.2, seed=4))
    assert other is not None and other["row_numbers_sha256"] != record["row_numbers_sha256"]


def test_no_test_split_keeps_every_row() -> None:
    assert len(load_table(_options()).y) == WINE_ROWS and load_test_table(_options()) is None


def _write_csv(path: Path, rows: int, labels: list[str], seed: int) -> None:
    rng = np.random.default_rng(seed)
    with open(path, "w") as out:
        out.write("b,a,label\n")
        for index in range(rows):
            out.write(f"{rng.normal():.6f},{rng.normal():.6f},{labels[index % len(labels)]}\n")


def test_test_path_is_a_table_of_its_own(tmp_path: Path) -> None:
    _write_csv(tmp_path / "train.csv", 40, ["cat", "dog"], 0)
    _write_csv(tmp_path / "test.csv", 10, ["dog", "cat"], 1)
    options = _options(dataset={"path": "train.csv", "target": "label"}, test_path="test.csv")
    test = load_test_table(options, tmp_path)
    assert test is not None and test.labels == ("cat", "dog") and len(test.y) == 10
    assert test.y.tolist()[:2] == [1, 0]  # dog, cat: the training table's class numbers
    assert len(load_table(options, tmp_path).y) == 40
    _write_csv(tmp_path / "bad.csv", 10, ["cat", "bird"], 1)
    with pytest.raises(SpecError, match="class labels bird are not among"):
        load_test_table(options.model_copy(update={"test_path": "bad.csv"}), tmp_path)


def test_test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="not both"):
        _options(dataset={"path": "a.csv", "target": "y"}, test_fraction=0.2, test_path="b.csv")
    with pytest.raises(ValueError, match="test_path goes with a table dataset"):
        _options(test_path="b.csv")


def test_a_test_split_too_large_to_stratify_is_drawn_at_random() -> None:
    options = OPTIONS_BY_BUILTIN["mlp_classifier"].model_validate(
        {"builtin": "mlp_classifier", "dataset": "digits", "test_fraction": 0.995, "validation": {"fraction": 0.5}}
    )
    record = held_out_record(options)  # 9 rows left for 10 classes: was sklearn's ValueError
    assert record is not None and not record["stratified"] and record["of_rows"] - record["rows"] == 9
