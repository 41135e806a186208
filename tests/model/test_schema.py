"""`json_schema()`: a draft 2020-12 document that accepts what the loader accepts.

The schema is snapshot-tested against `snapshots/workflow.schema.json`. After an
intended change to the format, regenerate the snapshot with

    SIRE_UPDATE_SNAPSHOTS=1 .venv/bin/pytest tests/model/test_schema.py

and review the diff. A missing snapshot is written on the first run.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import fastjsonschema
import pytest
import yaml

from sire.errors import DefinitionError
from sire.model.format import json_schema
from sire.model.loader import parse_workflow

from .test_loader import FULL

SNAPSHOT = Path(__file__).parent / "snapshots" / "workflow.schema.json"
DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"

# The keywords of draft 2020-12 (core, applicator, validation, meta-data, format,
# content, unevaluated), each with the JSON type its value must have.
SCHEMA = "schema"
SCHEMA_MAP = "schema map"
SCHEMA_LIST = "schema list"
KEYWORDS: dict[str, Any] = {
    "$schema": str,
    "$id": str,
    "$ref": str,
    "$anchor": str,
    "$dynamicRef": str,
    "$dynamicAnchor": str,
    "$vocabulary": dict,
    "$comment": str,
    "$defs": SCHEMA_MAP,
    "allOf": SCHEMA_LIST,
    "anyOf": SCHEMA_LIST,
    "oneOf": SCHEMA_LIST,
    "not": SCHEMA,
    "if": SCHEMA,
    "then": SCHEMA,
    "else": SCHEMA,
    "dependentSchemas": SCHEMA_MAP,
    "prefixItems": SCHEMA_LIST,
    "items": SCHEMA,
    "contains": SCHEMA,
    "properties": SCHEMA_MAP,
    "patternProperties": SCHEMA_MAP,
    "additionalProperties": SCHEMA,
    "propertyNames": SCHEMA,
    "unevaluatedItems": SCHEMA,
    "unevaluatedProperties": SCHEMA,
    "type": (str, list),
    "enum": list,
    "const": object,
    "multipleOf": (int, float),
    "maximum": (int, float),
    "exclusiveMaximum": (int, float),
    "minimum": (int, float),
    "exclusiveMinimum": (int, float),
    "maxLength": int,
    "minLength": int,
    "pattern": str,
    "maxItems": int,
    "minItems": int,
    "uniqueItems": bool,
    "maxContains": int,
    "minContains": int,
    "maxProperties": int,
    "minProperties": int,
    "required": list,
    "dependentRequired": dict,
    "title": str,
    "description": str,
    "default": object,
    "deprecated": bool,
    "readOnly": bool,
    "writeOnly": bool,
    "examples": list,
    "format": str,
    "contentEncoding": str,
    "contentMediaType": str,
    "contentSchema": SCHEMA,
}
TYPES = {"null", "boolean", "object", "array", "number", "string", "integer"}


def check_schema(node: object, where: str, root: dict[str, Any]) -> None:
    """Fail unless `node` is a draft 2020-12 schema using only that draft's keywords."""
    if isinstance(node, bool):
        return
    assert isinstance(node, dict), f"{where}: a schema is an object or a boolean"
    for key, value in node.items():
        here = f"{where}/{key}"
        assert key in KEYWORDS, f"{here}: not a draft 2020-12 keyword"
        kind = KEYWORDS[key]
        if kind == SCHEMA:
            check_schema(value, here, root)
        elif kind == SCHEMA_MAP:
            assert isinstance(value, dict), here
            for name, sub in value.items():
                check_schema(sub, f"{here}/{name}", root)
        elif kind == SCHEMA_LIST:
            assert isinstance(value, list), here
            assert value, f"{here}: must not be empty"
            for i, sub in enumerate(value):
                check_schema(sub, f"{here}/{i}", root)
        else:
            assert isinstance(value, kind), f"{here}: {value!r} is not {kind}"
    if "type" in node:
        kinds = node["type"] if isinstance(node["type"], list) else [node["type"]]
        assert set(kinds) <= TYPES, f"{where}/type: {kinds}"
    if "pattern" in node:
        re.compile(node["pattern"])
    for pattern in node.get("patternProperties", {}):
        re.compile(pattern)
    if "required" in node:
        assert all(isinstance(name, str) for name in node["required"])
    if "$ref" in node:
        resolve(node["$ref"], root)


def resolve(ref: str, root: dict[str, Any]) -> object:
    assert ref.startswith("#/"), f"{ref}: only local references are expected"
    target: Any = root
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert part in target, f"{ref} does not resolve"
        target = target[part]
    return target


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return json_schema()


@pytest.fixture(scope="module")
def validate(schema: dict[str, Any]) -> Any:
    return fastjsonschema.compile(schema)


def test_the_schema_declares_draft_2020_12(schema: dict[str, Any]) -> None:
    assert schema["$schema"] == DRAFT_2020_12
    assert "definitions" not in schema, "2020-12 keeps definitions in $defs"


