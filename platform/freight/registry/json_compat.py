"""JSON Schema compatibility: can a reader schema accept every document a writer schema accepts?

BACKWARD checks the new schema as reader against the old one as writer, FORWARD the other way round
(`freight.registry.compat` decides the pairs). Each rule below names the change it refuses, in the spirit of
Confluent's JSON Schema rules (open and closed content models):

- types: the reader accepts every type the writer allows (`number` covers `integer`);
- enum/const: the reader's values include the writer's; `not`: must not change;
- bounds: the reader's minimum/maximum, lengths, item and property counts are not narrower; a pattern or a
  `multipleOf` must not appear or change;
- objects: a property the reader requires must be required by the writer; a property the writer knows and
  the reader dropped must still be allowed by the reader's `additionalProperties`; a property the reader
  adds must accept what the writer's open content model lets through; a reader that closes an open content
  model is refused;
- arrays: items are checked recursively (an items list position by position);
- combinators: every `anyOf`/`oneOf` branch of the writer must fit the reader (or one of its branches);
  every `allOf` part of the reader must accept the writer;
- `$ref`: local pointers (`#/definitions/x`) and references to other registered schemas (`name#/...`) are
  followed; a cycle is taken as compatible where it closes.

Anything not covered (e.g. `if`/`then`, `dependentSchemas`) must be unchanged between the two schemas.
"""

from __future__ import annotations

from typing import Any

from freight.registry.json_schema import JsonModel

_TYPES = ("null", "boolean", "object", "array", "number", "integer", "string")
_SAME_ONLY = ("if", "then", "else", "dependentSchemas", "dependentRequired", "dependencies", "contains")
_MAX_DEPTH = 64
#: Keywords that constrain nothing: a schema made of these alone accepts every document.
_ANNOTATIONS = frozenset(
    {
        "$schema",
        "$id",
        "id",
        "title",
        "description",
        "default",
        "examples",
        "$comment",
        "definitions",
        "$defs",
    }
)


def incompatibilities(reader: JsonModel, writer: JsonModel) -> list[str]:
    """Why documents valid under `writer` may be invalid under `reader` (empty: compatible).

    Args:
        reader: the schema that must accept the data.
        writer: the schema the data was written with.

    Returns:
        One message per problem, each naming where (a JSON pointer) and what changed.
    """
    checker = _Checker(reader, writer)
    checker.compare(reader.document, writer.document, "#", 0)
    return checker.problems


