"""A built-in workload's final model on disk: weights, architecture and preprocessing.

``raytuner refit`` writes it (``model.json`` and ``model.pt`` in ``refit/``);
``raytuner predict`` reads it and applies it to a table: the same column order, feature
scaling and class labels the model was trained with. Importing this module does not import
torch; loading the weights does.
"""

from __future__ import annotations

import json
import pickle
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from raytuner.errors import UsageError

if TYPE_CHECKING:
    from torch import nn

MODEL_JSON = "model.json"
MODEL_WEIGHTS = "model.pt"
MODEL_FORMAT = 1


@dataclass(frozen=True)
class FinalModel:
    """What predicting needs besides the weights.

    Attributes:
        builtin: the workload (``mlp_classifier``...), which builds the architecture.
        config: the trial configuration (depth, hidden, activation... as tuned).
        features: the feature columns, in the order the network takes them.
        target: the target column's name (a shipped dataset's name).
        feature_mean, feature_std: the scaling fitted on the training rows (None: unscaled).
        labels: each class index's label, as the data wrote it (None: regression).
        target_mean, target_std: a regressor's target scaling, undone on its outputs.
        image_shape: a CNN's [channels, height, width].
        epochs: the epochs it was trained for.
    """

    builtin: str
    config: dict[str, Any]
    features: list[str]
    target: str
    feature_mean: list[float] | None
    feature_std: list[float] | None
    labels: list[Any] | None
    target_mean: float = 0.0
    target_std: float = 1.0
    image_shape: list[int] | None = None
    epochs: int = 0
    format: int = field(default=MODEL_FORMAT)

    def save(self, folder: Path, network: nn.Module) -> None:
        """Write ``model.json`` and ``model.pt`` (the network's state_dict) into ``folder``."""
        import torch

        folder.mkdir(parents=True, exist_ok=True)
        (folder / MODEL_JSON).write_text(json.dumps(asdict(self), indent=1) + "\n")
        torch.save({name: tensor.cpu() for name, tensor in network.state_dict().items()}, folder / MODEL_WEIGHTS)

    @classmethod
    def load(cls, folder: Path) -> FinalModel:
        """Read ``model.json`` from ``folder`` (a model folder or an experiment's ``refit/``).

        Raises:
            UsageError: no model there, or one of another format.
        """
        path = folder / MODEL_JSON
        if not path.is_file():
            raise UsageError(f"{folder}: no {MODEL_JSON}; expected a model folder written by raytuner refit")
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise UsageError(f"{path}: unreadable ({exc}); the refit folder is damaged: run raytuner refit again") from exc
        if not isinstance(data, dict) or data.get("format") != MODEL_FORMAT:
            found = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise UsageError(f"{path}: model format {found!r}, this raytuner reads {MODEL_FORMAT}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise UsageError(f"{path}: not a model this raytuner wrote ({exc}); run raytuner refit again") from exc

    def network(self, folder: Path) -> nn.Module:
        """The network with the weights in ``folder``, in eval mode on the CPU."""
        import torch

        from raytuner.workloads.torch.datasets import Fold
        from raytuner.workloads.torch.fold import TASKS
        from raytuner.workloads.torch.hyperparams import parse_config

        empty = np.zeros((0, len(self.features)), dtype=np.float32)
        shape = (self.image_shape[0], self.image_shape[1], self.image_shape[2]) if self.image_shape else None
        classes = len(self.labels) if self.labels is not None else None
        fold = Fold(empty, np.zeros(0), empty, np.zeros(0), classes, shape)
        network = TASKS[self.builtin].build(fold, parse_config(self.config))
        try:
            weights = torch.load(folder / MODEL_WEIGHTS, map_location="cpu", weights_only=True)
            network.load_state_dict(weights)
        except (OSError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError) as exc:
            raise UsageError(
                f"{folder / MODEL_WEIGHTS}: unreadable ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); "
                "the refit folder is damaged: run raytuner refit again"
            ) from exc
        network.eval()
        return network

    def scale(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
        """Features as the network saw them in training."""
        if self.feature_mean is not None and self.feature_std is not None:
            x = (x - np.asarray(self.feature_mean)) / np.asarray(self.feature_std)
        return x.astype(np.float32)

    def predict(self, folder: Path, x: npt.NDArray[np.float64]) -> dict[str, list[Any]]:
        """Predictions for the rows of ``x`` (columns in :attr:`features` order): ``prediction``
        (a class label or a value) and, for a classifier, ``probability_<label>`` per class."""
        import torch

        network = self.network(folder)
        with torch.no_grad():
            output = network(torch.from_numpy(self.scale(x)))
        if self.labels is None:
            values = output.squeeze(-1).double().numpy() * self.target_std + self.target_mean
            return {"prediction": values.tolist()}
        probabilities = torch.softmax(output, dim=1).double().numpy()
        columns: dict[str, list[Any]] = {"prediction": [self.labels[i] for i in probabilities.argmax(axis=1)]}
        for index, label in enumerate(self.labels):
            columns[f"probability_{label}"] = probabilities[:, index].tolist()
        return columns

    def feature_matrix(self, table: Any, source: str) -> npt.NDArray[np.float64]:
        """The model's feature columns of a pyarrow table, in the model's order.

        Raises:
            UsageError: a feature column is missing, another column is there (the target
                may be), or a feature is not numeric or has missing values.
        """
        import pyarrow as pa

        columns = list(table.column_names)
        missing = [name for name in self.features if name not in columns]
        if missing:
            raise UsageError(
                f"{source}: missing feature column(s) {', '.join(missing)}; the model takes {', '.join(self.features)}"
            )
        extra = [name for name in columns if name not in self.features and name != self.target]
        if extra:
            raise UsageError(
                f"{source}: column(s) {', '.join(extra)} are not features of the model; it takes "
                f"{', '.join(self.features)} (and ignores {self.target})"
            )
        if table.num_rows == 0:
            raise UsageError(f"{source}: no rows to predict (the table has its columns and nothing else)")
        for name in self.features:
            kind = table.schema.field(name).type
            if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)):
                raise UsageError(f"{source}: feature column {name!r} is not numeric (type {kind})")
            if table.column(name).null_count:
                raise UsageError(f"{source}: feature column {name!r} has {table.column(name).null_count} missing values")
        arrays = [table.column(name).to_numpy(zero_copy_only=False).astype(np.float64) for name in self.features]
        return np.column_stack(arrays) if arrays else np.zeros((table.num_rows, 0))
