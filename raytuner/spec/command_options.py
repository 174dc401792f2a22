"""The spec's ``trainable: {command: [...]}``: any program, run once per trial.

Only pydantic and the standard library here: the spec models import this module, and
validating a spec must not import Ray.
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from raytuner.spec.base import Model

# ``{name}`` or ``{outer.inner}`` fills a value from the trial's config; ``{{`` and ``}}``
# are literal braces. Anything else between braces is an error, not silently kept.
PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*)\}|[{}]")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def placeholders(text: str) -> list[str]:
    """The config paths ``text`` refers to, in order (``"{model.width}"`` -> ``["model.width"]``).

    Raises:
        ValueError: a brace that is neither a placeholder nor doubled (``{{``, ``}}``).
    """
    names: list[str] = []
    for match in PLACEHOLDER.finditer(text):
        token = match.group(0)
        if token in ("{{", "}}"):
            continue
        if match.group(1) is None:
            raise ValueError(
                f"{text!r}: a lone '{token}' at position {match.start()}; write {{name}} to fill a config "
                "value (dots for nested keys: {model.width}), or double the brace for a literal one"
            )
        names.append(match.group(1))
    return names


class CommandTrainable(Model):
    """Any program, run once per trial without a shell, reporting metrics on its stdout."""

    command: list[str] = Field(
        min_length=1,
        description="the program and its arguments, never run through a shell; {name} (dots for nested "
        "keys: {model.width}) is replaced by the trial's config value, {{ and }} are literal braces; "
        "a first word 'python' or 'python3' is the Python that runs raytuner",
    )
    metrics_prefix: str | None = Field(
        None,
        min_length=1,
        description="read metrics only from stdout lines starting with this prefix, as key=value pairs "
        "(separated by spaces or commas) or a JSON object; null: every stdout line that is a JSON object",
    )
    env: dict[str, str] = Field(
        default_factory=dict,
        description="environment variables for the program, added to the worker's; values take {name} "
        "placeholders",
    )
    workdir: str | None = Field(
        None,
        min_length=1,
        description="the program's working directory, relative to the spec's folder (takes {name} "
        "placeholders; created if missing); null: the spec's folder",
    )
    stop_grace_s: float = Field(
        10.0,
        ge=0,
        description="seconds between SIGTERM and SIGKILL to the program's process group when a trial is "
        "stopped early, the run ends, the program exits leaving children running, or the trial's actor dies",
    )
    checkpoint: bool = Field(
        True,
        description="the program may write checkpoints into $RAYTUNER_CHECKPOINT_DIR and resume from "
        "$RAYTUNER_RESTORE_DIR; false: no checkpoint folder, a retried trial starts from scratch",
    )

    @field_validator("command")
    @classmethod
    def _command_placeholders(cls, value: list[str]) -> list[str]:
        if not value[0].strip():
            raise ValueError("the first word of command names the program; found an empty string")
        for word in value:
            placeholders(word)
        return value

    @field_validator("env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if not ENV_NAME.match(name):
                raise ValueError(f"environment variable names are letters, digits and _, found {name!r}")
            placeholders(text)
        return value

    @field_validator("workdir")
    @classmethod
    def _workdir_placeholders(cls, value: str | None) -> str | None:
        if value is not None:
            placeholders(value)
        return value