def test_the_schema_uses_only_draft_2020_12_keywords(schema: dict[str, Any]) -> None:
    check_schema(schema, "#", schema)


def test_the_schema_is_valid_against_the_official_meta_schema(schema: dict[str, Any]) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator.check_schema(schema)


def test_the_schema_is_json(schema: dict[str, Any]) -> None:
    assert json.loads(json.dumps(schema)) == schema


def test_the_schema_lists_every_step_field(schema: dict[str, Any]) -> None:
    step = resolve(schema["properties"]["steps"]["items"]["$ref"], schema)
    assert isinstance(step, dict)
    fields = set(step["properties"])
    assert {"id", "tool", "with", "if", "for_each", "needs", "retry", "timeout"} <= fields
    assert {"needs_any", "max_concurrency", "input_schema", "output_schema"} <= fields
    assert "with_" not in fields
    assert "if_" not in fields
    assert set(step["required"]) == {"id", "tool"}
    assert step["additionalProperties"] is False


def test_the_schema_lists_every_top_level_field(schema: dict[str, Any]) -> None:
    assert set(schema["properties"]) == {
        "id",
        "description",
        "inputs",
        "servers",
        "defaults",
        "max_concurrency",
        "steps",
        "outputs",
    }
    assert set(schema["required"]) == {"id", "steps"}


def test_a_valid_workflow_passes_the_schema(validate: Any) -> None:
    data = yaml.safe_load(FULL)
    parse_workflow(FULL)
    validate(data)


def test_the_design_example_passes_the_schema(validate: Any) -> None:
    validate(
        {
            "id": "greet-and-save",
            "inputs": {"name": {"type": "string", "default": "world"}},
            "servers": {"time": {"command": ["mcp-server-time"]}},
            "steps": [
                {
                    "id": "greet",
                    "tool": "sire:local/text.template",
                    "with": {"template": "Hello, {{ inputs.name }}!"},
                },
                {
                    "id": "save",
                    "tool": "sire:local/file.write",
                    "with": {"path": "out/greeting.txt"},
                    "retry": {"max_attempts": 5, "initial_interval": "1s", "max_interval": "1m"},
                    "timeout": "30s",
                },
            ],
            "outputs": {"path": "{{ steps.save.output.path }}"},
        }
    )


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda d: d["steps"][0].update(tol="sire:local/echo"), "must not contain"),
        (lambda d: d["steps"][0].pop("tool"), "must contain"),
        (lambda d: d.update(id="Demo!"), "must match pattern"),
        (lambda d: d["steps"][0].update(id="1abc"), "must match pattern"),
        (lambda d: d["steps"][0].update(timeout="3x"), "cannot be validated by any definition"),
        (lambda d: d["steps"][0].update(needs="a"), "must be array"),
        (lambda d: d.update(max_concurrency=0), "must be bigger than or equal to 1"),
        (lambda d: d.update(steps=[]), "must contain at least 1 items"),
        (lambda d: d.update(extra=1), "must not contain"),
    ],
    ids=[
        "misspelt step field",
        "missing tool",
        "bad workflow id",
        "bad step id",
        "bad duration",
        "needs not a list",
        "zero max_concurrency",
        "no steps",
        "unknown top-level field",
    ],
)
def test_an_invalid_workflow_fails_the_schema(change: Any, why: str, validate: Any) -> None:
    data = {"id": "demo", "steps": [{"id": "a", "tool": "sire:local/echo"}]}
    validate(data)
    change(data)
    with pytest.raises(fastjsonschema.JsonSchemaValueException, match=why):
        validate(data)


def loader_accepts(timeout: str) -> bool:
    try:
        parse_workflow(f"id: w\nsteps:\n  - {{id: a, tool: sire:local/echo, timeout: {timeout}}}\n")
    except DefinitionError:
        return False
    return True


def schema_accepts(timeout: str, validate: Any) -> bool:
    data = yaml.safe_load(
        f"id: w\nsteps:\n  - {{id: a, tool: sire:local/echo, timeout: {timeout}}}\n"
    )
    try:
        validate(data)
    except fastjsonschema.JsonSchemaValueException:
        return False
    return True


@pytest.mark.parametrize(
    "timeout",
    [
        "250ms",
        "1m30s",
        "2",
        "2.5",
        "0",
        "-1",
        "3x",
        "1 m",
        "nan",
        "inf",
        "1e3",
        "'2'",
    ],
)
def test_the_loader_and_the_schema_agree_on_durations(timeout: str, validate: Any) -> None:
    assert loader_accepts(timeout) == schema_accepts(timeout, validate)


def test_the_schema_matches_its_snapshot(schema: dict[str, Any]) -> None:
    text = json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    if os.environ.get("SIRE_UPDATE_SNAPSHOTS") == "1" or not SNAPSHOT.exists():
        SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
        SNAPSHOT.write_text(text, encoding="utf-8")
    assert text == SNAPSHOT.read_text(encoding="utf-8"), (
        "the workflow JSON Schema changed; if that is intended, rerun with "
        "SIRE_UPDATE_SNAPSHOTS=1 and review the snapshot diff"
    )
