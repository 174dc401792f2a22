"""A Ray Tune function trainable, written for plain Ray Tune (experiments/own-function.yaml).

Nothing here imports raytuner: ``tune.report`` with a checkpoint each epoch and
``tune.get_checkpoint`` to resume, exactly as Ray Tune's documentation writes them.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from typing import Any

import numpy as np
from ray import tune  # noqa: TID253 - user code written for plain Ray Tune
from sklearn.datasets import load_digits
from sklearn.linear_model import SGDClassifier
from sklearn.model_selection import train_test_split


def train(config: dict[str, Any]) -> None:
    x, y = load_digits(return_X_y=True)
    x_train, x_val, y_train, y_val = train_test_split(x / 16.0, y, test_size=0.25, random_state=0, stratify=y)
    classes = np.unique(y)
    model = SGDClassifier(learning_rate="constant", eta0=config["lr"], alpha=config["alpha"], random_state=0)
    start = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder, open(os.path.join(folder, "model.pkl"), "rb") as fh:
            start, model = pickle.load(fh)
    for epoch in range(start + 1, config["epochs"] + 1):
        model.partial_fit(x_train, y_train, classes=classes)
        metrics = {"epoch": epoch, "val_accuracy": float(model.score(x_val, y_val))}
        with tempfile.TemporaryDirectory() as folder:
            with open(os.path.join(folder, "model.pkl"), "wb") as fh:
                pickle.dump((epoch, model), fh)
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))
