"""Chunk policies: when a stream buffer has a chunk ready and which items it holds.

Every policy cuts the stream into chunks of *new* items that follow each other without gaps or overlap
(each item is delivered as new exactly once); some also repeat earlier items at the front of a chunk as
*context* (`SlidingWindow`, `LeftContext`). Chunk `j` starts its new items where chunk `j-1` ended.

Fixed-size policies (`Count`, `SlidingWindow`, `LeftContext`, `Ramp`) know the number of new items of chunk
`j` from `j` alone. Scanning policies (`Bytes`, `SessionGap`, `Time`) look at the items themselves: a chunk
is complete when an item closes it (`Verdict.TAKE_CLOSE`) or when the next item does not fit
(`Verdict.REJECT`). Apart from `Time` (which also closes a chunk after a wall-clock linger), boundaries
depend only on sequences, sizes and producer timestamps, so replaying the same items from the same resume
point rebuilds exactly the same chunks.

The end of a stream. Complete chunks are never final. At END_OF_STREAM the items no rule has closed yet
(fewer than a complete chunk, possibly none) form the one final chunk, handled by `partial`:

- `"emit"` (default): the final chunk holds them (with the usual context in front);
- `"drop"`: they are discarded, counted in `StreamBuffer.dropped_items` and in the final chunk's
  `dropped_items`, and logged; the final chunk is then empty;
- `"pad"` (fixed-size policies only): the final chunk is padded at the end up to the chunk's full number of
  new items with `pad_value`, or with `pad_factory(last_value)` called once per pad slot.

Every finished stream ends with exactly one final chunk. When END_OF_STREAM is already known as the chunk
taking the last items is popped, that chunk is the final one (a stream whose length fits the chunks exactly
ends without an empty chunk). Only when END_OF_STREAM arrives after the last items were popped is the final
chunk empty (no items, no padding): it then only says that the stream ended.
"""

from __future__ import annotations

import enum
import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from fractions import Fraction
from typing import Any, Literal, Protocol, runtime_checkable

from freight.buffer.chunk import BufferItem
from freight.errors import ConfigError

PartialMode = Literal["emit", "drop", "pad"]
PARTIAL_MODES: tuple[PartialMode, ...] = ("emit", "drop", "pad")


class _NoPad:
    """Marker: no pad value was given (None is a valid pad value)."""

    def __repr__(self) -> str:
        return "NO_PAD"


NO_PAD: Any = _NoPad()


class Verdict(enum.IntEnum):
    """A scanner's answer for the next item of the chunk being built."""

    TAKE = 0  # the item joins the chunk; the chunk may take more
    TAKE_CLOSE = 1  # the item joins the chunk, which is now complete
    REJECT = 2  # the item does not fit: the chunk is complete without it, the item starts the next one


_TAKE, _CLOSE, _REJECT = Verdict.TAKE, Verdict.TAKE_CLOSE, Verdict.REJECT


class ChunkScanner(Protocol):
    """Decides, item by item, where one chunk of a scanning policy ends (one scanner per chunk)."""

    def offer(self, item: BufferItem) -> Verdict: ...


@runtime_checkable
class ChunkPolicy(Protocol):
    """What a `StreamBuffer` asks its policy. Policies are immutable and shared by all buffers.

    - `new_items(j)`: the number of new items of complete chunk `j`, or None for a scanning policy;
    - `context(j, new_start)`: how many items before `new_start` chunk `j` repeats as context;
    - `scanner(j)`: a fresh scanner for chunk `j` (used when `new_items(j)` is None);
    - `deadline(ready_since)`: clock time at which a non-empty chunk whose first new item became
      deliverable at `ready_since` is complete anyway (None: never; only `Time` has one), read from `clock`;
    - `pad(last_value, count)`: the pad values of a padded final chunk;
    - `fingerprint()`: a short id of the parameters that decide chunk boundaries, stored with resume state.
    """

    @property
    def partial(self) -> PartialMode: ...

    @property
    def clock(self) -> Callable[[], float] | None: ...

    def new_items(self, chunk_index: int) -> int | None: ...

    def context(self, chunk_index: int, new_start: int) -> int: ...

    def scanner(self, chunk_index: int) -> ChunkScanner: ...

    def deadline(self, ready_since: float) -> float | None: ...

    def pad(self, last_value: Any, count: int) -> tuple[Any, ...]: ...

    def fingerprint(self) -> str: ...


