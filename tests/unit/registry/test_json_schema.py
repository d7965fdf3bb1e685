"""JSON Schema in the registry: parsing, identity, references, and the compatibility rules, pair by pair."""

from __future__ import annotations

import json
from typing import Any

import pytest

from freight.registry.avro_schema import InvalidSchemaError, SchemaReference
from freight.registry.compat import CompatibilityLevel, PreviousSchema, check
from freight.registry.json_compat import incompatibilities
from freight.registry.json_schema import JsonModel, parse_json_schema


def obj(props: dict[str, Any], required: tuple[str, ...] = (), closed: bool | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        doc["required"] = list(required)
    if closed is not None:
        doc["additionalProperties"] = not closed
    return doc


S = {"type": "string"}
I = {"type": "integer"}  # noqa: E741
N = {"type": "number"}

# (case, reader, writer, compatible): can `reader` accept every document `writer` accepts?
CASES: list[tuple[str, Any, Any, bool]] = [
    ("same schema", obj({"a": S}), obj({"a": S}), True),
    ("integer widened to number", obj({"a": N}), obj({"a": I}), True),
    ("number narrowed to integer", obj({"a": I}), obj({"a": N}), False),
    ("type changed", obj({"a": S}), obj({"a": I}), False),
    ("type list widened", {"type": ["string", "null"]}, S, True),
    ("type list narrowed", S, {"type": ["string", "null"]}, False),
    ("enum extended", {"enum": ["a", "b", "c"]}, {"enum": ["a", "b"]}, True),
    ("enum reduced", {"enum": ["a"]}, {"enum": ["a", "b"]}, False),
    ("enum added to a free string", {"type": "string", "enum": ["a"]}, S, False),
    ("required property added", obj({"a": S, "b": S}, ("a", "b"), True), obj({"a": S}, ("a",), True), False),
    (
        "optional property added to a closed model",
        obj({"a": S, "b": S}, closed=True),
        obj({"a": S}, closed=True),
        True,
    ),
    ("optional property added to an open model", obj({"a": S, "b": S}), obj({"a": S}), False),
    ("property removed from an open model", obj({"a": S}), obj({"a": S, "b": S}), True),
    (
        "property removed from a closed model",
        obj({"a": S}, closed=True),
        obj({"a": S, "b": S}, closed=True),
        False,
    ),
    ("reader closes an open model", obj({"a": S}, closed=True), obj({"a": S}), False),
    ("reader opens a closed model", obj({"a": S}), obj({"a": S}, closed=True), True),
    ("required dropped", obj({"a": S}), obj({"a": S}, ("a",)), True),
    ("maxLength narrowed", {"type": "string", "maxLength": 5}, {"type": "string", "maxLength": 10}, False),
    ("maxLength widened", {"type": "string", "maxLength": 10}, {"type": "string", "maxLength": 5}, True),
    ("minimum raised", {"type": "integer", "minimum": 5}, {"type": "integer", "minimum": 0}, False),
    ("minimum added", {"type": "integer", "minimum": 0}, I, False),
    ("minimum dropped", I, {"type": "integer", "minimum": 0}, True),
    ("pattern added", {"type": "string", "pattern": "^a"}, S, False),
    ("multipleOf divides", {"type": "integer", "multipleOf": 2}, {"type": "integer", "multipleOf": 4}, True),
    (
        "multipleOf does not divide",
        {"type": "integer", "multipleOf": 4},
        {"type": "integer", "multipleOf": 2},
        False,
    ),
    ("array items widened", {"type": "array", "items": N}, {"type": "array", "items": I}, True),
    ("array items changed", {"type": "array", "items": S}, {"type": "array", "items": I}, False),
    ("maxItems added", {"type": "array", "items": S, "maxItems": 3}, {"type": "array", "items": S}, False),
    ("oneOf branch added", {"oneOf": [S, I]}, S, True),
    ("oneOf branch removed", S, {"oneOf": [S, I]}, False),
    ("anyOf to anyOf with more", {"anyOf": [S, I, {"type": "null"}]}, {"anyOf": [S, I]}, True),
    ("true reads anything", True, obj({"a": S}), True),
    ("restricting true", obj({"a": S}), True, False),
    (
        "local refs followed",
        {"$ref": "#/definitions/x", "definitions": {"x": obj({"a": N})}},
        {"$ref": "#/definitions/x", "definitions": {"x": obj({"a": I})}},
        True,
    ),
    (
        "local refs followed, narrowed",
        {"$ref": "#/definitions/x", "definitions": {"x": obj({"a": I})}},
        {"$ref": "#/definitions/x", "definitions": {"x": obj({"a": N})}},
        False,
    ),
]


@pytest.mark.parametrize(("case", "reader", "writer", "compatible"), CASES, ids=[c[0] for c in CASES])
def test_rules(case: str, reader: Any, writer: Any, compatible: bool) -> None:
    found = incompatibilities(JsonModel(reader), JsonModel(writer))
    assert (not found) is compatible, found


def test_recursive_schemas_terminate() -> None:
    tree = {"type": "object", "properties": {"child": {"$ref": "#"}, "v": I}}
    wider = {"type": "object", "properties": {"child": {"$ref": "#"}, "v": N}}
    assert incompatibilities(JsonModel(wider), JsonModel(tree)) == []
    assert incompatibilities(JsonModel(tree), JsonModel(wider))


def test_levels_pick_the_direction() -> None:
    v1 = parse_json_schema(json.dumps(obj({"a": S}, closed=True)))
    v2 = parse_json_schema(json.dumps(obj({"a": S, "b": S}, closed=True)))  # optional b: BACKWARD only
    prev = [PreviousSchema(1, v1.model, "JSON")]
    assert check(CompatibilityLevel.BACKWARD, v2.model, prev, "JSON") == []
    assert check(CompatibilityLevel.FORWARD, v2.model, prev, "JSON")
    assert check(CompatibilityLevel.FULL, v2.model, prev, "JSON")
    avro_prev = [PreviousSchema(1, object(), "AVRO")]
    assert "schema type cannot change" in check(CompatibilityLevel.BACKWARD, v2.model, avro_prev, "JSON")[0]


def test_identity_ignores_whitespace_and_key_order() -> None:
    a = parse_json_schema('{"type": "object", "properties": {"a": {"type": "string"}}}')
    b = parse_json_schema('{"properties":{"a":{"type":"string"}},"type":"object"}')
    assert a.fingerprint == b.fingerprint and a.schema_type == "JSON"
    assert a.fingerprint != parse_json_schema('{"type": "object"}').fingerprint


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"type": "strin"}', "not a valid JSON Schema"),
        ('{"type": "object", "minProperties": -1}', "not a valid JSON Schema"),
    ],
)
def test_invalid_schemas_say_why(text: str, says: str) -> None:
    with pytest.raises(InvalidSchemaError, match=says):
        parse_json_schema(text)


def test_references_resolve_by_name() -> None:
    address = obj({"street": S}, ("street",))
    stored = {("address-value", 1): (json.dumps(address), ())}
    refs = [SchemaReference("address.json", "address-value", 1)]
    main = json.dumps(obj({"home": {"$ref": "address.json"}}))
    parsed = parse_json_schema(main, refs, lambda subject, version: stored.get((subject, version)))
    assert parsed.model.referenced == {"address.json": address}
    with pytest.raises(InvalidSchemaError, match="does not exist"):
        parse_json_schema(main, refs, lambda subject, version: None)
    narrower = obj({"home": obj({"street": {"type": "string", "maxLength": 3}})})
    assert incompatibilities(JsonModel(narrower), parsed.model)  # the referenced street had no maxLength
