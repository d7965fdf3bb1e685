"""Property tests of every chunk policy: boundaries, exactly-once delivery, one final chunk, offsets.

Each policy's chunks are compared with an independent reference model (written from the documented
semantics, not from the implementation) over random stream lengths, item sizes and timestamps, random
out-of-order arrival with redelivered duplicates, END_OF_STREAM at a random moment, and pops at random
moments; and over interleavings of many streams on one partition.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from freight.buffer import (
    BufferItem,
    Bytes,
    ChunkPolicy,
    Count,
    LeftContext,
    PartitionBuffers,
    Ramp,
    SessionGap,
    SlidingWindow,
    StreamBuffer,
    StreamChunk,
    Time,
)

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ----------------------------------------------------------------------------------------------- strategies


def _partial(fixed: bool) -> st.SearchStrategy[dict[str, Any]]:
    modes = [st.just({}), st.just({"partial": "drop"})]
    if fixed:
        modes += [
            st.just({"partial": "pad", "pad_value": "PAD"}),
            st.just({"partial": "pad", "pad_factory": lambda last: ("pad-of", last)}),
        ]
    return st.one_of(modes)


@st.composite
def fixed_policies(draw: st.DrawFn) -> ChunkPolicy:
    kind = draw(st.sampled_from(["count", "window", "left", "ramp"]))
    extra = draw(_partial(True))
    if kind == "count":
        return Count(draw(st.integers(1, 8)), **extra)
    if kind == "window":
        size = draw(st.integers(1, 8))
        return SlidingWindow(size, draw(st.integers(1, size)), **extra)
    if kind == "left":
        return LeftContext(draw(st.integers(1, 6)), draw(st.integers(0, 9)), **extra)
    first, size = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    top = draw(st.integers(max(first, size), 14))
    return Ramp(first, size, draw(st.sampled_from([1, 1.1, 1.5, 2.0, 3])), top, **extra)


@st.composite
def scanning_policies(draw: st.DrawFn) -> ChunkPolicy:
    kind = draw(st.sampled_from(["bytes", "gap", "time"]))
    extra = draw(_partial(False))
    max_items = draw(st.none() | st.integers(1, 7))
    if kind == "bytes":
        return Bytes(draw(st.integers(1, 40)), max_items, **extra)
    if kind == "gap":
        return SessionGap(draw(st.sampled_from([0, 0.5, 1, 2.5, 4])), max_items, **extra)
    # An infinite linger makes Time deterministic; finite lingers are tested with a fake clock below.
    return Time(math.inf, max_items or 4, **extra)


any_policy = st.one_of(fixed_policies(), scanning_policies())


@dataclass
class Stream:
    name: str
    nbytes: list[int]
    timestamps: list[float]

    def __len__(self) -> int:
        return len(self.nbytes)

    def item(self, seq: int, offset: int) -> BufferItem:
        return BufferItem(
            value=(self.name, seq),
            sequence=seq,
            partition=3,
            offset=offset,
            nbytes=self.nbytes[seq],
            timestamp=self.timestamps[seq],
            store="mem",
            key=f"{self.name}/{seq}",
        )


@st.composite
def streams(draw: st.DrawFn, name: str = "s", max_len: int = 50) -> Stream:
    n = draw(st.integers(0, max_len))
    nbytes = draw(st.lists(st.integers(0, 16), min_size=n, max_size=n))
    steps = draw(st.lists(st.sampled_from([0, 0.25, 0.5, 1, 2, 2.5, 3, 5, -1]), min_size=n, max_size=n))
    ts, t = [], 1000.0
    for step in steps:
        t += step
        ts.append(t)
    return Stream(name, nbytes, ts)


@st.composite
def arrival_orders(draw: st.DrawFn, n: int) -> list[int]:
    """Sequences in arrival order: in order, locally shuffled, or any permutation; with some duplicates."""
    style = draw(st.sampled_from(["ordered", "local", "any"]))
    order = list(range(n))
    if style == "any":
        order = draw(st.permutations(order))
    elif style == "local" and n > 1:
        for i in draw(st.lists(st.integers(0, n - 2), max_size=n)):
            order[i], order[i + 1] = order[i + 1], order[i]
    if n:
        for pos, seq in draw(st.lists(st.tuples(st.integers(0, n), st.integers(0, n - 1)), max_size=4)):
            order.insert(pos, seq)  # a redelivered duplicate (possibly before the original)
    return order


# ------------------------------------------------------------------------------------------ reference model


@dataclass(frozen=True)
class Expected:
    start: int
    context: int
    new: int
    final: bool
    padding: int = 0
    dropped: int = 0


def _ramp_sizes(p: Ramp, count: int) -> list[int]:
    sizes = [p.first, p.size]
    while len(sizes) < count:
        sizes.append(min(p.max, math.ceil(sizes[-1] * Fraction(str(p.growth)))))
    return sizes


def reference(policy: ChunkPolicy, s: Stream) -> list[Expected]:
    """The chunks the documented semantics prescribe for the whole stream `s` (independent of the code)."""
    n = len(s)
    out: list[Expected] = []
    covered = 0  # items delivered as new so far
    if isinstance(policy, Count | SlidingWindow | LeftContext | Ramp):
        ramp = _ramp_sizes(policy, n + 2) if isinstance(policy, Ramp) else []
        j = 0
        while True:
            if isinstance(policy, Count):
                size, ctx = policy.n, 0
            elif isinstance(policy, SlidingWindow):
                size = policy.size if j == 0 else policy.stride
                ctx = covered - j * policy.stride  # the window starts at j * stride
            elif isinstance(policy, LeftContext):
                size, ctx = policy.chunk, min(policy.left_context, covered)
            else:
                size, ctx = ramp[j], 0
            if covered + size > n:
                break
            out.append(Expected(covered - ctx, ctx, size, False))
            covered += size
            j += 1
        left = n - covered
        if left and policy.partial != "drop":
            pad = size - left if policy.partial == "pad" else 0
            out.append(Expected(covered - ctx, ctx, left, True, pad))
        else:
            out.append(Expected(n, 0, 0, True, dropped=left))
        return out
    # Scanning policies: a chunk is complete when closed by an item, or when the next item does not fit.
    max_items = getattr(policy, "max_items", None)
    while covered < n:
        i, closed = covered, False
        total = 0
        while i < n:
            if isinstance(policy, Bytes) and i > covered and total + s.nbytes[i] > policy.max_bytes:
                closed = True
                break
            if (
                isinstance(policy, SessionGap)
                and i > covered
                and s.timestamps[i] - s.timestamps[i - 1] > policy.gap
            ):
                closed = True
                break
            total += s.nbytes[i]
            i += 1
            if (isinstance(policy, Bytes) and total >= policy.max_bytes) or i - covered == max_items:
                closed = True
                break
        if not closed:
            break
        out.append(Expected(covered, 0, i - covered, False))
        covered = i
    left = n - covered
    if left and policy.partial != "drop":
        out.append(Expected(covered, 0, left, True))
    else:
        out.append(Expected(n, 0, 0, True, dropped=left))
    return out


def reference_outcomes(policy: ChunkPolicy, s: Stream) -> list[list[Expected]]:
    """The reference chunks, and, where the stream's length fits the chunks exactly, the same chunks with the
    last one final: what the buffer pops when END_OF_STREAM was known as that chunk was popped (no empty
    final chunk then; issue 14 defect 5)."""
    ref = reference(policy, s)
    last = ref[-1]
    if len(ref) >= 2 and last.new == 0 and last.dropped == 0 and not ref[-2].final:
        return [ref, [*ref[:-2], replace(ref[-2], final=True)]]
    return [ref]


def observed(chunks: list[StreamChunk]) -> list[Expected]:
    return [
        Expected(c.start_offset, c.context_items, c.num_new, c.is_final, c.padding, c.dropped_items)
        for c in chunks
    ]


def check_chunks(chunks: list[StreamChunk], s: Stream, offsets: dict[int, int]) -> None:
    """Invariants every chunk sequence must satisfy, whatever the policy."""
    assert [c.chunk_index for c in chunks] == list(range(len(chunks)))
    assert [c.is_final for c in chunks].count(True) == 1 and chunks[-1].is_final
    covered = 0
    for c in chunks:
        assert c.stream == s.name
        assert [it.sequence for it in c.items] == list(c.sequences)
        assert c.data[: len(c.items)] == tuple((s.name, q) for q in c.sequences)
        assert c.offsets == tuple(offsets[q] for q in c.sequences)
        assert len(c.data) == len(c.items) + c.padding
        assert 0 <= c.context_items <= len(c.items)
        assert c.new_start == covered or (c.is_final and not c.items), "new items must follow on without gaps"
        if c.items:
            assert c.start_offset >= 0 and c.partition == 3
        if not c.is_final:
            assert c.padding == 0 and c.dropped_items == 0 and c.num_new > 0
        covered += c.num_new
    final = chunks[-1]
    assert covered + final.dropped_items == len(s), "every item is delivered as new exactly once, or dropped"
    if final.dropped_items:
        assert not final.items and final.start_offset == len(s)


# ------------------------------------------------------------------------------------------------ drivers


def feed_one(
    buf: StreamBuffer, s: Stream, data: st.DataObject
) -> tuple[list[StreamChunk], dict[int, int], list[bool]]:
    """Feed `s` in a random arrival order, signal the end at a random moment, pop at random moments.

    Returns the chunks, the Kafka offsets by sequence, and for each chunk whether the end was signalled
    when it was popped."""
    order = data.draw(arrival_orders(len(s)), label="arrival")
    eos_at = data.draw(st.integers(0, len(order)), label="eos position")
    offsets = {q: 100 + 2 * q for q in range(len(s))}
    chunks: list[StreamChunk] = []
    end_known: list[bool] = []
    for pos in range(len(order) + 1):
        if pos == eos_at:
            buf.signal_done(len(s), offset=100 + 2 * len(s))
        if pos < len(order):
            buf.put(s.item(order[pos], offsets[order[pos]]))
        for _ in range(data.draw(st.integers(0, 2), label="pops")):
            if buf.has_chunk_ready():
                chunks.append(buf.pop_chunk())
                end_known.append(pos >= eos_at)
    while buf.has_chunk_ready():
        chunks.append(buf.pop_chunk())
        end_known.append(True)
    assert buf.finished and not buf.has_chunk_ready()
    return chunks, offsets, end_known


@SETTINGS
@given(policy=any_policy, s=streams(), data=st.data())
def test_single_stream_matches_reference(policy: ChunkPolicy, s: Stream, data: st.DataObject) -> None:
    buf = StreamBuffer(s.name, policy)
    chunks, offsets, end_known = feed_one(buf, s, data)
    check_chunks(chunks, s, offsets)
    assert observed(chunks) in reference_outcomes(policy, s)
    for chunk, known in zip(chunks, end_known, strict=True):
        if known and chunk.items and chunk.end_offset == len(s):
            assert chunk.is_final, "END_OF_STREAM was known when the last items were popped: no empty chunk"
    assert buf.dropped_items == chunks[-1].dropped_items
    assert len(buf) == 0 and buf.low_watermark() is None and buf.held_refs() == set()
    final = chunks[-1]
    if final.padding:
        last = final.data[len(final.items) - 1]
        assert final.data[len(final.items) :] in (
            (("PAD",) * final.padding),
            (("pad-of", last),) * final.padding,
        )


@SETTINGS
@given(policy=any_policy, s=streams(), data=st.data())
def test_retained_items_are_exactly_what_the_next_chunk_needs(
    policy: ChunkPolicy, s: Stream, data: st.DataObject
) -> None:
    """In-order feeding: after every pop the buffer holds [keep_from, received) and nothing older."""
    buf = StreamBuffer(s.name, policy)
    for q in range(len(s)):
        buf.put(s.item(q, 10 + q))
        while data.draw(st.booleans(), label="pop?") and buf.has_chunk_ready():
            chunk = buf.pop_chunk()
            assert buf.keep_from == buf.next_sequence - (
                policy.context(buf.next_chunk_index, buf.next_sequence) if not chunk.is_final else 0
            )
        assert len(buf) == q + 1 - buf.keep_from
        assert buf.low_watermark() == (10 + buf.keep_from if len(buf) else None)
        assert buf.held_refs() == {("mem", f"{s.name}/{k}") for k in range(buf.keep_from, q + 1)}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    policy=any_policy,
    group=st.lists(streams(max_len=25), min_size=1, max_size=6),
    data=st.data(),
)
def test_many_streams_on_one_partition(policy: ChunkPolicy, group: list[Stream], data: st.DataObject) -> None:
    """Interleaved streams on one partition each get their own buffer and their own reference chunks."""
    for i, s in enumerate(group):
        s.name = f"stream-{i}"
    # The partition log: each stream's records (items, then END_OF_STREAM) merged in a random interleaving.
    queues = [[("item", s, q) for q in range(len(s))] + [("end", s, len(s))] for s in group]
    log: list[tuple[str, Stream, int]] = []
    while any(queues):
        k = data.draw(st.sampled_from([i for i, q in enumerate(queues) if q]), label="next stream")
        log.append(queues[k].pop(0))
    pb = PartitionBuffers("topic", 3, policy)
    chunks: dict[str, list[StreamChunk]] = {s.name: [] for s in group}
    offsets: dict[str, dict[int, int]] = {s.name: {} for s in group}
    own: dict[str, StreamBuffer] = {}
    for offset, (kind, s, q) in enumerate(log):
        if kind == "item":
            offsets[s.name][q] = offset
            pb.put(s.name, s.item(q, offset))
        else:
            pb.end(s.name, q, offset)
        own.setdefault(s.name, pb.buffers[s.name])
        assert pb.buffers[s.name] is own[s.name] and own[s.name].stream == s.name
        if data.draw(st.booleans(), label="drain now?"):
            for c in pb.drain():
                chunks[c.stream].append(c)
        point = pb.commit_point()
        assert point is not None and point.offset <= offset + 1
    for c in pb.drain():
        chunks[c.stream].append(c)
    assert len({id(b) for b in own.values()}) == len(group), "one buffer per stream"
    for s in group:
        check_chunks(chunks[s.name], s, offsets[s.name])
        assert observed(chunks[s.name]) in reference_outcomes(policy, s)
    point = pb.commit_point()
    assert point is not None and point.offset == len(log)
    assert pb.buffers == {}, "finished streams below the commit point are forgotten"


# --------------------------------------------------------------------------------------- Time, fake clock


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@SETTINGS
@given(
    linger=st.sampled_from([0.0, 0.5, 1.0, 3.0]),
    max_items=st.integers(1, 6),
    partial=st.sampled_from(["emit", "drop"]),
    s=streams(max_len=40),
    data=st.data(),
)
def test_time_policy_with_injected_clock(
    linger: float, max_items: int, partial: Any, s: Stream, data: st.DataObject
) -> None:
    """Ready exactly when max_items are available or the first new item has lingered `linger` seconds."""
    clock = FakeClock()
    policy = Time(linger, max_items, clock=clock, partial=partial)
    buf = StreamBuffer(s.name, policy)
    order = data.draw(arrival_orders(len(s)), label="arrival")
    eos_at = data.draw(st.integers(0, len(order)), label="eos position")
    deliverable_at: dict[int, float] = {}  # when each sequence and all before it had arrived
    received: set[int] = set()
    chunks: list[StreamChunk] = []
    offsets = {q: q for q in range(len(s))}
    for pos in range(len(order) + 1):
        clock.now += data.draw(st.sampled_from([0.0, 0.125, 0.5, 1.0, 2.0]), label="tick")  # exact in binary
        if pos == eos_at:
            buf.signal_done(len(s))
        if pos < len(order):
            buf.put(s.item(order[pos], order[pos]))
            received.add(order[pos])
            q = len(deliverable_at)
            while q in received:
                deliverable_at[q] = clock.now
                q += 1
        for _ in range(data.draw(st.integers(0, 2), label="pops")):
            nxt = buf.next_sequence
            available = len(deliverable_at) - nxt
            complete = len(deliverable_at) == len(s) and buf.end_sequence is not None
            lingered = available > 0 and clock.now - deliverable_at[nxt] >= linger
            expect_ready = available >= max_items or (complete and not buf.finished) or lingered
            assert buf.has_chunk_ready() == expect_ready
            if available and not expect_ready:
                assert buf.next_deadline() == deliverable_at[nxt] + linger
                assert buf.poll() is None
            if expect_ready:
                chunk = buf.pop_chunk()
                chunks.append(chunk)
                if not chunk.is_final:
                    assert chunk.num_new == min(max_items, available)
    buf.signal_done(len(s))
    while buf.has_chunk_ready():
        chunks.append(buf.pop_chunk())
    check_chunks(chunks, s, offsets)
    assert all(c.num_new <= max_items for c in chunks)
