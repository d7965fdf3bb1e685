"""The event model: what travels through Kafka for each stream item (schema `freight.v1.ObjectEvent`).

Plain slotted dataclasses, not pydantic: one is built per event on the hot path. They convert to and from
the Avro record dictionaries that fastavro / confluent-kafka's Avro serde read and write, and
`freight.schemas.fastcodec` writes and reads them directly.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from typing import Any


class EventKind(enum.StrEnum):
    OBJECT = "OBJECT"
    END_OF_STREAM = "END_OF_STREAM"


class EvictionMode(enum.StrEnum):
    """When a stored object may be deleted (see DESIGN.md, 'Semantics to keep')."""

    WATERMARK = "WATERMARK"  # once every retaining group has committed past the event (default)
    ON_RESOLVE = "ON_RESOLVE"  # the first resolve deletes it (one consumer)
    RETENTION = "RETENTION"  # once Kafka retention has deleted the event
    NEVER = "NEVER"

    @classmethod
    def parse(cls, value: str | bool | EvictionMode) -> EvictionMode:
        """Accept 'on-resolve', 'on_resolve', 'ON_RESOLVE', ... and name the valid values otherwise.

        ProxyStore's booleans are accepted too: `True` is one-time use (`on-resolve`), `False` keeps the
        object (`never`: nothing deletes it, as with ProxyStore's `evict=False`).
        """
        if isinstance(value, EvictionMode):
            return value
        if value is True:
            return cls.ON_RESOLVE
        if value is False:
            return cls.NEVER
        norm = value.strip().upper().replace("-", "_") if isinstance(value, str) else ""
        try:
            return cls(norm)
        except ValueError:
            valid = ", ".join(m.value.lower().replace("_", "-") for m in cls)
            raise ValueError(
                f"unknown eviction mode {value!r}; use one of: {valid}, or True (one-time use: on-resolve) / "
                "False (kept: never)"
            ) from None


@dataclass(frozen=True, slots=True)
class ArrayDescriptor:
    dtype: str
    shape: tuple[int, ...]
    device: str = "cpu"

    def to_avro(self) -> dict[str, Any]:
        return {"dtype": self.dtype, "shape": list(self.shape), "device": self.device}

    @classmethod
    def from_avro(cls, d: dict[str, Any]) -> ArrayDescriptor:
        return cls(d["dtype"], tuple(d["shape"]), d.get("device", "cpu"))


@dataclass(slots=True)
class ObjectRef:
    store: str
    key: str
    size: int
    serializer: str
    checksum: str | None = None
    eviction: EvictionMode = EvictionMode.WATERMARK

    def to_avro(self) -> dict[str, Any]:
        return {
            "store": self.store,
            "key": self.key,
            "size": self.size,
            "checksum": self.checksum,
            "serializer": self.serializer,
            "eviction": self.eviction.value,
        }

    @classmethod
    def from_avro(cls, d: dict[str, Any]) -> ObjectRef:
        return cls(
            d["store"],
            d["key"],
            d["size"],
            d["serializer"],
            d.get("checksum"),
            EvictionMode(d.get("eviction", "WATERMARK")),
        )


@dataclass(slots=True)
class InlinePayload:
    data: bytes
    serializer: str

    def to_avro(self) -> dict[str, Any]:
        return {"data": self.data, "serializer": self.serializer}


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(slots=True)
class ObjectEvent:
    """One stream item. Exactly one of `object` / `inline` is set for OBJECT; neither for END_OF_STREAM.

    Treat events as values (they are not frozen only because frozen dataclasses cost a slow
    `object.__setattr__` per field, and one event is built per record on the hot path).
    """

    stream: str
    sequence: int
    producer_id: str
    kind: EventKind = EventKind.OBJECT
    object: ObjectRef | None = None
    inline: InlinePayload | None = None
    descriptor: ArrayDescriptor | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    created_at: int = field(default_factory=now_ms)  # epoch milliseconds

    def __post_init__(self) -> None:
        if self.kind is EventKind.OBJECT and (self.object is None) == (self.inline is None):
            raise ValueError("an OBJECT event needs exactly one of `object` (a store reference) or `inline`")
        if self.kind is EventKind.END_OF_STREAM and (self.object is not None or self.inline is not None):
            raise ValueError("an END_OF_STREAM event carries no object")

    @property
    def is_end(self) -> bool:
        return self.kind is EventKind.END_OF_STREAM

    def to_avro(self) -> dict[str, Any]:
        """The record as fastavro writes it (timestamp-millis as an int of epoch milliseconds)."""
        return {
            "stream": self.stream,
            "sequence": self.sequence,
            "kind": self.kind.value,
            "object": None if self.object is None else self.object.to_avro(),
            "inline": None if self.inline is None else self.inline.to_avro(),
            "descriptor": None if self.descriptor is None else self.descriptor.to_avro(),
            "metadata": self.metadata,
            "producer_id": self.producer_id,
            "created_at": self.created_at,
        }

    @classmethod
    def from_avro(cls, d: dict[str, Any]) -> ObjectEvent:
        """Build from a decoded record; `created_at` may be a datetime (fastavro logical type) or an int."""
        obj = d.get("object")
        inline = d.get("inline")
        desc = d.get("descriptor")
        created = d.get("created_at", 0)
        if not isinstance(created, int):
            created = round(created.timestamp() * 1000)  # round: float ms can sit just below the integer
        return cls(
            stream=d["stream"],
            sequence=d["sequence"],
            producer_id=d["producer_id"],
            kind=EventKind(d.get("kind", "OBJECT")),
            object=None if obj is None else ObjectRef.from_avro(obj),
            inline=None if inline is None else InlinePayload(inline["data"], inline["serializer"]),
            descriptor=None if desc is None else ArrayDescriptor.from_avro(desc),
            metadata=dict(d.get("metadata") or {}),
            created_at=created,
        )
