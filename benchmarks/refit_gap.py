"""How optimistic the search's number is: the best trial's validation score next to the
refit model's score on a test split the search never saw (docs/workloads.md has the table).

For each shipped dataset (digits, wine, breast_cancer, diabetes) and seed: a random search
of the built-in MLP (inline backend) with ``test_fraction: 0.2``, then ``refit`` of the best
configuration for the epoch where it peaked, scored on the test rows.

    .venv/bin/python benchmarks/refit_gap.py [--seeds 3] [--samples 8] [--epochs 30]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path
from typing import Any

import raytuner
from raytuner.final.refit import refit_experiment

DATASETS = {
    "digits": ("mlp_classifier", "val_accuracy", "max"),
    "wine": ("mlp_classifier", "val_accuracy", "max"),
    "breast_cancer": ("mlp_classifier", "val_accuracy", "max"),
    "diabetes": ("mlp_regressor", "val_rmse", "min"),
}


def spec(dataset: str, seed: int, samples: int, epochs: int, storage: Path) -> dict[str, Any]:
    builtin, metric, mode = DATASETS[dataset]
    return {
        "name": f"{dataset}-{seed}",
        "storage": str(storage),
        "trainable": {
            "builtin": builtin,
            "dataset": dataset,
            "max_epochs": epochs,
            "validation": {"fraction": 0.2},
            "test_fraction": 0.2,
            "seed": seed,
        },
        "metric": metric,
        "mode": mode,
        "space": {
            "lr": {"loguniform": [1e-4, 3e-2]},
            "hidden": {"choice": [32, 64, 128]},
            "depth": {"randint": [1, 3]},
            "dropout": {"uniform": [0.0, 0.3]},
            "weight_decay": {"loguniform": [1e-6, 1e-3]},
            "batch_size": {"choice": [32, 64]},
        },
        "search": {"algorithm": "random", "num_samples": samples, "seed": seed},
        "resources": {"cpu": 1},
        "checkpoint": {"every": 0},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    print(f"{args.samples} trials of up to {args.epochs} epochs per search, test_fraction 0.2, seeds 0..{args.seeds - 1}")
    print("| dataset | metric | best trial (validation), per seed | refit model (test), per seed | mean gap |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for dataset, (_, metric, _) in DATASETS.items():
            searched, tested = [], []
            for seed in range(args.seeds):
                searched_spec = spec(dataset, seed, args.samples, args.epochs, Path(folder))
                experiment = raytuner.run(searched_spec, inline=True, progress=False)
                summary = refit_experiment(experiment.folder)
                searched.append(summary.search_value)
                tested.append(summary.test[summary.test_metric])
            gap = statistics.mean(s - t for s, t in zip(searched, tested, strict=True))
            test_name = "test_" + metric.removeprefix("val_")
            print(
                f"| {dataset} | {metric} / {test_name} | {', '.join(f'{v:.3f}' for v in searched)} "
                f"| {', '.join(f'{v:.3f}' for v in tested)} | {gap:+.3f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
