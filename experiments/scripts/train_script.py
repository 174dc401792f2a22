"""A training script that knows nothing about raytuner or Ray (experiments/own-script.yaml).

    python train_script.py --lr 0.01 --alpha 0.0001 --epochs 15

Trains a linear classifier on scikit-learn's digits with SGD, one epoch at a time, and
prints one JSON line of metrics per epoch. If $RAYTUNER_CHECKPOINT_DIR is set it saves the
model there before each report, and resumes from $RAYTUNER_RESTORE_DIR when given one.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import SGDClassifier
from sklearn.model_selection import train_test_split


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=float, required=True)
    parser.add_argument("--alpha", type=float, default=1e-4)
    parser.add_argument("--epochs", type=int, default=15)
    args = parser.parse_args()

    x, y = load_digits(return_X_y=True)
    x_train, x_val, y_train, y_val = train_test_split(x / 16.0, y, test_size=0.25, random_state=0, stratify=y)
    classes = np.unique(y)
    model = SGDClassifier(learning_rate="constant", eta0=args.lr, alpha=args.alpha, random_state=0)
    start = 0
    restore = os.environ.get("RAYTUNER_RESTORE_DIR")
    if restore:
        with open(Path(restore, "model.pkl"), "rb") as fh:
            start, model = pickle.load(fh)
        print(f"resumed after epoch {start}")
    checkpoint = os.environ.get("RAYTUNER_CHECKPOINT_DIR")
    for epoch in range(start + 1, args.epochs + 1):
        model.partial_fit(x_train, y_train, classes=classes)
        if checkpoint:
            tmp = Path(checkpoint, "model.pkl.tmp")
            with open(tmp, "wb") as fh:
                pickle.dump((epoch, model), fh)
            tmp.replace(Path(checkpoint, "model.pkl"))  # atomic: the folder may be copied at any time
        metrics = {
            "epoch": epoch,
            "train_accuracy": float(model.score(x_train, y_train)),
            "val_accuracy": float(model.score(x_val, y_val)),
        }
        print(json.dumps(metrics), flush=True)


if __name__ == "__main__":
    main()
