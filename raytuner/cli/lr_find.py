"""``raytuner lr-find``: the learning-rate range test for a built-in PyTorch workload."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from raytuner.cli import strict_json
from raytuner.cli.errors import handles_errors
from raytuner.cli.options import JsonOpt, SetOpt, SpecArg

app = typer.Typer()


@app.command("lr-find")
@handles_errors
def lr_find(
    spec: SpecArg,
    set_: SetOpt = None,
    min_lr: Annotated[float, typer.Option("--min-lr", min=0.0, help="First learning rate.")] = 1e-6,
    max_lr: Annotated[float, typer.Option("--max-lr", min=0.0, help="Last learning rate.")] = 10.0,
    steps: Annotated[int, typer.Option("--steps", min=5, help="Training steps (batches).")] = 100,
    plot: Annotated[Path, typer.Option("--plot", help="Where to save the plot (SVG).")] = Path("lr-find.svg"),
    json_: JsonOpt = False,
) -> None:
    """Train briefly while raising the learning rate exponentially; suggest a learning rate.

    Uses the spec's workload and its first point to evaluate (or a configuration drawn
    from the space with the spec's seed); the configuration's own lr is ignored.
    """
    import raytuner
    from raytuner.cli.render import format_config, stdout_console

    result = raytuner.lr_find(spec, overrides=set_ or [], min_lr=min_lr, max_lr=max_lr, steps=steps)
    plot.write_text(result.plot_svg())
    config = result.config
    if json_:
        payload = {
            "config": config,
            "suggested_lr": result.suggested_lr,
            "divergence_lr": result.divergence_lr,
            "plot": str(plot),
            "lrs": list(result.lrs),
            "losses": list(result.losses),
        }
        typer.echo(strict_json.dumps(payload))
        return
    console = stdout_console()
    console.print(f"config: {format_config(config, 200)}", markup=False)
    console.print(f"suggested lr (steepest loss descent): {result.suggested_lr:.3g}")
    if result.divergence_lr is None:
        console.print(f"the loss did not diverge up to {max_lr:g}")
    else:
        console.print(f"the loss diverges from lr {result.divergence_lr:.3g}")
    console.print(
        f"a range to search: loguniform [{result.suggested_lr / 10:.2g}, "
        f"{min(result.suggested_lr * 10, result.divergence_lr or float('inf')):.2g}]",
        markup=False,
    )
    console.print(f"plot: {plot}")
