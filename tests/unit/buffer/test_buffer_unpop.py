"""`PartitionBuffers.commit_point(unpop_last=True)`: what `consumer.chunks()` commits on close while a chunk
is still in the application's hands must equal the commit point just before that chunk was popped."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from freight.buffer import BufferItem, ChunkPolicy, Count, LeftContext, PartitionBuffers, SlidingWindow


def _log(rng: random.Random, streams: int, length: int) -> list[tuple[str, str, int]]:
    """(kind, stream, sequence) records: streams interleaved, some ended, a few foreign records."""
    left = {f"s{i}": rng.randint(0, length) for i in range(streams)}
    ends = {s for s in left if rng.random() < 0.7}
    nxt = dict.fromkeys(left, 0)
    out: list[tuple[str, str, int]] = []
    while left:
        s = rng.choice(sorted(left))
        if nxt[s] < left[s]:
            out.append(("item", s, nxt[s]))
            nxt[s] += 1
        else:
            if s in ends:
                out.append(("end", s, nxt[s]))
            del left[s]
        if rng.random() < 0.1:
            out.append(("foreign", "", 0))
    return out


@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    policy=st.sampled_from([Count(3), SlidingWindow(4, 1), SlidingWindow(5, 2), LeftContext(2, 3)]),
)
def test_unpopped_commit_point_equals_the_one_before_the_pop(seed: int, policy: ChunkPolicy) -> None:
    rng = random.Random(seed)
    log = _log(rng, rng.randint(1, 5), 20)
    a = PartitionBuffers("t", 0, policy)
    b = PartitionBuffers("t", 0, policy)
    assert b.commit_point(unpop_last=True) is None  # nothing read yet
    for offset, (kind, stream, seq) in enumerate(log):
        for pb in (a, b):
            if kind == "item":
                pb.put(stream, BufferItem(f"{stream}:{seq}", seq, 0, offset))
            elif kind == "end":
                pb.end(stream, seq, offset)
            else:
                pb.skip(offset)
        # Nothing popped since this record: unpop_last changes nothing.
        assert b.commit_point(unpop_last=True) == a.commit_point()
        while True:
            before = a.commit_point()
            chunk_a, chunk_b = a.pop_ready(), b.pop_ready()
            assert (chunk_a is None) == (chunk_b is None)
            if chunk_a is None:
                break
            assert chunk_a == chunk_b
            assert b.commit_point(unpop_last=True) == before
            assert b.commit_point(unpop_last=True) == before  # asking twice changes nothing
            assert b.commit_point() == a.commit_point()


def test_unpopped_final_chunk_keeps_its_stream_open_in_the_metadata() -> None:
    pb = PartitionBuffers("t", 0, Count(2))
    pb.put("s", BufferItem("a", 0, 0, 10))
    pb.end("s", 1, 11)
    chunk = pb.pop_ready()
    assert chunk is not None and chunk.is_final
    held = pb.commit_point(unpop_last=True)
    assert held is not None and held.offset == 10
    assert '"o":{"s":[0,0]}' in held.metadata  # still open at chunk 0: a restart redelivers the final chunk
    done = pb.commit_point()
    assert done is not None and done.offset == 12 and '"o":{}' in done.metadata
    assert held != done
