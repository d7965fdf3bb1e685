"""Compatibility levels and checks: which pairs of schemas to check, and who decides each pair.

Avro pairs are decided by the Apache `avro` package's reader/writer checker (no Avro rule is written here);
JSON Schema pairs by `freight.registry.json_compat`, Protobuf pairs by `freight.registry.protobuf_compat`
(Confluent's Protobuf rules). A level only says which pairs to check. BACKWARD
means the new schema (as reader) can read data written with the previous one; FORWARD means the previous
schema can read data written with the new one; FULL is both. The `_TRANSITIVE` variants check against every
live version instead of the latest only. The findings become readable messages (`verbose=true` returns
them). A subject's schema type cannot change.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import avro.schema
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType


class CompatibilityLevel(enum.StrEnum):
    NONE = "NONE"
    BACKWARD = "BACKWARD"
    BACKWARD_TRANSITIVE = "BACKWARD_TRANSITIVE"
    FORWARD = "FORWARD"
    FORWARD_TRANSITIVE = "FORWARD_TRANSITIVE"
    FULL = "FULL"
    FULL_TRANSITIVE = "FULL_TRANSITIVE"

    @classmethod
    def parse(cls, value: object) -> CompatibilityLevel:
        """Accept any case ('full_transitive'); raise ValueError naming the valid levels otherwise."""
        if isinstance(value, str):
            try:
                return cls(value.strip().upper())
            except ValueError:
                pass
        raise ValueError(f"invalid compatibility level {value!r}; valid: {', '.join(cls.names())}")

    @classmethod
    def names(cls) -> list[str]:
        return [m.value for m in cls]

    @property
    def transitive(self) -> bool:
        return self.value.endswith("_TRANSITIVE")

    @property
    def backward(self) -> bool:
        return self.value.startswith(("BACKWARD", "FULL"))

    @property
    def forward(self) -> bool:
        return self.value.startswith(("FORWARD", "FULL"))


DEFAULT_LEVEL = CompatibilityLevel.BACKWARD


@dataclass(frozen=True, slots=True)
class PreviousSchema:
    """A live version of the subject the new schema is checked against (`schema`: the parsed model)."""

    version: int
    schema: Any
    schema_type: str = "AVRO"


def check(
    level: CompatibilityLevel, new: Any, previous: Sequence[PreviousSchema], schema_type: str = "AVRO"
) -> list[str]:
    """Reasons why `new` violates `level` against `previous` (oldest first); empty means compatible.

    Args:
        level: the subject's compatibility level.
        new: the new schema's parsed model (`ParsedSchema.model`).
        previous: the subject's live versions, oldest first.
        schema_type: the new schema's type ("AVRO", "JSON" or "PROTOBUF").

    Returns:
        Readable reasons; empty when compatible.
    """
    if level is CompatibilityLevel.NONE or not previous:
        return []
    targets = previous if level.transitive else previous[-1:]
    messages: list[str] = []
    for prev in targets:
        if prev.schema_type != schema_type:
            messages.append(
                f"version {prev.version} is a {prev.schema_type} schema and the new one a {schema_type} "
                "schema: a subject's schema type cannot change"
            )
            continue
        pair = _PAIRS.get(schema_type, _pair)
        if level.backward:
            messages += pair(
                new, prev.schema, f"the new schema cannot read data written by version {prev.version}"
            )
        if level.forward:
            messages += pair(
                prev.schema, new, f"version {prev.version} cannot read data written by the new schema"
            )
    if messages:
        messages.append(f"compatibility level: {level.value}")
    return messages


def _json_pair(reader: Any, writer: Any, what: str) -> list[str]:
    from freight.registry.json_compat import incompatibilities

    found = incompatibilities(reader, writer)
    return [f"{what}: {'; '.join(found)}"] if found else []


def _protobuf_pair(reader: Any, writer: Any, what: str) -> list[str]:
    from freight.registry.protobuf_compat import incompatibilities

    found = incompatibilities(reader, writer)
    return [f"{what}: {'; '.join(found)}"] if found else []


def _pair(reader: avro.schema.Schema, writer: avro.schema.Schema, what: str) -> list[str]:
    result = ReaderWriterCompatibilityChecker().get_compatibility(reader, writer)  # type: ignore[no-untyped-call]
    if result.compatibility is SchemaCompatibilityType.compatible:
        return []
    kinds = ", ".join(sorted({i.value.upper() for i in result.incompatibilities})) or "INCOMPATIBLE"
    where = ", ".join(sorted(result.locations))
    detail = "; ".join(sorted(result.messages))
    return [f"{what}: {kinds} at {where}: {detail}"]


_PAIRS = {"AVRO": _pair, "JSON": _json_pair, "PROTOBUF": _protobuf_pair}
