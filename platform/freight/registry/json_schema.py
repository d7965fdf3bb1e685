"""Parse, validate and normalize JSON Schemas (`schemaType: "JSON"`), with Confluent-style references.

A schema is accepted only if the `jsonschema` package (the reference Python implementation, which
confluent-kafka's `JSONSerializer` validates with too) accepts it as a schema of its declared draft (Draft 7
when it declares none). References work as Confluent's: each `{"name", "subject", "version"}` entry makes
the registered JSON schema of that version available under `name`, so `"$ref": "<name>#/definitions/x"`
resolves to it. Two texts that differ only in whitespace or key order get the same id.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import jsonschema
import jsonschema.exceptions
import jsonschema.validators

from freight.registry.avro_schema import (
    InvalidSchemaError,
    ParsedSchema,
    ReferenceResolver,
    SchemaReference,
    fingerprint,
    walk_references,
)

SCHEMA_TYPE = "JSON"


@dataclass(frozen=True)
class JsonModel:
    """What the JSON compatibility checker works on: the document and the documents its references name."""

    document: Any
    referenced: dict[str, Any] = field(default_factory=dict)


def parse_json_schema(
    text: str, references: Sequence[SchemaReference] = (), resolve: ReferenceResolver | None = None
) -> ParsedSchema:
    """Validate `text` as a JSON Schema (resolving its references through `resolve`).

    Args:
        text: the schema, as JSON text.
        references: Confluent references (name -> subject/version).
        resolve: finds a referenced version's text and its own references.

    Returns:
        The parsed schema (`model` is a `JsonModel`).

    Raises:
        InvalidSchemaError: not JSON, not a schema, or a reference that does not resolve.
    """
    document = _load(text, "the schema")
    _check_schema(document, "the schema")
    referenced: dict[str, Any] = {}
    refs = tuple(references)
    if refs:
        if resolve is None:
            raise InvalidSchemaError("the schema has references but none can be resolved here")
        for ref, ref_text in walk_references(refs, resolve):
            what = f"referenced schema {ref.subject!r} v{ref.version}"
            referenced[ref.name] = _load(ref_text, what)
            _check_schema(referenced[ref.name], what)
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    compact = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
    model = JsonModel(document, referenced)
    return ParsedSchema(
        compact, canonical, refs, fingerprint(SCHEMA_TYPE, canonical, refs), model, SCHEMA_TYPE
    )


def _load(text: str, what: str) -> Any:
    try:
        document = json.loads(text)
    except RecursionError:
        raise InvalidSchemaError(f"{what} is nested too deeply") from None
    except ValueError as exc:
        raise InvalidSchemaError(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(document, dict | bool):
        raise InvalidSchemaError(
            f"{what} must be a JSON object (or true/false), got {type(document).__name__}"
        )
    return document


def _check_schema(document: Any, what: str) -> None:
    validator = jsonschema.validators.validator_for(document, default=jsonschema.Draft7Validator)
    try:
        validator.check_schema(document)
    except jsonschema.exceptions.SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
        raise InvalidSchemaError(f"{what} is not a valid JSON Schema at {where}: {exc.message}") from None
    except RecursionError:
        raise InvalidSchemaError(f"{what} is nested too deeply") from None
