"""Workflow inputs: `-i k=v` strings parsed against each input's schema, then validated.

An input with a `default` is optional; any other declared input is required, and
an undeclared one is an error.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from sire.errors import InputError, did_you_mean
from sire.model.workflow import Workflow

_BOOLEANS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


def parse_value(name: str, raw: str, schema: Mapping[str, Any]) -> Any:
    """Parse the command-line string `raw` for input `name` by its declared type.

    Raises:
        InputError: `raw` cannot be read as the declared type.
    """
    kind = schema.get("type")
    kinds = set(kind) if isinstance(kind, list) else {kind}
    if kinds == {"string"}:
        return raw
    if kinds == {"integer"}:
        try:
            return int(raw)
        except ValueError:
            raise InputError(f"input '{name}' expects an integer, got '{raw}'") from None
    if kinds == {"number"}:
        try:
            return float(raw) if any(c in raw for c in ".eE") else int(raw)
        except ValueError:
            raise InputError(f"input '{name}' expects a number, got '{raw}'") from None
    if kinds == {"boolean"}:
        try:
            return _BOOLEANS[raw.lower()]
        except KeyError:
            raise InputError(f"input '{name}' expects true or false, got '{raw}'") from None
    try:
        return json.loads(raw)
    except ValueError:
        if kinds & {"array", "object"} and "string" not in kinds:
            raise InputError(f"input '{name}' expects JSON ({kind}), got '{raw}'") from None
        return raw


def parse_assignments(workflow: Workflow, pairs: list[str]) -> dict[str, Any]:
    """Turn `k=v` strings into values typed by the workflow's input schemas.

    Raises:
        InputError: a pair has no `=`, or names an undeclared input, or has a bad value.
    """
    values: dict[str, Any] = {}
    for pair in pairs:
        name, eq, raw = pair.partition("=")
        if not eq or not name:
            raise InputError(f"'-i {pair}' is not of the form name=value")
        schema = workflow.inputs.get(name)
        if schema is None:
            hint = did_you_mean(name, workflow.inputs)
            raise InputError(_unknown(workflow, name) + (f"; {hint}" if hint else ""))
        values[name] = parse_value(name, raw, schema)
    return values


def resolve_inputs(workflow: Workflow, given: Mapping[str, Any]) -> dict[str, Any]:
    """Validate `given` against the workflow's inputs and fill in defaults.

    Raises:
        InputError: an input is missing, undeclared or of the wrong type.
    """
    for name in given:
        if name not in workflow.inputs:
            raise InputError(_unknown(workflow, name))
    if not workflow.inputs:
        return {}
    validate = _validator(json.dumps(workflow.inputs, sort_keys=True))
    try:
        result: dict[str, Any] = validate(dict(given))
    except Exception as exc:
        message: str = getattr(exc, "message", str(exc))
        if message.startswith("data."):
            name, _, rest = message[5:].partition(" ")
            message = f"input '{name.split('.')[0]}' {rest}"
        elif message.startswith("data must contain"):
            missing = sorted(set(workflow.inputs) - set(given))
            message = f"missing required input '{missing[0]}'" if missing else message
        raise InputError(f"{workflow.id}: {message}") from None
    return result


def _unknown(workflow: Workflow, name: str) -> str:
    declared = ", ".join(sorted(workflow.inputs)) or "none"
    return f"workflow '{workflow.id}' has no input '{name}' (declared: {declared})"


@lru_cache(maxsize=64)
def _validator(inputs_json: str) -> Any:
    import fastjsonschema

    inputs = json.loads(inputs_json)
    schema = {
        "type": "object",
        "properties": inputs,
        "required": sorted(n for n, s in inputs.items() if "default" not in s),
    }
    return fastjsonschema.compile(schema)