def _int_at_least(policy: str, name: str, value: object, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{policy}: {name} must be an integer >= {low}, got {value!r}")


def _optional_int_at_least(policy: str, name: str, value: object, low: int) -> None:
    if value is not None:
        _int_at_least(policy, name, value, low)


def _number_at_least(policy: str, name: str, value: object, low: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value) or value < low:
        raise ConfigError(f"{policy}: {name} must be a number >= {low}, got {value!r}")


class _CountScanner:
    """Closes the chunk at `limit` items (and never rejects)."""

    __slots__ = ("count", "limit")

    def __init__(self, limit: int | None) -> None:
        self.count = 0
        self.limit = limit

    def offer(self, item: BufferItem) -> Verdict:
        self.count += 1
        return _CLOSE if self.count == self.limit else _TAKE


@dataclass(frozen=True, kw_only=True)
class _Policy:
    """Shared parameters: what happens to the items left at END_OF_STREAM (see the module docstring)."""

    partial: PartialMode = "emit"
    pad_value: Any = field(default=NO_PAD, repr=False)
    pad_factory: Callable[[Any], Any] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        name = type(self).__name__
        if self.partial not in PARTIAL_MODES:
            raise ConfigError(
                f"{name}: partial must be one of {', '.join(PARTIAL_MODES)}, got {self.partial!r}"
            )
        has_value = self.pad_value is not NO_PAD
        has_factory = self.pad_factory is not None
        if self.partial == "pad":
            if not self._fixed_size:
                raise ConfigError(
                    f"{name}: partial='pad' needs a fixed chunk size; {name} chunks have none. Use partial="
                    "'emit' or 'drop', or a fixed-size policy (Count, SlidingWindow, LeftContext, Ramp)"
                )
            if has_value == has_factory:
                raise ConfigError(
                    f"{name}: partial='pad' needs exactly one of pad_value=... or "
                    "pad_factory=callable(last_value)"
                )
        elif has_value or has_factory:
            raise ConfigError(f"{name}: pad_value / pad_factory are only used with partial='pad'")

    _fixed_size = True

    @property
    def clock(self) -> Callable[[], float] | None:
        return None

    def context(self, chunk_index: int, new_start: int) -> int:
        return 0

    def deadline(self, ready_since: float) -> float | None:
        return None

    def scanner(self, chunk_index: int) -> ChunkScanner:
        return _CountScanner(self.new_items(chunk_index))

    def new_items(self, chunk_index: int) -> int | None:
        raise NotImplementedError

    def pad(self, last_value: Any, count: int) -> tuple[Any, ...]:
        if self.pad_factory is not None:
            return tuple(self.pad_factory(last_value) for _ in range(count))
        return (self.pad_value,) * count

    def fingerprint(self) -> str:
        """Hash of the class name and the parameters that decide boundaries (not pads, clocks, linger)."""
        skip = {"pad_value", "pad_factory", "clock", "linger"}
        parts = [type(self).__name__] + [
            f"{f.name}={getattr(self, f.name)!r}" for f in fields(self) if f.init and f.name not in skip
        ]
        return hashlib.blake2b(";".join(parts).encode(), digest_size=4).hexdigest()


@dataclass(frozen=True)
class Count(_Policy):
    """Chunks of exactly `n` new items, no context: chunk j holds sequences [j*n, (j+1)*n)."""

    n: int

    def __post_init__(self) -> None:
        _int_at_least("Count", "n", self.n, 1)
        super().__post_init__()

    def new_items(self, chunk_index: int) -> int:
        return self.n


@dataclass(frozen=True)
class SlidingWindow(_Policy):
    """Windows of `size` items advancing by `stride`: chunk j holds sequences [j*stride, j*stride + size).

    Chunk 0 delivers `size` new items; every later chunk repeats the last `size - stride` items of the
    previous window as context and delivers `stride` new ones. `stride` must be between 1 and `size` (a
    larger stride would skip items, which would then never be delivered). A padded final window is padded to
    `size` items in all.
    """

    size: int
    stride: int = 1

    def __post_init__(self) -> None:
        _int_at_least("SlidingWindow", "size", self.size, 1)
        _int_at_least("SlidingWindow", "stride", self.stride, 1)
        if self.stride > self.size:
            raise ConfigError(
                f"SlidingWindow: stride ({self.stride}) must not exceed size ({self.size}): the items "
                "between windows would never be delivered. Use stride <= size (stride == size is Count(size))"
            )
        super().__post_init__()

    def new_items(self, chunk_index: int) -> int:
        return self.size if chunk_index == 0 else self.stride

    def context(self, chunk_index: int, new_start: int) -> int:
        return 0 if chunk_index == 0 else self.size - self.stride


@dataclass(frozen=True)
class LeftContext(_Policy):
    """Chunks of `chunk` new items, each preceded by up to `left_context` earlier items as context.

    Chunk j delivers sequences [j*chunk, (j+1)*chunk) as new and repeats the `min(left_context, j*chunk)`
    items just before them (chunk 0 has none). `left_context` may exceed `chunk`; 0 gives `Count(chunk)`.
    A padded final chunk is padded to `chunk` new items.
    """

    chunk: int
    left_context: int = 0

    def __post_init__(self) -> None:
        _int_at_least("LeftContext", "chunk", self.chunk, 1)
        _int_at_least("LeftContext", "left_context", self.left_context, 0)
        super().__post_init__()

    def new_items(self, chunk_index: int) -> int:
        return self.chunk

    def context(self, chunk_index: int, new_start: int) -> int:
        return min(self.left_context, new_start)


@dataclass(frozen=True)
class Ramp(_Policy):
    """Growing chunks, no context: `first` items, then `size`, then each chunk `growth` times the last.

    Chunk sizes: s0 = first, s1 = size, s(j+1) = min(max, ceil(s(j) * growth)), computed with exact
    fractions (growth 1.1 means 11/10). Example: Ramp(1, 2, 2.0, 16) gives 1, 2, 4, 8, 16, 16, ...
    Needs 1 <= first <= max, 1 <= size <= max, growth >= 1. A padded final chunk is padded to its s(j).
    """

    first: int
    size: int
    growth: float = 2.0
    max: int = 1 << 30
    _sizes: tuple[int, ...] = field(init=False, repr=False, compare=False, default=())

    def __post_init__(self) -> None:
        _int_at_least("Ramp", "max", self.max, 1)
        _int_at_least("Ramp", "first", self.first, 1)
        _int_at_least("Ramp", "size", self.size, 1)
        _number_at_least("Ramp", "growth", self.growth, 1)
        if math.isinf(self.growth):
            raise ConfigError(f"Ramp: growth must be finite, got {self.growth!r}")
        for name, value in (("first", self.first), ("size", self.size)):
            if value > self.max:
                raise ConfigError(f"Ramp: {name} ({value}) must not exceed max ({self.max})")
        super().__post_init__()
        factor = Fraction(str(self.growth))
        sizes = [self.first, self.size]
        while sizes[-1] < self.max and factor > 1:
            sizes.append(min(self.max, math.ceil(sizes[-1] * factor)))
        object.__setattr__(self, "_sizes", tuple(sizes))

    def new_items(self, chunk_index: int) -> int:
        sizes = self._sizes
        return sizes[chunk_index] if chunk_index < len(sizes) else sizes[-1]


@dataclass(frozen=True)
class Bytes(_Policy):
    """Chunks of items whose `nbytes` add up to at most `max_bytes`.

    Items join the chunk in sequence order while the total stays <= `max_bytes` (and, if set, while the chunk
    has fewer than `max_items` items). The chunk is complete when its total reaches `max_bytes` or it has
    `max_items` items, or when the next item would push it over the budget (that item then starts the next
    chunk, so the decision waits for it to arrive). An item larger than `max_bytes` forms a chunk by itself.
    """

    max_bytes: int
    max_items: int | None = None
    _fixed_size = False

    def __post_init__(self) -> None:
        _int_at_least("Bytes", "max_bytes", self.max_bytes, 1)
        _optional_int_at_least("Bytes", "max_items", self.max_items, 1)
        super().__post_init__()

    def new_items(self, chunk_index: int) -> None:
        return None

    def scanner(self, chunk_index: int) -> ChunkScanner:
        return _BytesScanner(self.max_bytes, self.max_items)


class _BytesScanner:
    __slots__ = ("count", "limit", "max_items", "total")

    def __init__(self, limit: int, max_items: int | None) -> None:
        self.total = 0
        self.count = 0
        self.limit = limit
        self.max_items = max_items

    def offer(self, item: BufferItem) -> Verdict:
        if self.count and self.total + item.nbytes > self.limit:
            return _REJECT
        self.total += item.nbytes
        self.count += 1
        if self.total >= self.limit or self.count == self.max_items:
            return _CLOSE
        return _TAKE


@dataclass(frozen=True)
class SessionGap(_Policy):
    """Sessions: consecutive items whose producer timestamps are at most `gap` seconds apart.

    Item i joins the chunk of item i-1 when `timestamp[i] - timestamp[i-1] <= gap` (a timestamp going
    backwards counts as no gap); otherwise the chunk is complete and item i starts the next one. With
    `max_items` a session is also cut after that many items. The gap is measured on `BufferItem.timestamp`
    (the producer's creation time), never on arrival time, so replays rebuild the same sessions; the last
    session is therefore delivered at END_OF_STREAM, or when the next session's first item arrives.
    """

    gap: float
    max_items: int | None = None
    _fixed_size = False

    def __post_init__(self) -> None:
        _number_at_least("SessionGap", "gap", self.gap, 0)
        _optional_int_at_least("SessionGap", "max_items", self.max_items, 1)
        super().__post_init__()

    def new_items(self, chunk_index: int) -> None:
        return None

    def scanner(self, chunk_index: int) -> ChunkScanner:
        return _GapScanner(self.gap, self.max_items)


class _GapScanner:
    __slots__ = ("count", "gap", "last", "max_items")

    def __init__(self, gap: float, max_items: int | None) -> None:
        self.gap = gap
        self.max_items = max_items
        self.count = 0
        self.last = 0.0

    def offer(self, item: BufferItem) -> Verdict:
        if self.count and item.timestamp - self.last > self.gap:
            return _REJECT
        self.last = item.timestamp
        self.count += 1
        return _CLOSE if self.count == self.max_items else _TAKE


@dataclass(frozen=True)
class Time(_Policy):
    """Chunks of at most `max_items` new items, complete when full or after `linger` seconds.

    A chunk is complete as soon as it has `max_items` items, or, with at least one item, once the clock
    reads `linger` seconds or more past the moment its first new item became deliverable (it and every item
    before it had arrived) - like a Kafka producer's linger.ms. The clock is `clock` (default
    `time.monotonic`; inject a fake one in tests), read by `StreamBuffer.put` and by `has_chunk_ready(now)`
    / `pop_chunk(now)` / `poll(now)` when `now` is not given; `StreamBuffer.next_deadline()` says when the
    pending chunk will be complete, so a consumer can bound its poll timeout. At END_OF_STREAM the leftover
    items form the final chunk whatever the linger.

    Only chunk *contents* up to the resume point are reproducible: after a crash, chunks are rebuilt from the
    same resume point with the same indices, but lingering boundaries depend on arrival times (unless
    `linger` is infinite, when `Time` behaves like `Count(max_items)` for all but the final chunk).
    """

    linger: float
    max_items: int
    clock: Callable[[], float] = field(default=time.monotonic, repr=False, compare=False)
    _fixed_size = False

    def __post_init__(self) -> None:
        _number_at_least("Time", "linger", self.linger, 0)
        _int_at_least("Time", "max_items", self.max_items, 1)
        if not callable(self.clock):
            raise ConfigError(f"Time: clock must be a callable returning seconds, got {self.clock!r}")
        super().__post_init__()

    def new_items(self, chunk_index: int) -> None:
        return None

    def scanner(self, chunk_index: int) -> ChunkScanner:
        return _CountScanner(self.max_items)

    def deadline(self, ready_since: float) -> float:
        return ready_since + self.linger
