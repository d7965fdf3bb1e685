"""Freight's Avro schemas, the event model, and (see `serde`) Confluent-wire-format serialization."""

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
    "EvictionMode",
    "InlinePayload",
    "ObjectEvent",
    "ObjectRef",
    "available",
    "schema_dict",
    "schema_text",
]
