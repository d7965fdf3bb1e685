"""The buffer API by example: argument errors, not-ready pops, duplicates, drop/pad, stacking, Ramp sizes."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from freight.buffer import (
    BufferItem,
    Bytes,
    ChunkPolicy,
    Count,
    LeftContext,
    PartitionBuffers,
    Ramp,
    ResumeState,
    SessionGap,
    SlidingWindow,
    StreamBuffer,
    StreamChunk,
    Time,
    stack,
)
from freight.errors import ChunkNotReadyError, ConfigError, SerializationError, StreamBufferError


def items(n: int, start: int = 0, **kw: Any) -> list[BufferItem]:
    return [BufferItem(f"v{q}", q, 0, 100 + q, **kw) for q in range(start, n)]


def run(policy: ChunkPolicy, values: list[BufferItem], end: int | None = None) -> list[StreamChunk]:
    buf = StreamBuffer("s", policy)
    out = []
    for item in values:
        buf.put(item)
        while buf.has_chunk_ready():
            out.append(buf.pop_chunk())
    buf.signal_done(len(values) if end is None else end)
    while buf.has_chunk_ready():
        out.append(buf.pop_chunk())
    return out


@pytest.mark.parametrize(
    ("make", "names"),
    [
        (lambda: Count(0), "n must be an integer >= 1"),
        (lambda: Count(2.5), "n must be an integer"),  # type: ignore[arg-type]
        (lambda: SlidingWindow(size=0), "size must be an integer >= 1"),
        (lambda: SlidingWindow(4, 0), "stride must be an integer >= 1"),
        (lambda: SlidingWindow(4, 5), "stride (5) must not exceed size (4)"),
        (lambda: LeftContext(0, 2), "chunk must be"),
        (lambda: LeftContext(2, -1), "left_context must be an integer >= 0"),
        (lambda: Ramp(0, 2), "first must be"),
        (lambda: Ramp(1, 2, 0.5), "growth must be a number >= 1"),
        (lambda: Ramp(8, 2, 2.0, 4), "first (8) must not exceed max (4)"),
        (lambda: Bytes(0), "max_bytes must be"),
        (lambda: Bytes(10, 0), "max_items must be"),
        (lambda: SessionGap(-1.0), "gap must be a number >= 0"),
        (lambda: SessionGap(float("nan")), "gap must be a number"),
        (lambda: Time(-1, 3), "linger must be a number >= 0"),
        (lambda: Time(1, 0), "max_items must be"),
        (lambda: Count(2, partial="truncate"), "partial must be one of emit, drop, pad"),  # type: ignore[arg-type]
        (lambda: Count(2, partial="pad"), "needs exactly one of pad_value"),
        (lambda: Count(2, partial="pad", pad_value=0, pad_factory=lambda v: v), "needs exactly one"),
        (lambda: Count(2, pad_value=0), "only used with partial='pad'"),
        (lambda: Bytes(10, partial="pad", pad_value=0), "partial='pad' needs a fixed chunk size"),
        (lambda: SessionGap(1.0, partial="pad", pad_value=0), "Use partial='emit' or 'drop'"),
    ],
)
def test_bad_arguments_say_what_is_wrong(make: Callable[[], object], names: str) -> None:
    with pytest.raises(ConfigError) as info:
        make()
    assert names in str(info.value)


def test_pop_when_nothing_is_ready_says_why() -> None:
    buf = StreamBuffer("cam-1", Count(3))
    buf.put(BufferItem("a", 0))
    buf.put(BufferItem("c", 2))
    assert not buf.has_chunk_ready() and buf.poll() is None
    with pytest.raises(ChunkNotReadyError, match=r"'cam-1'.*waiting for sequence 1.*has_chunk_ready\(\)"):
        buf.pop_chunk()
    buf.signal_done(3)
    buf.put(BufferItem("b", 1))
    chunk = buf.pop_chunk()  # the end is known: the last real chunk is the final one
    assert chunk.data == ("a", "b", "c") and chunk.is_final
    with pytest.raises(ChunkNotReadyError, match="already popped"):
        buf.pop_chunk()
    with pytest.raises(TypeError, match="must be a ChunkPolicy"):
        StreamBuffer("s", "count")  # type: ignore[arg-type]


def test_duplicates_and_items_after_the_end() -> None:
    buf = StreamBuffer("s", Count(2))
    for q in [1, 1, 0, 0, 1]:
        buf.put(BufferItem(q, q))
    assert buf.ignored_items == 3
    assert buf.pop_chunk().data == (0, 1)
    assert buf.put(BufferItem(0, 0)) is False  # redelivered after being delivered: ignored
    buf.signal_done(3)
    buf.signal_done(3)  # the same END_OF_STREAM twice is harmless
    with pytest.raises(StreamBufferError, match="conflicts"):
        buf.signal_done(4)
    with pytest.raises(StreamBufferError, match="after END_OF_STREAM"):
        buf.put(BufferItem(9, 9))
    early = StreamBuffer("t", Count(2))
    early.put(BufferItem(5, 5))
    with pytest.raises(StreamBufferError, match="sequence 5 was already received"):
        early.signal_done(3)
    with pytest.raises(StreamBufferError, match=">= 0"):
        early.put(BufferItem(-1, -1))


def test_exactly_one_final_chunk_even_when_nothing_is_left() -> None:
    chunks = run(Count(2), items(4))
    assert [(c.chunk_index, len(c), c.is_final) for c in chunks] == [
        (0, 2, False),
        (1, 2, False),
        (2, 0, True),
    ]
    assert chunks[-1].start_offset == 4
    empty = run(Count(2), [])
    assert [(c.chunk_index, c.data, c.is_final) for c in empty] == [(0, (), True)]


def test_drop_is_counted_and_logged_never_silent(caplog: pytest.LogCaptureFixture) -> None:
    buf = StreamBuffer("s", Count(4, partial="drop"))
    for item in items(6):
        buf.put(item)
    buf.signal_done(6)
    with caplog.at_level(logging.WARNING, logger="freight.buffer"):
        first, final = buf.pop_chunk(), buf.pop_chunk()
    assert first.data == ("v0", "v1", "v2", "v3") and not first.is_final
    assert final.is_final and final.data == () and final.dropped_items == 2 and buf.dropped_items == 2
    assert "dropped 2 trailing item(s) (sequences 4..5)" in caplog.text


def test_pad_with_a_value_or_a_factory() -> None:
    chunks = run(SlidingWindow(4, 2, partial="pad", pad_value=None), items(5))
    assert [c.data for c in chunks] == [("v0", "v1", "v2", "v3"), ("v2", "v3", "v4", None)]
    final = chunks[-1]
    assert (final.context_items, final.num_new, final.padding, final.new_data) == (2, 1, 1, ("v4",))
    arrays = [BufferItem(np.full(2, q), q) for q in range(3)]
    padded = run(Count(2, partial="pad", pad_factory=np.zeros_like), arrays)[-1]
    assert padded.is_final and padded.padding == 1
    np.testing.assert_array_equal(padded.stack(), [[2, 2], [0, 0]])
    # A padded final chunk keeps its pads when its real values are mapped (e.g. proxies resolved).
    assert run(Count(3, partial="pad", pad_value="P"), items(1))[-1].map_values(str.upper).data == (
        "V0",
        "P",
        "P",
    )


def test_ramp_sizes_grow_exactly() -> None:
    chunks = run(Ramp(1, 2, 2.0, 16), items(64))
    assert [c.num_new for c in chunks] == [1, 2, 4, 8, 16, 16, 16, 1]
    # growth 1.1 is exactly 11/10: 10 * 1.1 gives 11 (a float product would round up to 12).
    sizes = [c.num_new for c in run(Ramp(10, 10, 1.1, 100), items(200)) if not c.is_final]
    assert sizes[:5] == [10, 10, 11, 13, 15]
    assert [c.num_new for c in run(Ramp(3, 5, 1, 5), items(14))] == [3, 5, 5, 1]


def test_left_context_and_offsets() -> None:
    chunks = run(LeftContext(3, 2), items(8))
    assert [(c.start_offset, c.context_items, c.data) for c in chunks] == [
        (0, 0, ("v0", "v1", "v2")),
        (1, 2, ("v1", "v2", "v3", "v4", "v5")),
        (4, 2, ("v4", "v5", "v6", "v7")),
    ]
    assert chunks[1].offsets == (101, 102, 103, 104, 105) and chunks[1].context_data == ("v1", "v2")
    assert chunks[1].sequences == range(1, 6) and chunks[1].partition == 0


def test_bytes_budget_and_oversized_items() -> None:
    sizes = [3, 3, 5, 20, 1, 1, 8]
    values = [BufferItem(q, q, nbytes=n) for q, n in enumerate(sizes)]
    chunks = run(Bytes(8), values)
    assert [c.data for c in chunks] == [(0, 1), (2,), (3,), (4, 5), (6,), ()]
    # The chunk (4, 5) needed item 6 to arrive to know it was complete.
    buf = StreamBuffer("s", Bytes(8))
    for item in values[4:6]:
        buf.put(BufferItem(item.value, item.sequence - 4, nbytes=item.nbytes))
    assert not buf.has_chunk_ready()


def test_session_gap_uses_item_timestamps() -> None:
    stamps = [0.0, 0.5, 1.0, 5.0, 5.2, 20.0]
    values = [BufferItem(q, q, timestamp=t) for q, t in enumerate(stamps)]
    assert [c.data for c in run(SessionGap(1.0), values)] == [(0, 1, 2), (3, 4), (5,)]
    assert [c.data for c in run(SessionGap(1.0, max_items=2), values)] == [(0, 1), (2,), (3, 4), (5,)]


def test_time_policy_with_a_fake_clock() -> None:
    now = [0.0]
    policy = Time(linger=2.0, max_items=3, clock=lambda: now[0])
    buf = StreamBuffer("s", policy)
    buf.put(BufferItem("a", 0))
    now[0] = 1.0
    buf.put(BufferItem("b", 1))
    assert not buf.has_chunk_ready() and buf.next_deadline() == 2.0
    assert buf.has_chunk_ready(now=2.0)  # `now` overrides the clock
    now[0] = 2.5
    assert buf.pop_chunk().data == ("a", "b")
    for q, v in enumerate("cdefg", start=2):
        buf.put(BufferItem(v, q))
    assert buf.pop_chunk().data == ("c", "d", "e")  # full: no linger needed
    assert buf.poll() is None and buf.next_deadline() == 4.5
    buf.signal_done(7)
    final = buf.pop_chunk()
    assert final.data == ("f", "g") and final.is_final  # the end flushes whatever the linger


def test_stacking_numpy_and_torch() -> None:
    arrays = tuple(np.arange(4.0) + q for q in range(3))
    assert stack(arrays).shape == (3, 4)
    torch = pytest.importorskip("torch")
    tensors = tuple(torch.arange(4) + q for q in range(3))
    assert tuple(StreamChunk(tensors, 0).stack().shape) == (3, 4)
    with pytest.raises(SerializationError, match="numpy, torch"):
        stack((arrays[0], tensors[0]))
    with pytest.raises(SerializationError, match="resolve proxies first"):
        stack(("not", "arrays"))
    with pytest.raises(ValueError, match="different shapes"):
        stack((np.zeros(2), np.zeros(3)))
    with pytest.raises(ValueError, match="the chunk is empty"):
        StreamChunk((), 0, is_final=True).stack()


def test_import_works_without_torch() -> None:
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import numpy as np, freight.buffer as fb\n"
        "assert fb.stack([np.zeros(2), np.ones(2)]).shape == (2, 2)\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_partition_buffers_time_deadline_across_streams() -> None:
    now = [0.0]
    pb = PartitionBuffers("t", 0, Time(1.0, 10, clock=lambda: now[0]))
    pb.put("a", BufferItem("a0", 0, 0, 0))
    now[0] = 0.5
    pb.put("b", BufferItem("b0", 0, 0, 1))
    assert pb.pop_ready() is None and pb.next_deadline() == 1.0
    now[0] = 1.2
    ready = list(pb.drain())
    assert [c.data for c in ready] == [("a0",)] and pb.next_deadline() == 1.5
    assert [c.data for c in pb.drain(now=1.5)] == [("b0",)]
    pb.skip(2)
    point = pb.commit_point()
    assert point is not None and point.offset == 3


def test_low_watermark_is_the_smallest_retained_offset_whatever_the_order() -> None:
    buf = StreamBuffer("s", Count(10))
    buf.put(BufferItem(0, 0, 0, 7))
    buf.put(BufferItem(1, 1, 0, 5))  # items not from Kafka may come with any offsets
    assert buf.low_watermark() == 5
    for seq, offset in [(3, 2), (2, 9)]:
        buf.put(BufferItem(seq, seq, 0, offset))
    assert buf.low_watermark() == 2
    buf.signal_done(4, offset=1)
    assert buf.low_watermark() == 1
    buf.pop_chunk()
    assert buf.low_watermark() is None and buf.finished
    ordered = StreamBuffer("s", Count(2))
    for seq in range(3):
        ordered.put(BufferItem(seq, seq, 0, 10 + seq))
    ordered.put(BufferItem(4, 4, 0, 3))  # arrived early, from a lower offset
    assert ordered.pop_chunk().data == (0, 1) and ordered.low_watermark() == 3


def test_signal_done_without_a_count_ends_after_what_was_received() -> None:
    buf = StreamBuffer("s", Count(2))
    for q in (0, 2):
        buf.put(BufferItem(q, q))
    buf.signal_done()  # ends after sequence 2: sequence 1 is still awaited
    assert buf.end_sequence == 3 and not buf.has_chunk_ready() and buf.first_missing == 1
    buf.put(BufferItem(1, 1))
    assert [c.data for c in (buf.pop_chunk(), buf.pop_chunk())] == [(0, 1), (2,)]
    resumed = StreamBuffer("r", Count(2), resume=ResumeState(3, 6))
    resumed.signal_done()
    assert resumed.pop_chunk().start_offset == 6
