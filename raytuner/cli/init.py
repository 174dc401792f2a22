"""``raytuner init``: write a commented starter spec."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from raytuner.cli.errors import handles_errors

app = typer.Typer()

STARTER = """\
# A raytuner experiment spec. Check it with `raytuner validate {path}`,
# run it with `raytuner run {path}`. `raytuner schema` prints the JSON Schema.
name: {name}

# What to train: a built-in workload, or your own Ray Tune function or Trainable class:
#   trainable: {{function: mypackage.train:train}}
trainable:
  builtin: analytic          # a fast analytic objective (no torch), good for trying things
  objective: branin
  iterations: 20             # reports per trial

metric: loss                 # the reported value to optimize...
mode: min                    # ...and whether lower or higher is better

# The search space. Distributions: uniform, loguniform, quniform, qloguniform, randint,
# qrandint, lograndint, normal, qnormal; choice and grid; plain values are constants.
# A choice of mappings is conditional: each branch has its own sub-space.
space:
  x1: {{uniform: [-5, 10]}}
  x2: {{uniform: [0, 15]}}

search:
  algorithm: optuna_tpe      # the default; also random | grid | hyperopt | cmaes | gp | nsga2 | nevergrad_de | bohb
  num_samples: 32            # trials (grid: repeats of the grid)
  max_concurrent: 4          # trials at once (default: as many as resources allow)
  seed: 0

scheduler:                   # early stopping of bad trials
  type: asha                 # fifo | asha | hyperband | median
  max_t: 20
  grace_period: 2
  reduction_factor: 3

resources: {{cpu: 1, gpu: 0}} # per trial; gpu: 0.25 packs four trials on each GPU

stop:                        # optional per-trial stop conditions
  iterations: 20
  # metrics: {{loss: {{at_most: 0.5}}}}

checkpoint: {{every: 0, keep: 2}}   # keep: the last 2; add score: METRIC to keep the 2 best by it (and the latest)
failure: {{max_retries: 1}}
storage: runs                # experiment folders go here
"""


@app.command("init")
@handles_errors
def init(
    path: Annotated[Path, typer.Argument(help="Where to write the spec.")] = Path("experiment.yaml"),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented starter spec."""
    from raytuner.errors import UsageError
    from raytuner.spec.loader import _default_name

    if path.exists() and not force:
        raise UsageError(f"{path} exists; use --force to overwrite it")
    path.write_text(STARTER.format(path=path, name=_default_name(str(path))))
    typer.echo(f"wrote {path}; next: raytuner validate {path}")
