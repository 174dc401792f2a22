"""Built-in PyTorch workloads: MLP classifier and regressor, a small CNN classifier.

Importing this package (or :mod:`.hyperparams`, :mod:`.datasets`) does not import torch;
:func:`make_trainable` and :func:`lr_range_test` import it inside. The spec's
``trainable: {builtin: ...}`` options are the models in :mod:`raytuner.spec.torch_options`
(the recommended spaces in :mod:`raytuner.spec.presets`); each trial's tuned hyperparameters
are parsed by :mod:`.hyperparams`.
"""

from __future__ import annotations

from raytuner.spec.presets import recommended_space
from raytuner.spec.torch_options import (
    OPTIONS_BY_BUILTIN,
    BuiltinDataset,
    CnnClassifierTrainable,
    MlpClassifierTrainable,
    MlpRegressorTrainable,
    OptimizerName,
    TorchTrainable,
)
from raytuner.workloads.torch.datasets import check_dataset
from raytuner.workloads.torch.hyperparams import (
    ActivationName,
    ConfigError,
    Hyperparameters,
    ScheduleName,
    parse_config,
)
from raytuner.workloads.torch.lr_find import LrFindResult, lr_range_test
from raytuner.workloads.torch.trainable import make_trainable

__all__ = [
    "OPTIONS_BY_BUILTIN",
    "ActivationName",
    "BuiltinDataset",
    "CnnClassifierTrainable",
    "ConfigError",
    "Hyperparameters",
    "LrFindResult",
    "MlpClassifierTrainable",
    "MlpRegressorTrainable",
    "OptimizerName",
    "ScheduleName",
    "TorchTrainable",
    "check_dataset",
    "lr_range_test",
    "make_trainable",
    "parse_config",
    "recommended_space",
]
