"""``raytuner validate``: check a spec without starting Ray, show samples and the budget."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from raytuner.cli import strict_json
from raytuner.cli.errors import handles_errors
from raytuner.cli.options import JsonOpt, SetOpt, SpecArg

app = typer.Typer()


@app.command("validate")
@handles_errors
def validate(
    spec: SpecArg,
    set_: SetOpt = None,
    samples: Annotated[int, typer.Option("--samples", "-n", min=0, help="Sample configurations to show.")] = 3,
    json_: JsonOpt = False,
) -> None:
    """Check a spec (schema, ranges, combinations) without starting Ray."""
    import raytuner
    from raytuner.cli.render import format_config, stdout_console

    plan = raytuner.validate(spec, overrides=set_ or [], samples=samples)
    s = plan.spec
    if json_:
        payload = {
            "valid": True,
            "name": plan.name,
            "spec": s,
            "samples": plan.samples,
            "budget": {
                "trials": plan.trials,
                "max_iterations_per_trial": plan.max_iterations_per_trial,
                "max_iterations": plan.max_iterations,
                "expected_iterations": plan.expected_iterations,
            },
            "notes": list(plan.notes),
            "auto": None if plan.auto is None else {"algorithm": plan.auto[0], "reason": plan.auto[1]},
        }
        typer.echo(strict_json.dumps(payload, indent=2))
        return
    console = stdout_console()
    console.print(f"[green]valid[/green]: {spec} ({plan.name})")
    resources = s["resources"]
    console.print(
        f"  {s['search']['algorithm']} search, {s['scheduler']['type']} scheduler, "
        f"{', '.join(f'{metric} ({mode})' for metric, mode in plan.objectives)}, "
        f"{resources['cpu']:g} CPU / {resources['gpu']:g} GPU per trial"
    )
    if plan.auto is not None:
        console.print(f"  auto starts with {plan.auto[0]}: {plan.auto[1]}", markup=False)
    line = f"  budget: {plan.trials} trials"
    if plan.max_iterations_per_trial is not None:
        line += f" × at most {plan.max_iterations_per_trial} iterations = {plan.max_iterations} iterations"
        if plan.expected_iterations != plan.max_iterations:
            line += f" (about {plan.expected_iterations} expected with early stopping)"
    console.print(line)
    console.print("  space:")
    for key, value in s["space"].items():
        console.print(f"    {key}: {json.dumps(value)}", soft_wrap=True, markup=False)
    for note in plan.notes:
        console.print(f"  note: {note}", markup=False)
    for i, config in enumerate(plan.samples, 1):
        console.print(f"  sample {i}: {format_config(config, 200)}", markup=False)
