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


def byte_views(data: Blob) -> list[memoryview]:
    """`data` as a list of flat, C-contiguous byte memoryviews (no copy; `len()` of each is its size).

    A buffer of another item format (a memoryview of an int32 array, say) is cast to bytes; a
    non-contiguous buffer raises ValueError, because writing it would need a copy the caller should see.
    """
    items: Sequence[Buffer] = [data] if isinstance(data, bytes | bytearray | memoryview) else data
    views: list[memoryview] = []
    for item in items:
        view = item if isinstance(item, memoryview) else memoryview(item)
        if view.format != "B" or view.ndim != 1:
            if not view.c_contiguous:
                raise ValueError("connector buffers must be C-contiguous; copy the object first")
            view = view.cast("B")
        views.append(view)
    return views


def blob_size(data: Blob) -> int:
    """Total bytes in `data`."""
    return sum(v.nbytes for v in byte_views(data))


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


@dataclass(frozen=True, slots=True)
class ResidentObject:
    """A live object (a tensor) that an `ObjectConnector` keeps resident, with the header stored beside it.

    `header` is the opaque framing the store wrote with `put_object`; `nbytes` the payload size.
    """

    header: bytes
    obj: Any
    nbytes: int


@runtime_checkable
class ObjectConnector(Connector, Protocol):
    """A connector that keeps live objects (tensors) resident instead of bytes, to hand them out zero-copy.

    The store asks `accepts(obj)`; if so it calls `put_object(key, header, obj)` with its framing header,
    and `get_entry` returns either plain bytes (an object put with `put`) or a `ResidentObject`.
    `get` of a resident object returns header + payload bytes (a copy), so byte-level readers still work.
    """

    def accepts(self, obj: object) -> bool:
        """True if this connector can keep `obj` resident (and this process may write)."""
        ...

    def put_object(self, key: str, header: Buffer, obj: Any) -> int:
        """Keep `obj` resident under `key` with `header`; return the payload size in bytes."""
        ...

    def get_entry(self, key: str) -> Buffer | ResidentObject:
        """Bytes or the resident object under `key`; ObjectNotFoundError if absent."""
        ...

    def get_entries(self, keys: Sequence[str]) -> list[Buffer | ResidentObject | None]:
        """`get_entry` for several keys; None where absent."""
        ...
