"""Avro schema evolution cases and the verdicts Confluent's registry gives them (Avro's resolution rules).

Each case: a previous schema, a new one, whether the new one can read data written with the previous one
(BACKWARD) and whether the previous one can read data written with the new one (FORWARD). FULL is both.
The cases follow the kinds of change Confluent's own Avro compatibility tests cover: fields added and
removed with and without defaults, aliases, numeric and string/bytes promotions, enums, unions, arrays,
maps, fixed sizes and record names.
"""

# ruff: noqa: E501 (a table: one case per line reads better than wrapped rows)
from __future__ import annotations

import json
from typing import Any

CaseRow = tuple[str, str, str, bool, bool]


def _rec(fields: list[dict[str, Any]], name: str = "R") -> str:
    return json.dumps({"type": "record", "name": name, "namespace": "cases", "fields": fields})


def _f(name: str, kind: Any, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": kind, **extra}


COLOR = {"type": "enum", "name": "Color", "symbols": ["RED", "GREEN"]}
COLOR_MORE = {"type": "enum", "name": "Color", "symbols": ["RED", "GREEN", "BLUE"]}

# (case, previous, new, backward ok, forward ok)
AVRO_CASES: list[CaseRow] = [
    ("field added with a default", _rec([_f("a", "int")]), _rec([_f("a", "int"), _f("b", "string", default="x")]), True, True),
    ("field added without a default", _rec([_f("a", "int")]), _rec([_f("a", "int"), _f("b", "string")]), False, True),
    ("field with a default removed", _rec([_f("a", "int"), _f("b", "string", default="x")]), _rec([_f("a", "int")]), True, True),
    ("field without a default removed", _rec([_f("a", "int"), _f("b", "string")]), _rec([_f("a", "int")]), True, False),
    ("int widened to long", _rec([_f("a", "int")]), _rec([_f("a", "long")]), True, False),
    ("long narrowed to int", _rec([_f("a", "long")]), _rec([_f("a", "int")]), False, True),
    ("float widened to double", _rec([_f("a", "float")]), _rec([_f("a", "double")]), True, False),
    ("int widened to float", _rec([_f("a", "int")]), _rec([_f("a", "float")]), True, False),
    ("string to bytes", _rec([_f("a", "string")]), _rec([_f("a", "bytes")]), True, True),
    ("string to int", _rec([_f("a", "string")]), _rec([_f("a", "int")]), False, False),
    ("enum symbol added", _rec([_f("c", COLOR)]), _rec([_f("c", COLOR_MORE)]), True, False),
    ("enum symbol removed", _rec([_f("c", COLOR_MORE)]), _rec([_f("c", COLOR)]), False, True),
    ("type made nullable", _rec([_f("a", "string")]), _rec([_f("a", ["null", "string"], default=None)]), True, False),
    ("nullable made required", _rec([_f("a", ["null", "string"], default=None)]), _rec([_f("a", "string")]), False, True),
    ("union widened", _rec([_f("a", ["int", "string"])]), _rec([_f("a", ["int", "string", "boolean"])]), True, False),
    ("array items widened", _rec([_f("a", {"type": "array", "items": "int"})]), _rec([_f("a", {"type": "array", "items": "long"})]), True, False),
    ("map values changed", _rec([_f("a", {"type": "map", "values": "string"})]), _rec([_f("a", {"type": "map", "values": "int"})]), False, False),
    ("fixed size changed", _rec([_f("a", {"type": "fixed", "name": "F", "size": 4})]), _rec([_f("a", {"type": "fixed", "name": "F", "size": 8})]), False, False),
    ("record renamed", _rec([_f("a", "int")], "R"), _rec([_f("a", "int")], "S"), False, False),
    ("nested field added with a default", _rec([_f("n", {"type": "record", "name": "N", "fields": [_f("x", "int")]})]),
     _rec([_f("n", {"type": "record", "name": "N", "fields": [_f("x", "int"), _f("y", "int", default=0)]})]), True, True),
    ("nested field added without a default", _rec([_f("n", {"type": "record", "name": "N", "fields": [_f("x", "int")]})]),
     _rec([_f("n", {"type": "record", "name": "N", "fields": [_f("x", "int"), _f("y", "int")]})]), False, True),
    ("unchanged", _rec([_f("a", "int")]), _rec([_f("a", "int")]), True, True),
]  # fmt: skip
