"""``raytuner refit``: train the best configuration on every row the search saw, score it on the test split."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated

import typer

from raytuner.cli.errors import handles_errors
from raytuner.cli.options import JsonOpt, SetOpt, StorageRootOpt

if TYPE_CHECKING:
    from raytuner.execution.events import Listener

app = typer.Typer()

ExperimentArg = Annotated[
    str, typer.Argument(help="Experiment: name (under --storage), folder, or s3://... URI.", show_default=False)
]
AddressOpt = Annotated[
    str | None,
    typer.Option(
        "--address", envvar="RAY_ADDRESS", help="Refit on this Ray cluster instead of a local Ray (the Ray backend)."
    ),
]
InlineOpt = Annotated[
    bool, typer.Option("--inline", help="Train in this process, no Ray, even if the experiment ran on Ray.")
]

EpochsOpt = Annotated[
    str,
    typer.Option(
        "--epochs",
        help="best: the epoch where the best trial peaked; or a number of epochs.",
    ),
]


def parse_epochs(value: str) -> int | None:
    """``best`` is None; a positive whole number is itself.

    Raises:
        UsageError: anything else.
    """
    from raytuner.errors import UsageError

    if value == "best":
        return None
    if value.isdigit() and int(value) > 0:
        return int(value)
    raise UsageError(f"--epochs takes best or a positive whole number, found {value!r}")


@app.command("refit")
@handles_errors
def refit(
    experiment: ExperimentArg,
    storage: StorageRootOpt = "runs",
    epochs: EpochsOpt = "best",
    set_: SetOpt = None,
    address: AddressOpt = None,
    inline: InlineOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Train the best configuration once more on training + validation rows (k-fold: all folds),
    score it on the test split (trainable.test_fraction or test_path), and save it in the
    experiment's refit/ folder: model.json, model.pt, metrics.json (in the bucket for an
    experiment on object storage), and its row in refit.parquet. raytuner predict uses it.

    An experiment that ran on Ray refits as one Ray task with a trial's resources (CPUs, GPUs),
    on a local Ray or the cluster --address names; --inline (or an inline experiment) trains
    in this process. Each epoch's metrics are printed as it ends.

    Own code (function, class, command): runs the trainable once with the best configuration
    as a single trial, on the experiment's backend (in refit/), and keeps its last checkpoint
    in refit/checkpoint; metrics.json holds its last reported metrics (test_* ones as its test
    score) next to the search's best.

    --set applies to the spec it trains from, whose space is the best configuration
    (e.g. --set space.lr=0.01, --set space.epochs=50).
    """
    import raytuner
    from raytuner.cli import strict_json

    count = parse_epochs(epochs)

    def progress(metrics: Mapping[str, float]) -> None:
        if json_:
            return
        shown = ", ".join(f"{key} {value:.4g}" for key, value in metrics.items() if key not in ("epoch", "num_params"))
        typer.echo(f"epoch {int(metrics['epoch'])}: {shown}", err=True)

    summary = raytuner.open(experiment, storage=storage).refit(
        epochs=count,
        overrides=set_ or [],
        on_epoch=progress,
        listener=_listener(json_),
        address=address,
        inline=inline,
    )
    if json_:
        typer.echo(
            strict_json.dumps(
                {
                    "folder": summary.location or str(summary.folder),
                    "trial_id": summary.trial_id,
                    "metric": summary.metric,
                    summary.metric: summary.search_value,
                    "epochs": summary.epochs,
                    **summary.test,
                }
            )
        )
        return
    if summary.train_rows == 0:  # own code: one trial of the best configuration
        typer.echo(f"ran trial {summary.trial_id}'s configuration once ({summary.epochs} iterations)")
        typer.echo(f"search's best {summary.metric}: {summary.search_value:.6g}")
        if summary.test:
            typer.echo("its test scores: " + ", ".join(f"{key} {value:.6g}" for key, value in summary.test.items()))
        kept = f"its last checkpoint in {summary.checkpoint}" if summary.checkpoint else "no checkpoint (it saved none)"
        typer.echo(f"kept {kept}; metrics in {summary.folder / 'metrics.json'}")
        return
    typer.echo(f"refit trial {summary.trial_id}'s configuration for {summary.epochs} epochs on {summary.train_rows} rows")
    typer.echo(f"search's best {summary.metric} (validation): {summary.search_value:.6g}")
    if summary.test_metric in summary.test:
        score = summary.test[summary.test_metric]
        typer.echo(f"final model's {summary.test_metric} ({summary.test_rows} test rows): {score:.6g}")
    else:
        typer.echo("no test split (trainable.test_fraction or test_path): the final model is not scored")
    typer.echo(f"saved in {summary.location}; raytuner predict {summary.location} TABLE -o OUT")


def _listener(quiet: bool) -> Listener:
    """Progress lines for own code's one-trial run (nothing with --json)."""
    from raytuner.execution.events import NullListener

    if quiet:
        return NullListener()
    from raytuner.cli.render import choose_listener, stdout_console

    listener: Listener = choose_listener(stdout_console(), False, True)
    return listener
