"""Stores: a named connector plus serializers, checksums and metrics; store configs in a compacted topic.

`Store(name, connector)` puts objects and gets them back by key; `StoreConfig` is what another process needs
to rebuild the store (`Store.from_config`), and `build_connector` makes a connector from a config's kind and
options. Torch stays optional: nothing here imports it until a tensor is met.
"""

from freight.stores.checksums import ALGORITHMS as CHECKSUM_ALGORITHMS
from freight.stores.checksums import DEFAULT_ALGORITHM
from freight.stores.config import StoreConfig
from freight.stores.factory import CONNECTOR_KINDS, build_connector, register_connector
from freight.stores.framing import Frame, decode_header, encode_header
from freight.stores.serializers import (
    BytesSerializer,
    JsonSerializer,
    NumpySerializer,
    PickleSerializer,
    SerializedObject,
    Serializer,
    SerializerRegistry,
    TorchSerializer,
)
from freight.stores.store import InlineObject, Store, StoredObject, StoreStats

__all__ = [
    "CHECKSUM_ALGORITHMS",
    "CONNECTOR_KINDS",
    "DEFAULT_ALGORITHM",
    "BytesSerializer",
    "Frame",
    "InlineObject",
    "JsonSerializer",
    "NumpySerializer",
    "PickleSerializer",
    "SerializedObject",
    "Serializer",
    "SerializerRegistry",
    "Store",
    "StoreConfig",
    "StoreStats",
    "StoredObject",
    "TorchSerializer",
    "build_connector",
    "decode_header",
    "encode_header",
    "register_connector",
]
