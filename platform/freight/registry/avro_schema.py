"""Parse, validate and normalize Avro schemas (with Confluent-style schema references).

A schema is accepted only if both the Apache `avro` package (which the compatibility checker works on) and
`fastavro` (which confluent-kafka's Avro serializers use) parse it, so every schema the registry hands out
can be used by those clients. Two schema texts that differ only in whitespace, key order, `{"type": "string"}`
versus `"string"`, or short versus namespace-qualified names normalize to the same canonical form and
therefore get the same id.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import avro.name
import avro.schema
import fastavro

from freight.registry.contracts import NO_CONTRACT, Contract

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
NAMED = frozenset({"record", "error", "enum", "fixed"})
MAX_REFERENCE_DEPTH = 32


class InvalidSchemaError(ValueError):
    """The schema text is not a valid Avro schema (the message says why)."""


@dataclass(frozen=True, slots=True)
class SchemaReference:
    """A Confluent schema reference: the named type `name` is defined by `subject` at `version`."""

    name: str
    subject: str
    version: int

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "subject": self.subject, "version": self.version}


# (subject, version) -> (schema text, its own references), or None when that version does not exist.
ReferenceResolver = Callable[[str, int], tuple[str, tuple[SchemaReference, ...]] | None]


@dataclass(frozen=True, slots=True)
class ParsedSchema:
    """A validated schema: the text served to clients, its canonical form and identity, the parsed object.

    `model` is what the type's compatibility checker works on: an `avro.schema.Schema` for AVRO, a
    `freight.registry.json_schema.JsonModel` for JSON.
    """

    text: str
    canonical: str
    references: tuple[SchemaReference, ...]
    fingerprint: str
    model: Any
    schema_type: str = "AVRO"
    contract: Contract = NO_CONTRACT

    @property
    def identity(self) -> str:
        """What decides the id: the fingerprint of the text and references, with the data contract."""
        return self.contract.identity(self.fingerprint)


def fingerprint(schema_type: str, canonical: str, references: Sequence[SchemaReference]) -> str:
    """Identity of a schema: equal fingerprints mean the same id."""
    doc = json.dumps(
        [schema_type, canonical, [[r.name, r.subject, r.version] for r in references]],
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(doc.encode()).hexdigest()


def parse_avro(
    text: str, references: Sequence[SchemaReference] = (), resolve: ReferenceResolver | None = None
) -> ParsedSchema:
    """Validate `text` (resolving its references through `resolve`) or raise InvalidSchemaError."""
    try:
        data = json.loads(text)
    except RecursionError:
        raise InvalidSchemaError("the schema is nested too deeply") from None
    except ValueError as exc:
        raise InvalidSchemaError(f"the schema is not valid JSON: {exc}") from None
    if data is None or data == "" or data == {}:
        raise InvalidSchemaError("the schema is empty")
    names = avro.name.Names(validate_names=True)
    named: dict[str, Any] = {}
    refs = tuple(references)
    if refs:
        if resolve is None:
            raise InvalidSchemaError("the schema has references but none can be resolved here")
        _load_references(refs, resolve, names, named)
    try:
        parsed = avro.schema.make_avsc_object(data, names)
    except RecursionError:
        raise InvalidSchemaError("the schema is nested too deeply") from None
    except Exception as exc:  # the avro package raises several unrelated types for bad input
        raise InvalidSchemaError(f"{exc}") from None
    try:
        fastavro.parse_schema(data, named_schemas=named)
    except RecursionError:
        raise InvalidSchemaError("the schema is nested too deeply") from None
    except Exception as exc:
        raise InvalidSchemaError(f"{exc}") from None
    try:
        canonical = canonical_form(data)
    except (TypeError, KeyError, AttributeError, ValueError, RecursionError) as exc:
        raise InvalidSchemaError(f"cannot normalize the schema: {exc}") from None
    compact = json.dumps(_java_order(data), separators=(",", ":"), ensure_ascii=False)
    return ParsedSchema(compact, canonical, refs, fingerprint("AVRO", canonical, refs), parsed)


# The order in which Java's `Schema.toString()` writes each kind's attributes; Confluent's registry stores and
# serves that form, so a client that registers `{"name": ..., "type": "record"}` reads back the same text as
# from Confluent. Other attributes (custom properties) follow in their original order.
_KEY_ORDER = {
    "record": ("type", "name", "namespace", "doc", "fields"),
    "error": ("type", "name", "namespace", "doc", "fields"),
    "enum": ("type", "name", "namespace", "doc", "symbols", "default"),
    "fixed": ("type", "name", "namespace", "doc", "size"),
    "array": ("type", "items"),
    "map": ("type", "values"),
}
_FIELD_ORDER = ("name", "type", "doc", "default", "order")


def _java_order(node: Any) -> Any:
    """`node` with each object's keys in Java's order and `{"type": "int"}` written as `"int"`."""
    if isinstance(node, list):
        return [_java_order(n) for n in node]
    if not isinstance(node, dict):
        return node
    kind = node.get("type")
    first = _KEY_ORDER.get(kind, ("type",)) if isinstance(kind, str) else ("type",)
    out = _ordered(node, first)
    if "fields" in out and isinstance(out["fields"], list):
        out["fields"] = [
            _ordered(f, _FIELD_ORDER, recurse=("type",)) if isinstance(f, dict) else f for f in out["fields"]
        ]
    for key in ("items", "values"):
        if key in out:
            out[key] = _java_order(out[key])
    if "type" in out and not (isinstance(kind, str) and kind in _KEY_ORDER):
        out["type"] = _java_order(out["type"])
    if list(out) == ["type"] and isinstance(out["type"], str):
        return out["type"]
    return out


def _ordered(node: dict[str, Any], first: Sequence[str], recurse: Sequence[str] = ()) -> dict[str, Any]:
    out = {k: node[k] for k in first if k in node}
    out.update({k: v for k, v in node.items() if k not in out})
    for key in recurse:
        if key in out:
            out[key] = _java_order(out[key])
    return out


def walk_references(
    refs: Sequence[SchemaReference],
    resolve: ReferenceResolver,
    seen: set[tuple[str, int]] | None = None,
    depth: int = 0,
) -> Iterator[tuple[SchemaReference, str]]:
    """Every schema `refs` reach, depth-first (a schema's own references before it), each version once.

    Args:
        refs: the references of the schema being parsed.
        resolve: finds a version's text and its own references.
        seen: versions already visited (shared across the recursion).
        depth: how deep the recursion is.

    Yields:
        (the reference, the referenced schema's text).

    Raises:
        InvalidSchemaError: a reference to a version that does not exist, or nesting deeper than
            MAX_REFERENCE_DEPTH.
    """
    if depth > MAX_REFERENCE_DEPTH:
        raise InvalidSchemaError(f"references nest deeper than {MAX_REFERENCE_DEPTH} levels")
    seen = set() if seen is None else seen
    for ref in refs:
        key = (ref.subject, ref.version)
        if key in seen:
            continue
        seen.add(key)
        found = resolve(ref.subject, ref.version)
        if found is None:
            raise InvalidSchemaError(
                f"reference {ref.name!r} points at subject {ref.subject!r} version {ref.version}, which "
                "does not exist; register the referenced schema first"
            )
        text, sub_refs = found
        yield from walk_references(sub_refs, resolve, seen, depth + 1)
        yield ref, text


def _load_references(
    refs: Sequence[SchemaReference], resolve: ReferenceResolver, names: avro.name.Names, named: dict[str, Any]
) -> None:
    """Parse referenced schemas depth-first into `names` (avro) and `named` (fastavro)."""
    for ref, ref_text in walk_references(refs, resolve):
        ref_data = json.loads(ref_text)
        try:
            avro.schema.make_avsc_object(ref_data, names)
            fastavro.parse_schema(ref_data, named_schemas=named)
        except Exception as exc:
            raise InvalidSchemaError(f"referenced schema {ref.subject!r} v{ref.version}: {exc}") from None


def canonical_form(data: Any) -> str:
    """Normalized JSON: full names, no `namespace`, sorted keys, `{"type": "int"}` written as `"int"`."""
    return json.dumps(_normalize(data, None), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _qualify(name: str, namespace: str | None) -> str:
    if name in PRIMITIVES or "." in name or not namespace:
        return name
    return f"{namespace}.{name}"


def _normalize(node: Any, namespace: str | None) -> Any:
    if isinstance(node, str):
        return _qualify(node, namespace)
    if isinstance(node, list):
        return [_normalize(n, namespace) for n in node]
    if not isinstance(node, dict):
        return node
    kind = node.get("type")
    if isinstance(kind, str) and kind in NAMED and isinstance(node.get("name"), str):
        return _normalize_named(node, kind, namespace)
    out = dict(node)
    if kind == "array" and "items" in node:
        out["items"] = _normalize(node["items"], namespace)
    elif kind == "map" and "values" in node:
        out["values"] = _normalize(node["values"], namespace)
    else:
        out["type"] = _normalize(kind, namespace)
        if set(out) == {"type"}:
            return out["type"]
    return out


def _normalize_named(node: dict[str, Any], kind: str, namespace: str | None) -> dict[str, Any]:
    name: str = node["name"]
    own_ns = node.get("namespace", namespace)
    full = name if "." in name else (f"{own_ns}.{name}" if own_ns else name)
    inner_ns = full.rsplit(".", 1)[0] if "." in full else None
    out = {k: v for k, v in node.items() if k not in ("namespace", "name", "fields", "aliases")}
    out["name"] = full
    if isinstance(node.get("aliases"), list):
        out["aliases"] = sorted(_qualify(str(a), inner_ns) for a in node["aliases"])
    if kind in ("record", "error"):
        out["fields"] = [_normalize_field(f, inner_ns) for f in node.get("fields", [])]
    return out


def _normalize_field(field: Any, namespace: str | None) -> Any:
    if not isinstance(field, dict):
        return field
    out = dict(field)
    if "type" in field:
        out["type"] = _normalize(field["type"], namespace)
    if isinstance(field.get("aliases"), list):
        out["aliases"] = sorted(str(a) for a in field["aliases"])
    return out
