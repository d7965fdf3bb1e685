"""The `Connector` protocol: byte-level object storage behind a `Store`.

A connector stores opaque bytes under validated string keys. `put` accepts one buffer or a sequence of
buffers written back to back (a header and a large payload without concatenating them), `get` returns a
buffer (bytes, or a memoryview over a memory map where the connector can). Connectors know nothing of
serialization, checksums or Kafka: `freight.stores.Store` adds those.

Configuration (`config()` / `from_config`) carries only non-secret options, because it is published to a
Kafka topic so that consumers can rebuild the store; credentials come from each process's environment.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, Self, runtime_checkable

Buffer = bytes | bytearray | memoryview
#: One buffer, or several written back to back as one object.
Blob = Buffer | Sequence[Buffer]


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """A stored object as listed by `Connector.list`: key, size in bytes, last modification (epoch s)."""

    key: str
    size: int
    modified: float


@runtime_checkable
class Connector(Protocol):
    """Byte storage keyed by validated string keys (see `freight.connectors.keys.validate_key`)."""

    #: Connector kind as written in store configs: "file", "s3", "memory", "tensor".
    kind: str

    def put(self, key: str, data: Blob) -> None:
        """Store `data` under `key` atomically (a reader sees the old object, the new one, or none)."""

    def put_batch(self, items: Sequence[tuple[str, Blob]]) -> None:
        """Store several objects; may run concurrently."""

    def get(self, key: str) -> Buffer:
        """The bytes under `key`; raise `ObjectNotFoundError` naming the key if absent."""
        ...

    def get_batch(self, keys: Sequence[str]) -> list[Buffer | None]:
        """Bytes for each key, in order; None where a key is absent."""
        ...

    def exists(self, key: str) -> bool: ...

    def evict(self, key: str) -> bool:
        """Delete `key`; True if it existed. Idempotent."""
        ...

    def evict_batch(self, keys: Sequence[str]) -> int:
        """Delete several keys; return how many existed."""
        ...

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every stored object whose key starts with `prefix` (for orphan cleanup and store metrics)."""
        ...

    def close(self) -> None: ...

    def config(self) -> dict[str, Any]:
        """Non-secret options that `from_config` accepts to rebuild an equivalent connector."""
        ...

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Self: ...


@runtime_checkable
class MappableConnector(Connector, Protocol):
    """A connector that can hand out a read-only memory map of an object (zero-copy numpy)."""

    def get_mapped(self, key: str) -> memoryview:
        """A read-only memoryview over a memory map of the object; raise ObjectNotFoundError if absent."""
        ...