class _Checker:
    def __init__(self, reader: JsonModel, writer: JsonModel) -> None:
        self.models = (reader, writer)
        self.problems: list[str] = []
        self._active: set[tuple[int, int]] = set()

    def _fail(self, where: str, what: str) -> None:
        self.problems.append(f"{what} at {where}")

    def _resolve(self, node: Any, side: int) -> Any:
        """Follow `$ref`s of one side (reader 0, writer 1) to the schema they name."""
        model = self.models[side]
        seen = 0
        while isinstance(node, dict) and isinstance(node.get("$ref"), str) and seen < _MAX_DEPTH:
            ref: str = node["$ref"]
            target = _lookup(model, ref)
            if target is _MISSING:
                return node
            extra = {k: v for k, v in node.items() if k != "$ref"}
            node = {**target, **extra} if extra and isinstance(target, dict) else target
            seen += 1
        return node

    def compare(self, reader: Any, writer: Any, where: str, depth: int) -> None:
        if depth > _MAX_DEPTH:
            self._fail(where, "schemas nested too deeply to compare")
            return
        reader, writer = self._resolve(reader, 0), self._resolve(writer, 1)
        key = (id(reader), id(writer))
        if key in self._active:
            return  # a recursive schema: this pair is being compared further up
        self._active.add(key)
        try:
            self._compare(reader, writer, where, depth)
        finally:
            self._active.discard(key)

    def _compare(self, reader: Any, writer: Any, where: str, depth: int) -> None:
        if _accepts_all(reader) or writer is False:
            return
        if reader is False:
            self._fail(where, "the reader accepts nothing here")
            return
        if _accepts_all(writer):
            self._fail(where, "the writer allowed any value here and the reader restricts it")
            return
        if isinstance(reader.get("$ref"), str) or isinstance(writer.get("$ref"), str):
            if reader.get("$ref") != writer.get("$ref"):
                self._fail(where, f"a reference that cannot be followed changed ({writer.get('$ref')!r})")
            return
        for branch_key in ("anyOf", "oneOf"):
            branches = writer.get(branch_key)
            if isinstance(branches, list) and branches:
                rest = {k: v for k, v in writer.items() if k != branch_key}
                for i, branch in enumerate(branches):
                    merged = {**rest, **branch} if isinstance(branch, dict) else branch
                    self.compare(reader, merged, f"{where}/{branch_key}/{i}", depth + 1)
                return
        for part_index, part in enumerate(_list(reader.get("allOf"))):
            self.compare(part, writer, f"{where}/allOf/{part_index}", depth + 1)
        for branch_key in ("anyOf", "oneOf"):
            branches = reader.get(branch_key)
            if isinstance(branches, list) and branches:
                if not any(self._fits(b, writer, where, depth) for b in branches):
                    self._fail(where, f"no {branch_key} branch of the reader accepts the writer's values")
                return
        if "not" in reader or "not" in writer:
            if reader.get("not") != writer.get("not"):
                self._fail(where, "a 'not' condition changed")
        for name in _SAME_ONLY:
            if reader.get(name) != writer.get(name):
                self._fail(where, f"'{name}' changed (only unchanged is known to be compatible)")
        self._types(reader, writer, where)
        self._values(reader, writer, where)
        self._bounds(reader, writer, where)
        self._objects(reader, writer, where, depth)
        self._arrays(reader, writer, where, depth)

    def _fits(self, reader: Any, writer: Any, where: str, depth: int) -> bool:
        """Whether `reader` accepts `writer`'s values, without recording problems."""
        probe = _Checker(*self.models)
        probe._active = set(self._active)
        probe.compare(reader, writer, where, depth + 1)
        return not probe.problems

    def _types(self, reader: dict[str, Any], writer: dict[str, Any], where: str) -> None:
        readable = _types_of(reader)
        written = _types_of(writer)
        missing = [t for t in written if t not in readable and not (t == "integer" and "number" in readable)]
        if missing:
            self._fail(
                where, f"type {', '.join(missing)} is no longer accepted (reader: {', '.join(readable)})"
            )

    def _values(self, reader: dict[str, Any], writer: dict[str, Any], where: str) -> None:
        allowed = _value_set(reader)
        if allowed is None:
            return
        written = _value_set(writer)
        if written is None:
            self._fail(where, "the reader restricts the values (enum/const) and the writer did not")
            return
        dropped = [v for v in written if v not in allowed]
        if dropped:
            self._fail(where, f"value(s) {', '.join(map(repr, dropped))} are no longer accepted")

    def _bounds(self, reader: dict[str, Any], writer: dict[str, Any], where: str) -> None:
        for low in ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties"):
            r, w = _num(reader.get(low)), _num(writer.get(low))
            if r is not None and (w is None or r > w):
                self._fail(where, f"'{low}' narrowed from {w} to {r}")
        for high in ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties"):
            r, w = _num(reader.get(high)), _num(writer.get(high))
            if r is not None and (w is None or r < w):
                self._fail(where, f"'{high}' narrowed from {w} to {r}")
        for exact in ("pattern", "format"):
            if exact in reader and reader.get(exact) != writer.get(exact):
                self._fail(where, f"'{exact}' added or changed ({writer.get(exact)!r} -> {reader[exact]!r})")
        r_multiple, w_multiple = _num(reader.get("multipleOf")), _num(writer.get("multipleOf"))
        if r_multiple is not None and not (w_multiple is not None and _divides(r_multiple, w_multiple)):
            self._fail(where, f"'multipleOf' {r_multiple} does not divide the writer's ({w_multiple})")
        if reader.get("uniqueItems") is True and writer.get("uniqueItems") is not True:
            self._fail(where, "'uniqueItems' added")

    def _objects(self, reader: dict[str, Any], writer: dict[str, Any], where: str, depth: int) -> None:
        if "object" not in _types_of(writer) or not (
            {"properties", "required", "additionalProperties"}
            & {
                *reader,
                *writer,
            }
        ):
            return
        r_props: dict[str, Any] = _dict(reader.get("properties"))
        w_props: dict[str, Any] = _dict(writer.get("properties"))
        r_extra = reader.get("additionalProperties", True)
        w_extra = writer.get("additionalProperties", True)
        w_required = set(_list(writer.get("required")))
        for name in _list(reader.get("required")):
            if name not in w_required:
                self._fail(
                    f"{where}/required", f"property {name!r} is required by the reader, not the writer"
                )
        for name, w_schema in w_props.items():
            path = f"{where}/properties/{name}"
            if name in r_props:
                self.compare(r_props[name], w_schema, path, depth + 1)
            elif r_extra is False:
                self._fail(path, f"property {name!r} was removed from a closed content model")
            elif isinstance(r_extra, dict):
                self.compare(r_extra, w_schema, path, depth + 1)
        for name, r_schema in r_props.items():
            if name in w_props:
                continue
            path = f"{where}/properties/{name}"
            if w_extra is False:
                continue  # the writer never wrote it
            if isinstance(w_extra, dict):
                self.compare(r_schema, w_extra, path, depth + 1)
            elif not _accepts_all(self._resolve(r_schema, 0)):
                self._fail(path, f"property {name!r} was added to an open content model")
        if r_extra is False and w_extra is not False:
            self._fail(f"{where}/additionalProperties", "the reader closed an open content model")
        elif isinstance(r_extra, dict) and w_extra is not False:
            self.compare(
                r_extra, True if w_extra is True else w_extra, f"{where}/additionalProperties", depth + 1
            )

    def _arrays(self, reader: dict[str, Any], writer: dict[str, Any], where: str, depth: int) -> None:
        if "array" not in _types_of(writer):
            return
        r_items, w_items = reader.get("items", True), writer.get("items", True)
        if isinstance(r_items, list) or isinstance(w_items, list):
            r_list = r_items if isinstance(r_items, list) else []
            w_list = w_items if isinstance(w_items, list) else []
            for i in range(max(len(r_list), len(w_list))):
                r_item = r_list[i] if i < len(r_list) else reader.get("additionalItems", True)
                w_item = w_list[i] if i < len(w_list) else writer.get("additionalItems", True)
                self.compare(r_item, w_item, f"{where}/items/{i}", depth + 1)
            return
        r_prefix, w_prefix = _list(reader.get("prefixItems")), _list(writer.get("prefixItems"))
        for i in range(max(len(r_prefix), len(w_prefix))):
            r_item = r_prefix[i] if i < len(r_prefix) else r_items
            w_item = w_prefix[i] if i < len(w_prefix) else w_items
            self.compare(r_item, w_item, f"{where}/prefixItems/{i}", depth + 1)
        self.compare(r_items, w_items, f"{where}/items", depth + 1)


