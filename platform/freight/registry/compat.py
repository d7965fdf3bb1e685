"""Compatibility levels and checks, decided by the Apache `avro` package's reader/writer checker.

No compatibility rule is written here: a level only says which pairs to check. BACKWARD means the new schema
(as reader) can read data written with the previous one; FORWARD means the previous schema can read data
written with the new one; FULL is both. The `_TRANSITIVE` variants check against every live version instead
of the latest only. The checker's findings become readable messages (`verbose=true` returns them).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

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
    """A live version of the subject the new schema is checked against."""

    version: int
    schema: avro.schema.Schema


def check(
    level: CompatibilityLevel, new: avro.schema.Schema, previous: Sequence[PreviousSchema]
) -> list[str]:
    """Reasons why `new` violates `level` against `previous` (oldest first); empty means compatible."""
    if level is CompatibilityLevel.NONE or not previous:
        return []
    targets = previous if level.transitive else previous[-1:]
    messages: list[str] = []
    for prev in targets:
        if level.backward:
            messages += _pair(
                new, prev.schema, f"the new schema cannot read data written by version {prev.version}"
            )
        if level.forward:
            messages += _pair(
                prev.schema, new, f"version {prev.version} cannot read data written by the new schema"
            )
    if messages:
        messages.append(f"compatibility level: {level.value}")
    return messages


def _pair(reader: avro.schema.Schema, writer: avro.schema.Schema, what: str) -> list[str]:
    result = ReaderWriterCompatibilityChecker().get_compatibility(reader, writer)  # type: ignore[no-untyped-call]
    if result.compatibility is SchemaCompatibilityType.compatible:
        return []
    kinds = ", ".join(sorted({i.value.upper() for i in result.incompatibilities})) or "INCOMPATIBLE"
    where = ", ".join(sorted(result.locations))
    detail = "; ".join(sorted(result.messages))
    return [f"{what}: {kinds} at {where}: {detail}"]
