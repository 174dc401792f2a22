"""The fixed options of the built-in PyTorch workloads: what ``trainable:`` says.

These models hold what does not change between trials (the data, the epoch budget, the
validation scheme, the seed, fine-tuning sources). What a search tunes (learning rate,
optimizer, architecture...) comes from each trial's ``config`` instead; see
:mod:`raytuner.workloads.torch.hyperparams`.

This module imports only pydantic and the standard library, so validating a spec or
printing ``--help`` never imports torch.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, model_validator

from raytuner.spec.base import Model


class BuiltinDataset(str, Enum):
    """Datasets shipped with scikit-learn (no download)."""

    DIGITS = "digits"
    BREAST_CANCER = "breast_cancer"
    WINE = "wine"
    DIABETES = "diabetes"


class WatchedMetric(str, Enum):
    """Validation metrics that early stopping can watch."""

    VAL_LOSS = "val_loss"
    VAL_ACCURACY = "val_accuracy"
    VAL_RMSE = "val_rmse"
    VAL_MAE = "val_mae"

    @property
    def maximize(self) -> bool:
        return self is WatchedMetric.VAL_ACCURACY


class TableDataset(Model):
    """A user table in a CSV or Parquet file: one row per example."""

    path: str = Field(min_length=1, description="CSV or Parquet file, relative to the spec's folder")
    target: str = Field(min_length=1, description="the column to predict")
    features: list[str] | None = Field(
        None, min_length=1, description="feature columns (default: every column but the target)"
    )


class Holdout(Model):
    """One train/validation split."""

    fraction: float = Field(0.2, gt=0, lt=1, description="share of the rows held out for validation")


class KFold(Model):
    """k-fold cross-validation: k models per trial, metrics averaged across folds each epoch."""

    folds: int = Field(ge=2, le=20, description="number of folds (each trial trains this many models)")


def _validation_tag(value: Any) -> str:
    if isinstance(value, dict):
        return "kfold" if "folds" in value else "holdout"
    return "kfold" if isinstance(value, KFold) else "holdout"


Validation = Annotated[
    Annotated[Holdout, Tag("holdout")] | Annotated[KFold, Tag("kfold")],
    Discriminator(_validation_tag),
]


class EarlyStopping(Model):
    """Stop a trial once its validation metric has not improved for ``patience`` epochs."""

    patience: int = Field(ge=1, description="epochs without improvement before the trial stops")
    metric: WatchedMetric = Field(WatchedMetric.VAL_LOSS, description="the validation metric to watch")
    min_delta: float = Field(0.0, ge=0, description="smallest change that counts as an improvement")


class TorchTrainableBase(Model):
    """Options shared by every built-in PyTorch workload."""

    dataset: BuiltinDataset | TableDataset = Field(
        description="a shipped dataset (digits, breast_cancer, wine, diabetes) or {path, target}"
    )
    max_epochs: int = Field(20, ge=1, le=100_000, description="epochs per trial (one report each)")
    validation: Validation = Field(
        default_factory=lambda: Holdout.model_validate({}),
        description="{fraction: 0.2} for a holdout split or {folds: k} for k-fold",
    )
    test_fraction: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="share of the rows set aside as a test split no trial sees (stratified for "
        "classifiers, seeded by seed); raytuner refit scores the final model on it",
    )
    test_path: str | None = Field(
        None,
        min_length=1,
        description="a table dataset's test rows in their own CSV or Parquet file (same columns), "
        "relative to the spec's folder; no trial sees them",
    )
    seed: int = Field(0, ge=0, description="seed for the split, the initial weights and the batch order")
    standardize: bool = Field(True, description="scale features to zero mean and unit variance (fit on train rows)")
    early_stopping: EarlyStopping | None = Field(
        None, description="stop a trial whose validation metric stalls for some epochs"
    )
    init_from: str | None = Field(
        None,
        min_length=1,
        description="fine-tuning: a checkpoint folder or state.pt file of this workload, or a "
        "torch state_dict file; parameters whose name and shape match are loaded",
    )
    freeze_layers: int = Field(
        0, ge=0, description="fine-tuning: leave the first N layer groups untrained (0: train all)"
    )

    @property
    def is_classifier(self) -> bool:
        return True

    @property
    def metrics(self) -> tuple[WatchedMetric, ...]:
        """The validation metrics this workload reports."""
        if self.is_classifier:
            return (WatchedMetric.VAL_LOSS, WatchedMetric.VAL_ACCURACY)
        return (WatchedMetric.VAL_LOSS, WatchedMetric.VAL_RMSE, WatchedMetric.VAL_MAE)

    @property
    def has_test_split(self) -> bool:
        return self.test_fraction is not None or self.test_path is not None

    @model_validator(mode="after")
    def _one_test_split(self) -> TorchTrainableBase:
        if self.test_fraction is not None and self.test_path is not None:
            raise ValueError("give test_fraction or test_path, not both")
        if self.test_path is not None and not isinstance(self.dataset, TableDataset):
            raise ValueError(
                f"test_path goes with a table dataset ({{path, target}}); for {self.dataset.value} use test_fraction"
            )
        return self

    @model_validator(mode="after")
    def _watched_metric_is_reported(self) -> TorchTrainableBase:
        if self.early_stopping is not None and self.early_stopping.metric not in self.metrics:
            reported = ", ".join(metric.value for metric in self.metrics)
            raise ValueError(
                f"early_stopping.metric must be one of {reported} for this workload, "
                f"found {self.early_stopping.metric.value}"
            )
        return self


class MlpClassifierTrainable(TorchTrainableBase):
    """A multi-layer perceptron classifier; reports val_accuracy and val_loss (cross-entropy)."""

    builtin: Literal["mlp_classifier"]


class MlpRegressorTrainable(TorchTrainableBase):
    """A multi-layer perceptron regressor; reports val_rmse, val_mae and val_loss (MSE)."""

    builtin: Literal["mlp_regressor"]
    standardize_target: bool = Field(
        True,
        description="train on a standardized target (fit on train rows); val_rmse and val_mae "
        "stay in the target's own units",
    )

    @property
    def is_classifier(self) -> bool:
        return False


class CnnClassifierTrainable(TorchTrainableBase):
    """A small convolutional classifier on images (digits as 1x8x8, or a table of pixels)."""

    builtin: Literal["cnn_classifier"]
    image_shape: tuple[int, int, int] | None = Field(
        None,
        description="[channels, height, width] of each row of a table dataset (digits is 1x8x8 without it)",
    )

    @model_validator(mode="after")
    def _image_shape_positive(self) -> CnnClassifierTrainable:
        if self.image_shape is not None and min(self.image_shape) < 1:
            raise ValueError(f"image_shape entries must be >= 1, found {list(self.image_shape)}")
        return self


TorchTrainable = MlpClassifierTrainable | MlpRegressorTrainable | CnnClassifierTrainable

OPTIONS_BY_BUILTIN: dict[str, type[MlpClassifierTrainable | MlpRegressorTrainable | CnnClassifierTrainable]] = {
    "mlp_classifier": MlpClassifierTrainable,
    "mlp_regressor": MlpRegressorTrainable,
    "cnn_classifier": CnnClassifierTrainable,
}