class _Missing:
    pass


_MISSING: Any = _Missing()


def _lookup(model: JsonModel, ref: str) -> Any:
    """The schema `ref` names: a local pointer, or (name#pointer) a referenced schema; else _MISSING."""
    name, _, pointer = ref.partition("#")
    if name:
        if name not in model.referenced:
            return _MISSING
        root = model.referenced[name]
    else:
        root = model.document
    node = root
    for raw in [p for p in pointer.split("/") if p]:
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return node


def _accepts_all(schema: Any) -> bool:
    if schema is True:
        return True
    if not isinstance(schema, dict):
        return False
    return not {k for k in schema if k not in _ANNOTATIONS}


def _types_of(schema: dict[str, Any]) -> list[str]:
    declared = schema.get("type")
    if isinstance(declared, str):
        return [declared]
    if isinstance(declared, list):
        return [t for t in declared if isinstance(t, str)]
    values = _value_set(schema)
    if values is not None:
        return sorted({_json_type(v) for v in values})
    return list(_TYPES)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _value_set(schema: dict[str, Any]) -> list[Any] | None:
    if "const" in schema:
        return [schema["const"]]
    enum = schema.get("enum")
    return list(enum) if isinstance(enum, list) else None


def _num(value: Any) -> float | None:
    """A JSON number as float; None for anything else (booleans included)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _divides(divisor: float, value: float) -> bool:
    ratio = value / divisor
    return abs(ratio - round(ratio)) < 1e-9


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
