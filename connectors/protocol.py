"""The `Connector` protocol: byte-level object storage behind a `Store`.

A connector stores opaque bytes under validated string keys. `put` accepts one buffer or a sequence of
buffers written back to back (a header and a large payload without concatenating them), `get` returns a
buffer (bytes, or a memoryview over a memory map where the connector can). Connectors know nothing of
serialization, checksums or Kafka: `freight.stores.Store` adds those.

Configuration (`config()` / `from_config`) carries only non-secret options, because it is published to a
Kafka topic so that consumers can rebuild the store; credentials come from each process's environment.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, Self, runtime_checkable

Buffer = bytes | bytearray | memoryview


@dataclass(frozen=True, slots=True)
class DeferredBuffer:
    """A part of a blob whose size is known now but whose bytes are produced later.

    A store's header holds the checksum of the payload that follows it; with a deferred header, a connector
    that can seek (the file connector) writes the payload first and the header last, while the checksum is
    computed on another core. Connectors that write in order call `resolve()` first (it waits).
    """

    size: int
    produce: Callable[[], Buffer]

    def resolve(self) -> memoryview:
        """The bytes, checked to be exactly `size` long."""
        view = flat_view(self.produce())
        if view.nbytes != self.size:
            raise ValueError(f"a deferred buffer produced {view.nbytes} bytes, {self.size} were announced")
        return view


#: One buffer, or several written back to back as one object (parts may be deferred).
Blob = Buffer | Sequence[Buffer | DeferredBuffer]

#: Called by `ObservableConnector.get_observed` with (offset, chunk, total size) for each chunk read.
ReadObserver = Callable[[int, memoryview, int], None]


def flat_view(item: Buffer) -> memoryview:
    """`item` as a flat, C-contiguous byte memoryview (no copy); ValueError if it is not contiguous."""
    view = item if isinstance(item, memoryview) else memoryview(item)
    if view.format != "B" or view.ndim != 1:
        if not view.c_contiguous:
            raise ValueError("connector buffers must be C-contiguous; copy the object first")
        view = view.cast("B")
    return view


def blob_items(data: Blob) -> list[Buffer | DeferredBuffer]:
    """The parts of `data`, in order."""
    return [data] if isinstance(data, bytes | bytearray | memoryview) else list(data)


def byte_views(data: Blob) -> list[memoryview]:
    """`data` as a list of flat, C-contiguous byte memoryviews (no copy; `len()` of each is its size).

    A buffer of another item format (a memoryview of an int32 array, say) is cast to bytes; a
    non-contiguous buffer raises ValueError, because writing it would need a copy the caller should see.
    Deferred parts are resolved (waited for) in place.
    """
    return [
        item.resolve() if isinstance(item, DeferredBuffer) else flat_view(item) for item in blob_items(data)
    ]


def blob_size(data: Blob) -> int:
    """Total bytes in `data` (without resolving deferred parts)."""
    return sum(i.size if isinstance(i, DeferredBuffer) else flat_view(i).nbytes for i in blob_items(data))


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


@runtime_checkable
class ObservableConnector(Connector, Protocol):
    """A connector that reads an object in chunks and shows each chunk to an observer as it arrives.

    The store verifies checksums this way while the rest is still being read (on another core).
    """

    def get_observed(self, key: str, observe: ReadObserver) -> Buffer:
        """Like `get`, calling `observe(offset, chunk, total)` for consecutive chunks, in order."""
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
