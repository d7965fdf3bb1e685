"""mstar's StreamBuffer reference (seeds/002) on Freight through `freight.compat.mstar`: by hand, and fed by
a Freight consumer on the real broker."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from freight.compat.mstar import Count, SlidingWindow, StreamBuffer, StreamChunk
from freight.config import FreightSettings
from freight.errors import ChunkNotReadyError
from freight.stream import StreamConsumer


def test_by_hand_count_chunks_dict_data_and_final_chunk() -> None:
    buf = StreamBuffer("req-1", "encoder->decoder", "partition-0", Count(2))
    assert not buf.producer_done and not buf.has_chunk_ready()
    for i in range(5):
        buf.put(f"t{i}", np.full(3, i))
    chunks = []
    while buf.has_chunk_ready():
        chunks.append(buf.pop_chunk())
    assert [list(c.data) for c in chunks] == [["t0", "t1"], ["t2", "t3"]]
    assert all(isinstance(c, StreamChunk) and not c.is_final for c in chunks)
    assert [c.chunk_index for c in chunks] == [0, 1] and [c.start_offset for c in chunks] == [0, 2]
    with pytest.raises(ChunkNotReadyError, match="END_OF_STREAM not signalled"):
        buf.pop_chunk()
    buf.signal_done()
    assert buf.producer_done
    last = buf.pop_chunk()
    assert last.is_final and list(last.data) == ["t4"] and last.start_offset == 4
    np.testing.assert_array_equal(last.data["t4"], np.full(3, 4))


def test_sliding_window_returns_the_full_window_and_advances_by_stride() -> None:
    buf = StreamBuffer("req-2", "edge", "p", SlidingWindow(4, 2))
    for i in range(8):
        buf.put(f"t{i}", i)
    buf.signal_done()
    windows = []
    while buf.has_chunk_ready():
        chunk = buf.pop_chunk()
        windows.append((chunk.start_offset, list(chunk.data.values()), chunk.is_final))
    assert windows == [(0, [0, 1, 2, 3], False), (2, [2, 3, 4, 5], False), (4, [4, 5, 6, 7], True)]


def test_fed_by_a_freight_consumer(
    stream_settings: FreightSettings, topic: str, make_producer: Callable[..., Any], file_store: Any
) -> None:
    producer = make_producer({None: file_store}, inline_threshold=0)
    for i in range(7):
        producer.send(topic, np.full(4, i), stream="req-9", metadata={"tensor_id": f"kv-{i}"})
    producer.end_stream(topic, "req-9")
    producer.flush()
    buf = StreamBuffer("req-9", "prefill->decode", "0", Count(3))
    with StreamConsumer(topic, None, settings=stream_settings, until_end_of=["req-9"]) as consumer:
        chunks = list(buf.feed(consumer))
    assert [list(c.data) for c in chunks] == [["kv-0", "kv-1", "kv-2"], ["kv-3", "kv-4", "kv-5"], ["kv-6"]]
    assert chunks[-1].is_final and buf.producer_done
    np.testing.assert_array_equal(np.asarray(chunks[1].data["kv-4"]), np.full(4, 4))
