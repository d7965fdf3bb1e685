"""`StreamBuffer`: one stream's items in, chunks out, rebuildable from three numbers after a crash.

Model. Items carry their stream sequence (0, 1, 2, ...). The buffer keeps them in sequence order whatever
the arrival order (out-of-order items wait in a side table until the gap before them is filled), ignores
duplicates idempotently by sequence (redelivery after a crash), and cuts chunks with its `ChunkPolicy`. It
retains exactly the items some future chunk still needs: those not yet delivered as new, plus the context
(window overlap, left context) that the next chunk repeats. Everything older is released at `pop_chunk()`.

Resume state. Because a chunk's boundaries depend only on where it starts (its chunk index and the sequence
of its first new item) and on the items themselves, the whole chunking progress of a stream is
`ResumeState(next_chunk_index, next_sequence, finished)`: the index of the next chunk and the sequence of
the first item not yet delivered as new. The oldest item the next chunk needs, `keep_from`, is derived:
`next_sequence - policy.context(next_chunk_index, next_sequence)`. A buffer built with `resume=state`
ignores every item before `keep_from`, treats `[keep_from, next_sequence)` as context only, and, fed the
same items again, pops exactly the chunks (same `chunk_index`, same contents) that an uninterrupted buffer
would have popped after that point. (`Time` chunks lingering on a wall clock are the one exception: they
restart at the same point with the same indices, but where a lingering chunk ends depends on arrival times.)

Commit watermark. `low_watermark()` is the smallest Kafka offset among the items the buffer retains (and
of the END_OF_STREAM record until the final chunk is out). Committing the partition's smallest such offset
(see `freight.buffer.commit_point`) together with each open stream's resume state means a restarted consumer
re-reads every item any open window needs, and nothing is lost: records before the commit are either
delivered or no longer needed. `held_refs()` names the stored objects the buffer still holds, which the
evictor must spare.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from freight.buffer.chunk import BufferItem, StreamChunk
from freight.buffer.policies import ChunkPolicy, ChunkScanner, Verdict
from freight.errors import ChunkNotReadyError, ResumeStateError, StreamBufferError

log = logging.getLogger("freight.buffer")
_REJECT, _CLOSE = Verdict.REJECT, Verdict.TAKE_CLOSE


@dataclass(frozen=True, slots=True)
class ResumeState:
    """Where a stream's chunking stands: the next chunk's index and the sequence of its first new item.

    `finished` means the final chunk was popped: a resumed buffer then ignores everything it is fed.
    """

    next_chunk_index: int = 0
    next_sequence: int = 0
    finished: bool = False

    def check(self) -> None:
        """Raise `ResumeStateError` unless both numbers are integers >= 0 (done by `StreamBuffer`)."""
        for name in ("next_chunk_index", "next_sequence"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ResumeStateError(f"ResumeState.{name} must be an integer >= 0, got {value!r}")


class StreamBuffer:
    """One stream's buffer: `put` items in any order, `pop_chunk` chunks cut by `policy`, `signal_done`.

    `resume` rebuilds a buffer from persisted state (see the module docstring). The buffer is not
    thread-safe: one consumer loop owns it.
    """

    def __init__(self, stream: str, policy: ChunkPolicy, *, resume: ResumeState | None = None) -> None:
        if not isinstance(policy, ChunkPolicy):
            raise TypeError(
                "StreamBuffer: policy must be a ChunkPolicy (Count, Bytes, Time, SlidingWindow, "
                f"LeftContext, SessionGap, Ramp), got {type(policy).__name__}"
            )
        state = resume or ResumeState()
        state.check()
        self.stream = stream
        self.policy = policy
        self._clock: Callable[[], float] | None = policy.clock
        self._index = state.next_chunk_index
        self._fixed = policy.new_items(self._index)  # new items of the next chunk (None: a scanning policy)
        self._next_new = state.next_sequence
        self._finished = state.finished
        keep = state.next_sequence - policy.context(state.next_chunk_index, state.next_sequence)
        if keep < 0:
            raise ResumeStateError(
                f"stream {stream!r}: resume state {state} does not fit {policy!r} (chunk "
                f"{state.next_chunk_index} would need context before sequence 0); was it written by "
                "another policy?"
            )
        self._base = keep  # sequence of _items[0]
        self._items: list[BufferItem] = []
        self._ordered = True  # _items' offsets are known and non-decreasing: the first one is the smallest
        self._last_off = -1  # the offset of _items[-1] while _ordered
        self._times: list[float] = []  # when each of _items became deliverable (only with a clock)
        self._ahead: dict[int, BufferItem] = {}
        self._end: int | None = None
        self._end_offset: int | None = None
        self._scan: ChunkScanner | None = None
        self._scanned = 0
        self._cut: int | None = None
        self.dropped_items = 0
        self.ignored_items = 0

    # ---------------------------------------------------------------- state
    @property
    def next_chunk_index(self) -> int:
        return self._index

    @property
    def next_sequence(self) -> int:
        """Sequence of the first item not yet delivered as new."""
        return self._next_new

    @property
    def keep_from(self) -> int:
        """Sequence of the oldest item the next chunk needs (items before it are released or ignored)."""
        return self._base

    @property
    def end_sequence(self) -> int | None:
        """The stream's length once END_OF_STREAM was signalled, else None."""
        return self._end

    @property
    def finished(self) -> bool:
        """True once the final chunk was popped."""
        return self._finished

    @property
    def first_missing(self) -> int | None:
        """The sequence the buffer waits for before it can go on (None when finished or complete)."""
        contig = self._base + len(self._items)
        if self._finished or contig == self._end:
            return None
        return contig

    @property
    def pending_items(self) -> int:
        """Items received but not yet delivered as new (including out-of-order ones waiting for a gap)."""
        return self._base + len(self._items) - self._next_new + len(self._ahead)

    def __len__(self) -> int:
        """Items retained: context, pending, and out-of-order."""
        return len(self._items) + len(self._ahead)

    def __repr__(self) -> str:
        return (
            f"StreamBuffer(stream={self.stream!r}, policy={self.policy!r}, next_chunk={self._index}, "
            f"next_sequence={self._next_new}, retained={len(self)}, end={self._end}, "
            f"finished={self._finished})"
        )

    def resume_state(self) -> ResumeState:
        """The state to persist with a commit so that a rebuilt buffer continues exactly here."""
        return ResumeState(self._index, self._next_new, self._finished)

    def low_watermark(self) -> int | None:
        """Smallest Kafka offset of a retained item or of an unconsumed END_OF_STREAM; None when none."""
        if self._ordered and not self._ahead and self._end_offset is None:  # the common case
            return self._items[0].offset if self._items else None
        items = self._items[:1] if self._ordered else self._items  # ordered: the first offset is the smallest
        offsets = [it.offset for it in items if it.offset is not None]
        offsets.extend(it.offset for it in self._ahead.values() if it.offset is not None)
        if self._end_offset is not None and not self._finished:
            offsets.append(self._end_offset)
        return min(offsets) if offsets else None

    def held_refs(self) -> set[tuple[str, str]]:
        """(store, key) of every stored object the buffer retains: the evictor must not delete them."""
        held = [*self._items, *self._ahead.values()]
        return {(it.store, it.key) for it in held if it.store is not None and it.key is not None}

    # ---------------------------------------------------------------- input
    def put(self, item: BufferItem) -> bool:
        """Add one item; returns False when it was ignored (duplicate, before the resume point, finished)."""
        seq = item.sequence
        if self._finished:
            self.ignored_items += 1
            return False
        contig = self._base + len(self._items)
        if seq < contig:
            if seq < 0:
                raise StreamBufferError(f"stream {self.stream!r}: item sequence must be >= 0, got {seq}")
            self.ignored_items += 1
            return False
        if self._end is not None and seq >= self._end:
            raise StreamBufferError(
                f"stream {self.stream!r}: item sequence {seq} arrived after END_OF_STREAM at {self._end}; "
                "the stream's sequences and its end marker disagree"
            )
        if seq != contig:
            if seq in self._ahead:
                self.ignored_items += 1
                return False
            self._ahead[seq] = item
            return True
        items = self._items
        if self._ordered:
            off = item.offset
            if off is None or off < self._last_off:
                self._ordered = False
            else:
                self._last_off = off
        items.append(item)
        ahead = self._ahead
        if ahead:
            nxt = seq + 1
            while nxt in ahead:
                items.append(ahead.pop(nxt))
                nxt += 1
            if self._ordered:
                self._recheck_order()
        if self._clock is not None:
            now = self._clock()
            self._times.extend([now] * (len(self._items) - len(self._times)))
        return True

    def signal_done(self, end_sequence: int | None = None, offset: int | None = None) -> None:
        """END_OF_STREAM: the stream has `end_sequence` items (sequences 0 .. end_sequence-1).

        With `end_sequence=None` the stream ends after the highest sequence received so far (for in-process
        producers; a Kafka END_OF_STREAM event carries the count, so items still in flight are waited for).
        `offset` is the Kafka offset of the END_OF_STREAM record: it is held back from commits until the
        final chunk is popped, so a crash before then redelivers it. Repeating the same signal is harmless.
        """
        if self._finished:
            return
        if end_sequence is None:
            received = max(self._base + len(self._items), max(self._ahead, default=-1) + 1)
            end_sequence = self._end if self._end is not None else max(received, self._next_new)
        if isinstance(end_sequence, bool) or not isinstance(end_sequence, int) or end_sequence < 0:
            raise StreamBufferError(
                f"stream {self.stream!r}: end_sequence must be an integer >= 0, got {end_sequence!r}"
            )
        if self._end is not None:
            if end_sequence != self._end:
                raise StreamBufferError(
                    f"stream {self.stream!r}: END_OF_STREAM at {end_sequence} conflicts with the earlier "
                    f"END_OF_STREAM at {self._end}"
                )
            if offset is not None and (self._end_offset is None or offset < self._end_offset):
                self._end_offset = offset
            return
        highest = max(self._base + len(self._items) - 1, max(self._ahead, default=-1))
        if end_sequence < self._next_new or end_sequence <= highest:
            raise StreamBufferError(
                f"stream {self.stream!r}: END_OF_STREAM at {end_sequence}, but sequence "
                f"{max(highest, self._next_new - 1)} was already received or delivered"
            )
        self._end = end_sequence
        self._end_offset = offset

    # ---------------------------------------------------------------- output
    def _recheck_order(self) -> None:
        prev = -1
        for it in self._items:
            if it.offset is None or it.offset < prev:
                self._ordered = False
                return
            prev = it.offset
        self._ordered, self._last_off = True, prev

    def _now(self, now: float | None) -> float:
        if now is not None:
            return now
        assert self._clock is not None
        return self._clock()

    def _cut_size(self, now: float | None) -> int | None:
        """New items in the next complete (non-final) chunk, or None when no complete chunk is ready."""
        if self._finished:
            return None
        available = self._base + len(self._items) - self._next_new
        fixed = self._fixed
        if fixed is not None:
            return fixed if available >= fixed else None
        if self._cut is not None:
            return self._cut
        scan = self._scan
        if scan is None:
            scan = self._scan = self.policy.scanner(self._index)
        items = self._items
        first = self._next_new - self._base
        scanned = self._scanned
        offer = scan.offer
        while scanned < available:
            verdict = offer(items[first + scanned])
            if verdict is _REJECT:
                if scanned == 0:
                    raise StreamBufferError(f"{self.policy!r}: the scanner rejected a chunk's first item")
                self._cut = self._scanned = scanned
                return scanned
            scanned += 1
            if verdict is _CLOSE:
                self._cut = self._scanned = scanned
                return scanned
        self._scanned = scanned
        if scanned and self._clock is not None and self._base + len(items) != self._end:
            deadline = self.policy.deadline(self._times[first])
            if deadline is not None and self._now(now) >= deadline:
                return self._scanned
        return None

    def _final_ready(self) -> bool:
        return not self._finished and self._end is not None and self._base + len(self._items) == self._end

    def has_chunk_ready(self, now: float | None = None) -> bool:
        """True when `pop_chunk()` will return a chunk. `now` overrides the policy clock (`Time` only)."""
        fixed = self._fixed
        if fixed is not None and not self._finished:  # the common case, inlined
            received = self._base + len(self._items)
            return received - self._next_new >= fixed or received == self._end
        return self._cut_size(now) is not None or self._final_ready()

    def next_deadline(self) -> float | None:
        """Clock time at which a lingering chunk becomes ready (`Time` with pending items), else None."""
        if self._clock is None or self._finished or self._cut_size(float("-inf")) is not None:
            return None
        first = self._next_new - self._base
        if first >= len(self._items):
            return None
        return self.policy.deadline(self._times[first])

    def poll(self, now: float | None = None) -> StreamChunk | None:
        """The next chunk if one is ready, else None."""
        return self.pop_chunk(now) if self.has_chunk_ready(now) else None

    def pop_chunk(self, now: float | None = None) -> StreamChunk:
        """Pop the next chunk; raises `ChunkNotReadyError` (saying what is missing) when none is ready."""
        cut = self._cut_size(now)
        if cut is not None:
            return self._emit(cut)
        if self._final_ready():
            return self._emit_final()
        raise ChunkNotReadyError(self._not_ready_reason())

    def _not_ready_reason(self) -> str:
        name = f"stream {self.stream!r}"
        if self._finished:
            return f"{name}: no chunk ready: the stream is finished (its final chunk was already popped)"
        missing = self.first_missing
        available = self._base + len(self._items) - self._next_new
        reason = (
            f"{name}: no chunk ready for chunk {self._index}: {available} new item(s) available from "
            f"sequence {self._next_new}"
        )
        if self._ahead:
            reason += f", waiting for sequence {missing} ({len(self._ahead)} later item(s) arrived early)"
        elif self._end is not None:
            reason += f", waiting for sequences {missing}..{self._end - 1} before END_OF_STREAM"
        else:
            reason += ", and END_OF_STREAM not signalled"
        return reason + "; call has_chunk_ready() before pop_chunk(), or poll()"

    def _emit(self, n_new: int) -> StreamChunk:
        policy = self.policy
        index, new_start, base = self._index, self._next_new, self._base
        ctx = policy.context(index, new_start)
        start = new_start - ctx
        items = tuple(self._items[start - base : new_start + n_new - base])
        # END_OF_STREAM already seen and this chunk takes the last items: it is the final chunk (no empty
        # final chunk follows it).
        final = self._end is not None and new_start + n_new == self._end
        chunk = StreamChunk(tuple([it.value for it in items]), index, start, final, ctx, self.stream, items)
        if final:
            self._index = index + 1
            self._finish()
            return chunk
        self._index = index + 1
        self._fixed = policy.new_items(self._index)
        self._next_new = new_start + n_new
        keep = self._next_new - policy.context(self._index, self._next_new)
        if keep > base:
            del self._items[: keep - base]
            if self._clock is not None:
                del self._times[: keep - base]
            self._base = keep
            if not self._ordered:
                self._recheck_order()
        self._scan = None
        self._scanned = 0
        self._cut = None
        return chunk

    def _emit_final(self) -> StreamChunk:
        assert self._end is not None
        policy, index, new_start, end = self.policy, self._index, self._next_new, self._end
        left = end - new_start
        chunk: StreamChunk
        if left == 0:
            chunk = StreamChunk((), index, end, True, 0, self.stream)
        elif policy.partial == "drop":
            self.dropped_items += left
            log.warning(
                "stream %r: dropped %d trailing item(s) (sequences %d..%d) at END_OF_STREAM, %r",
                self.stream,
                left,
                new_start,
                end - 1,
                policy,
            )
            chunk = StreamChunk((), index, end, True, 0, self.stream, dropped_items=left)
        else:
            ctx = policy.context(index, new_start)
            start = new_start - ctx
            items = tuple(self._items[start - self._base : end - self._base])
            data = tuple([it.value for it in items])
            padding = 0
            if policy.partial == "pad":
                target = policy.new_items(index)
                if target is None:
                    raise StreamBufferError(f"{policy!r}: partial='pad' needs a fixed chunk size")
                padding = target - left
                data += policy.pad(items[-1].value, padding)
            chunk = StreamChunk(data, index, start, True, ctx, self.stream, items, padding=padding)
        self._index = index + 1
        self._finish()
        return chunk

    def _finish(self) -> None:
        """The final chunk was popped: nothing is retained any more."""
        end = self._end
        assert end is not None
        self._next_new = end
        self._finished = True
        self._base = end
        self._items.clear()
        self._recheck_order()
        self._times.clear()
        self._ahead.clear()
        self._scan = None
        self._scanned = 0
        self._cut = None
