"""Ray's logger callbacks for ``execution.loggers``: per-trial CSV, JSON and TensorBoard files,
and one MLflow or Weights & Biases run per trial."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from raytuner.spec.models import Logger, MlflowSpec, Spec, WandbSpec


def logger_callbacks(spec: Spec, folder: Path) -> list[Any]:
    """Ray's callbacks for ``execution.loggers``: per-trial files, and one tracker run per trial."""
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback, TBXLoggerCallback

    factories: dict[Logger, Any] = {
        Logger.CSV: CSVLoggerCallback,
        Logger.JSON: JsonLoggerCallback,
        Logger.TENSORBOARD: TBXLoggerCallback,
        Logger.MLFLOW: lambda: _mlflow(spec, folder),
        Logger.WANDB: lambda: _wandb(spec, folder),
    }
    return [factories[logger]() for logger in dict.fromkeys(spec.execution.loggers)]


def _mlflow(spec: Spec, folder: Path) -> Any:
    from ray.air.integrations.mlflow import MLflowLoggerCallback

    settings = spec.execution.mlflow or MlflowSpec()
    uri = settings.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or (folder / "mlruns").as_uri()
    if uri.startswith(("file:", "/", ".")):
        # MLflow 3 refuses its file store (maintenance mode) unless allowed; it needs no database server
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    return MLflowLoggerCallback(tracking_uri=uri, experiment_name=settings.experiment_name or spec.name)


def _wandb(spec: Spec, folder: Path) -> Any:
    from ray.air.integrations.wandb import WandbLoggerCallback

    settings = spec.execution.wandb or WandbSpec()
    # Ray's default is the trial's staging folder, synced to storage before the runs finish
    init: dict[str, Any] = {"dir": os.environ.get("WANDB_DIR") or str(folder)}
    mode = settings.mode.value if settings.mode is not None else os.environ.get("WANDB_MODE")
    if mode:
        # Ray asks for an API key unless the driver's WANDB_MODE is offline or disabled; the
        # per-trial logging actors get the mode through wandb.init, whatever their environment
        os.environ["WANDB_MODE"] = init["mode"] = mode
    project = settings.project or os.environ.get("WANDB_PROJECT") or spec.name
    return WandbLoggerCallback(project=project, group=settings.group, **init)
