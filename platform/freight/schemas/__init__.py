"""Freight's Avro schemas, the event model, and (see `serde`) Confluent-wire-format serialization."""

from typing import Any

from freight.schemas.events import (
    ArrayDescriptor,
    EventKind,
    EvictionMode,
    InlinePayload,
    ObjectEvent,
    ObjectRef,
)
from freight.schemas.loader import OBJECT_EVENT, STORE_CONFIG, available, schema_dict, schema_text

__all__ = [
    "OBJECT_EVENT",
    "STORE_CONFIG",
    "ArrayDescriptor",
    "EventKind",
    "EventSerde",
    "EvictionMode",
    "InlinePayload",
    "ObjectEvent",
    "ObjectRef",
    "available",
    "schema_dict",
    "schema_text",
]


def __getattr__(name: str) -> Any:
    """`EventSerde` loads on first use (it brings fastavro and the registry client)."""
    if name == "EventSerde":
        from freight.schemas.serde import EventSerde

        return EventSerde
    raise AttributeError(f"module 'freight.schemas' has no attribute {name!r}")
