"""mstar's `StreamBuffer` / `StreamChunk` on Freight's stream buffers.

```python
from freight.compat.mstar import Count, SlidingWindow, StreamBuffer, StreamChunk   # was: mstar.streaming...
```

`StreamBuffer(request_id, edge_name, from_partition, policy)`, `put(tensor_id, item)`, `has_chunk_ready()`,
`pop_chunk()`, `signal_done()`, `producer_done`, and `StreamChunk.data` as a dict tensor id -> tensor with
`chunk_index`, `start_offset`, `is_final` work as in mstar. The policy is a Freight chunk policy (`Count`,
`SlidingWindow`, `Bytes`, `Time`, `LeftContext`, `SessionGap`, `Ramp`) in place of mstar's `ChunkPolicy`.

Fed by hand (`put` in arrival order, as mstar's RDMA routing does) or by a Freight consumer:
`buffer.feed(consumer)` puts the proxies of the consumer's records of one stream (tensor id: the event's
`tensor_id` metadata, else `"<stream>/<sequence>"`) and signals done at its END_OF_STREAM.

Differences that remain: items are numbered in arrival order (mstar's buffer has no sequence either), the
final chunk follows Freight's rule (the last real chunk is final when the end is known as it is popped,
otherwise an empty final chunk), and mstar's graph hooks (`pop_waiting_edge`, `store_uningested_edge`) have
no counterpart: edges are not Freight's concept.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from freight.buffer import (
    BufferItem,
    Bytes,
    ChunkPolicy,
    Count,
    LeftContext,
    Ramp,
    SessionGap,
    SlidingWindow,
    Time,
)
from freight.buffer import StreamBuffer as _FreightBuffer
from freight.buffer import StreamChunk as _FreightChunk
from freight.errors import ChunkNotReadyError

__all__ = [
    "Bytes",
    "ChunkPolicy",
    "Count",
    "LeftContext",
    "Ramp",
    "SessionGap",
    "SlidingWindow",
    "StreamBuffer",
    "StreamChunk",
    "Time",
]


@dataclass(frozen=True)
class StreamChunk:
    """A chunk popped from a `StreamBuffer`: tensor id -> tensor, in stream order."""

    data: dict[str, Any]
    chunk_index: int
    start_offset: int = 0
    is_final: bool = False

    @classmethod
    def from_freight(cls, chunk: _FreightChunk) -> StreamChunk:
        """The mstar view of a Freight chunk whose values are (tensor id, tensor) pairs."""
        data: dict[str, Any] = {}
        for value in chunk.data[: len(chunk.items)]:
            tensor_id, tensor = value
            data[tensor_id] = tensor
        for i in range(chunk.padding):  # pad values have no tensor id of their own
            data[f"__pad_{i}"] = chunk.data[len(chunk.items) + i]
        return cls(data, chunk.chunk_index, chunk.start_offset, chunk.is_final)


class StreamBuffer:
    """Per-request, per-edge buffer on the consumer (mstar's, see the module docstring).

    Args:
        request_id: the request this buffer belongs to (also the Freight stream id).
        edge_name: the graph edge it feeds.
        from_partition: where the items come from.
        policy: a Freight chunk policy (`Count(n)`, `SlidingWindow(size, stride)`, ...).
    """

    def __init__(self, request_id: str, edge_name: str, from_partition: str, policy: ChunkPolicy) -> None:
        self.request_id = request_id
        self.edge_name = edge_name
        self.from_partition = from_partition
        self.policy = policy
        self._buffer = _FreightBuffer(request_id, policy)
        self._received = 0
        self._registered: list[str] = []

    @property
    def producer_done(self) -> bool:
        """True once `signal_done()` was called (no more items will arrive)."""
        return self._buffer.end_sequence is not None

    def pre_read_register(self, tensor_id: str) -> None:
        """Note a tensor id expected later (kept for mstar's API; arrival order still decides)."""
        self._registered.append(tensor_id)

    def put(self, tensor_id: str, item: Any) -> None:
        """Called when a tensor arrives; items are numbered in arrival order."""
        if self._buffer.put(BufferItem((tensor_id, item), self._received)):
            self._received += 1

    def signal_done(self) -> None:
        """The producer signals that no more items will arrive."""
        self._buffer.signal_done(self._received)

    def has_chunk_ready(self) -> bool:
        return self._buffer.has_chunk_ready()

    def pop_chunk(self) -> StreamChunk:
        """Pop the next chunk. Only call when `has_chunk_ready()` is True (else ChunkNotReadyError says why).

        For sliding windows: the full window, advancing by the stride; `start_offset` is the position of the
        chunk's first item in the stream.
        """
        return StreamChunk.from_freight(self._buffer.pop_chunk())

    def feed(self, consumer: Any, *, stream: str | None = None) -> Iterator[StreamChunk]:
        """Put the objects of one stream read by a Freight `StreamConsumer` (stream: `request_id` unless
        given) and yield each chunk as soon as it is ready, until the stream's END_OF_STREAM."""
        wanted = self.request_id if stream is None else stream
        for record in consumer.iter_records():
            event = record.event
            if event.stream != wanted:
                continue
            if record.proxy is None:
                self.signal_done()
            else:
                tensor_id = event.metadata.get("tensor_id") or f"{wanted}/{event.sequence}"
                self.put(tensor_id, record.proxy)
            while self.has_chunk_ready():
                yield self.pop_chunk()
            if self._buffer.finished:
                return
        if not self._buffer.finished:
            raise ChunkNotReadyError(
                f"stream {wanted!r}: the consumer stopped before its END_OF_STREAM ({self._received} item(s) "
                "received); give the consumer until_end_of=[stream] or a longer idle_timeout"
            )
