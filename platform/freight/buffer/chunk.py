"""What goes into a stream buffer (`BufferItem`) and what comes out (`StreamChunk`).

A `BufferItem` is one stream item as the consumer saw it: its value (a lazy proxy, or a resolved object), its
stream sequence (0, 1, 2, ... per stream, assigned by the producer) and the Kafka coordinates of the record
that carried it. Sequences order the items and define the chunks; Kafka offsets only decide what to commit.

A `StreamChunk` is a run of consecutive items of one stream: `context_items` leading items that an earlier
chunk already delivered as new (window overlap, left context), then the new items, then `padding` pad
values (only in a padded final chunk).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(slots=True)
class BufferItem:
    """One stream item fed to a `StreamBuffer` (treat it as a value: it is not frozen only because a frozen
    dataclass costs a slow `object.__setattr__` per field, and one is built per consumed record).

    `sequence` is the item's position in its stream (0-based, no gaps), `offset` and `partition` the Kafka
    coordinates of its record (None when the item did not come from Kafka: such items never hold back a
    commit). `nbytes` is the object's size, used by `Bytes`; `timestamp` is the producer's creation time in
    seconds since the epoch, used by `SessionGap`. `store` / `key` name the stored object (None when the item
    travelled inline) so that the evictor can spare objects a window still holds.
    """

    value: Any
    sequence: int
    partition: int | None = None
    offset: int | None = None
    nbytes: int = 0
    timestamp: float = 0.0
    store: str | None = None
    key: str | None = None


@dataclass(frozen=True, slots=True)
class StreamChunk:
    """A chunk popped from a `StreamBuffer`.

    `data` holds the values in stream order: `context_items` items already delivered as new by an earlier
    chunk, then the new items, then `padding` pad values. `start_offset` is the stream *sequence* (not the
    Kafka offset) of the first item, context included; for an empty chunk it is the sequence where the chunk
    would have started (the stream length for an empty final chunk). `items` are the real items (no padding)
    with their Kafka offsets. Exactly one chunk per finished stream has `is_final=True`, and it is the last;
    `dropped_items` counts trailing items discarded by `partial="drop"` (only ever non-zero on it). `array` is
    `data` stacked into one numpy array or torch tensor when `consumer.chunks(..., stack=True)` asked for it
    (None otherwise, and for an empty chunk).
    """

    data: tuple[Any, ...]
    chunk_index: int
    start_offset: int = 0
    is_final: bool = False
    context_items: int = 0
    stream: str = ""
    items: tuple[BufferItem, ...] = ()
    padding: int = 0
    dropped_items: int = 0
    array: Any = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.data)

    @property
    def num_new(self) -> int:
        """How many items this chunk delivers for the first time."""
        return len(self.items) - self.context_items

    @property
    def new_data(self) -> tuple[Any, ...]:
        """The values delivered for the first time (no context, no padding)."""
        return self.data[self.context_items : len(self.items)]

    @property
    def context_data(self) -> tuple[Any, ...]:
        """The leading values already delivered as new by an earlier chunk."""
        return self.data[: self.context_items]

    @property
    def new_start(self) -> int:
        """Stream sequence of the first new item."""
        return self.start_offset + self.context_items

    @property
    def end_offset(self) -> int:
        """Stream sequence just after the last real item (exclusive end)."""
        return self.start_offset + len(self.items)

    @property
    def sequences(self) -> range:
        """Stream sequences of the real items."""
        return range(self.start_offset, self.end_offset)

    @property
    def offsets(self) -> tuple[int | None, ...]:
        """Kafka offsets of the real items, in stream order."""
        return tuple(item.offset for item in self.items)

    @property
    def partition(self) -> int | None:
        """The Kafka partition of the items (a stream lives in one partition); None for an empty chunk."""
        return self.items[0].partition if self.items else None

    def map_values(self, fn: Callable[[Any], Any]) -> StreamChunk:
        """A copy whose real values are `fn(value)` (e.g. resolve proxies); pad values stay as they are."""
        n = len(self.items)
        return replace(self, data=tuple(fn(v) for v in self.data[:n]) + self.data[n:])

    def stack(self) -> Any:
        """The values stacked along a new first axis (numpy arrays: np.stack, torch tensors: torch.stack)."""
        from freight.buffer.stacking import stack

        return stack(self.data)
