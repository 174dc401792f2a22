"""The spec's JSON Schema: the typed models, plus the space language they keep raw."""

from __future__ import annotations

from typing import Any

from raytuner.space.model import Op
from raytuner.spec.models import Spec

_PAIR = {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}
_TRIPLE = {"type": "array", "items": {"type": "number"}, "minItems": 3, "maxItems": 3}
_ARGS: dict[Op, tuple[dict[str, Any], str]] = {
    Op.UNIFORM: (_PAIR, "[low, high]: a real number, uniform"),
    Op.LOGUNIFORM: (_PAIR, "[low, high], low > 0: a real number, uniform on a log scale"),
    Op.QUNIFORM: (_TRIPLE, "[low, high, q]: uniform, rounded to a multiple of q"),
    Op.QLOGUNIFORM: (_TRIPLE, "[low, high, q]: log-uniform, rounded to a multiple of q"),
    Op.RANDINT: (_PAIR, "[low, high]: an integer, high excluded"),
    Op.QRANDINT: (_TRIPLE, "[low, high, q]: an integer multiple of q, high included"),
    Op.LOGRANDINT: (_PAIR, "[low, high], low >= 1: an integer on a log scale, high excluded"),
    Op.NORMAL: (_PAIR, "[mean, sd]: normally distributed"),
    Op.QNORMAL: (_TRIPLE, "[mean, sd, q]: normal, rounded to a multiple of q"),
}


def space_schema() -> dict[str, Any]:
    """JSON Schema definitions for the space language (a recursive ``Node``)."""
    node_ref = {"$ref": "#/$defs/SpaceNode"}
    operators: list[dict[str, Any]] = [
        {
            "type": "object",
            "properties": {op.value: {**args, "description": text}},
            "required": [op.value],
            "additionalProperties": False,
        }
        for op, (args, text) in _ARGS.items()
    ]
    for op, text in (
        (Op.CHOICE, "one of the options; options that are mappings are conditional branches"),
        (Op.GRID, "every option, enumerated by grid and random search"),
    ):
        operators.append(
            {
                "type": "object",
                "properties": {op.value: {"type": "array", "items": node_ref, "minItems": 1, "description": text}},
                "required": [op.value],
                "additionalProperties": False,
            }
        )
    operators.append(
        {
            "type": "object",
            "properties": {Op.CONSTANT.value: {"description": "this value, as is"}},
            "required": [Op.CONSTANT.value],
            "additionalProperties": False,
        }
    )
    return {
        "SpaceNode": {
            "description": "A constant, a distribution, a choice, or a nested mapping of parameters.",
            "anyOf": [
                *operators,
                # a nested mapping, unless it names an operator (then it must be that operator alone)
                {"$ref": "#/$defs/Space", "not": {"anyOf": [{"required": [op.value]} for op in Op]}},
                {"type": ["string", "number", "boolean", "null", "array"]},
            ],
        },
        "Space": {
            "type": "object",
            "description": "Parameter names mapped to space nodes.",
            "additionalProperties": node_ref,
        },
    }


def spec_json_schema() -> dict[str, Any]:
    schema = Spec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "raytuner experiment spec"
    schema.setdefault("$defs", {}).update(space_schema())
    schema["properties"]["space"] = {"$ref": "#/$defs/Space", "description": "The search space."}
    # several metrics (multi-objective): at least two, each once; a list of modes has one per metric
    for key, extra in (("metric", {"minItems": 2, "uniqueItems": True}), ("mode", {"minItems": 2})):
        for option in schema["properties"][key]["anyOf"]:
            if option.get("type") == "array":
                option.update(extra)
    return schema
