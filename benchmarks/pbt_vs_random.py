"""PBT against random search on the same budget: digits MLP, plain SGD, 8 x 30 epochs.

Runs ``raytuner run`` on benchmarks/specs/digits-sgd-{pbt,random}.yaml for several seeds
(the seed of the initial population / the random sample and of the workload) and compares
the best validation loss and accuracy; median over seeds. No timed assertions anywhere.

    .venv/bin/python benchmarks/pbt_vs_random.py --seeds 0 1 2 --out benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
RAYTUNER = Path(sys.executable).parent / "raytuner"


def run(spec: str, seed: int, storage: Path) -> dict[str, float]:
    started = time.time()
    done = subprocess.run(
        [str(RAYTUNER), "run", str(HERE / "specs" / spec), "--json", "--storage", str(storage),
         "--set", f"search.seed={seed}", "--set", f"trainable.seed={seed}", "--name", f"{Path(spec).stem}-{seed}"],
        capture_output=True, text=True, env={k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"},
    )
    if done.returncode != 0:
        raise SystemExit(f"{spec} seed {seed} failed:\n{done.stderr[-2000:]}")
    folder = Path(json.loads(done.stdout.splitlines()[-1])["folder"])
    results = pq.read_table(folder / "results.parquet").to_pandas()
    decisions = folder / "pbt_decisions.parquet"
    return {
        "best_val_loss": float(results["val_loss"].min()),
        "best_val_accuracy": float(results["val_accuracy"].max()),
        "epochs": int(len(results)),
        "exploits": pq.read_table(decisions).num_rows if decisions.exists() else 0,
        "wall_s": time.time() - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    rows: dict[str, list[dict[str, float]]] = {"pbt": [], "random": []}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            for kind in ("pbt", "random"):
                outcome = run(f"digits-sgd-{kind}.yaml", seed, Path(tmp))
                rows[kind].append(outcome)
                print(f"{kind:6s} seed {seed}: {outcome}", flush=True)
    lines = [
        f"# PBT vs random search: digits MLP, plain SGD, 8 trials x 30 epochs, seeds {args.seeds}",
        "",
        "| method | median best val_loss | median best val_accuracy | epochs run (median) | exploits (median) |",
        "|---|---:|---:|---:|---:|",
    ]
    for kind, outcomes in rows.items():
        med = {key: statistics.median(o[key] for o in outcomes) for key in outcomes[0]}
        lines.append(
            f"| {kind} | {med['best_val_loss']:.4f} | {med['best_val_accuracy']:.4f} | {med['epochs']:.0f} | "
            f"{med['exploits']:.0f} |"
        )
    per_seed = [f"seed {s}: pbt {p['best_val_loss']:.4f} vs random {r['best_val_loss']:.4f}"
                for s, p, r in zip(args.seeds, rows["pbt"], rows["random"], strict=True)]
    lines += ["", "Per seed (best val_loss): " + "; ".join(per_seed) + "."]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "pbt_vs_random.md").write_text("\n".join(lines) + "\n")
    (args.out / "pbt_vs_random.json").write_text(json.dumps(rows, indent=2))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
