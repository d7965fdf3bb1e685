"""Storage connectors (imported as `freight.connectors`): byte storage under validated keys."""

from freight.connectors.keys import MAX_KEY_LENGTH, safe_key_part, validate_key
from freight.connectors.protocol import Blob, Buffer, Connector, MappableConnector, ObjectInfo

__all__ = [
    "MAX_KEY_LENGTH",
    "Blob",
    "Buffer",
    "Connector",
    "MappableConnector",
    "ObjectInfo",
    "safe_key_part",
    "validate_key",
]
