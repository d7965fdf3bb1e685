"""Storage connectors (imported as `freight.connectors`): byte storage under validated keys.

`FileConnector` (a directory), `S3Connector` (s3fs), `MemoryConnector` (this process) and `TensorConnector`
(resident tensors shared zero-copy on a host; needs torch only when tensors are stored). Build one from a
store config with `freight.stores.build_connector(kind, options)`.
"""

from freight.connectors.file import FileConnector
from freight.connectors.keys import MAX_KEY_LENGTH, MAX_SEGMENT_LENGTH, safe_key_part, validate_key
from freight.connectors.memory import MemoryConnector
from freight.connectors.protocol import (
    Blob,
    Buffer,
    Connector,
    MappableConnector,
    ObjectConnector,
    ObjectInfo,
    ResidentObject,
    blob_size,
    byte_views,
)
from freight.connectors.s3 import S3Connector
from freight.connectors.tensor import TensorConnector

__all__ = [
    "MAX_KEY_LENGTH",
    "MAX_SEGMENT_LENGTH",
    "Blob",
    "Buffer",
    "Connector",
    "FileConnector",
    "MappableConnector",
    "MemoryConnector",
    "ObjectConnector",
    "ObjectInfo",
    "ResidentObject",
    "S3Connector",
    "TensorConnector",
    "blob_size",
    "byte_views",
    "safe_key_part",
    "validate_key",
]
