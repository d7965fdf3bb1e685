"""Crash and resume at the pure level: a consumer killed at random points and restarted from its last
commit (offset + metadata) rebuilds exactly the chunks of an uninterrupted run.

The "partition" is a list of records (items of many streams interleaved, a few out of sequence order,
END_OF_STREAM records, foreign records). A simulated consumer feeds them to `PartitionBuffers`, hands out
chunks one at a time and commits `commit_point()` at random moments after a chunk was handed out; a crash
throws the consumer away, and the restart re-reads the partition from the committed offset with the committed
metadata, exactly as a Kafka consumer group would.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

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
    decode_resume,
    encode_resume,
)
from freight.errors import ResumeStateError

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def deterministic_policies(draw: st.DrawFn) -> ChunkPolicy:
    kind = draw(st.sampled_from(["count", "window", "left", "ramp", "bytes", "gap", "time"]))
    fixed = kind in ("count", "window", "left", "ramp")
    modes: list[dict[str, Any]] = [{}, {"partial": "drop"}]
    if fixed:
        modes.append({"partial": "pad", "pad_value": None})
    extra = draw(st.sampled_from(modes))
    if kind == "count":
        return Count(draw(st.integers(1, 6)), **extra)
    if kind == "window":
        size = draw(st.integers(1, 7))
        return SlidingWindow(size, draw(st.integers(1, size)), **extra)
    if kind == "left":
        return LeftContext(draw(st.integers(1, 5)), draw(st.integers(0, 7)), **extra)
    if kind == "ramp":
        return Ramp(
            draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.sampled_from([1, 1.5, 2])), 9, **extra
        )
    if kind == "bytes":
        return Bytes(draw(st.integers(1, 30)), draw(st.none() | st.integers(1, 5)), **extra)
    if kind == "gap":
        return SessionGap(draw(st.sampled_from([0, 1, 2])), draw(st.none() | st.integers(1, 5)), **extra)
    return Time(math.inf, draw(st.integers(1, 5)), **extra)


@dataclass(frozen=True)
class Record:
    kind: str  # "item", "end" or "foreign"
    stream: str = ""
    sequence: int = 0
    nbytes: int = 0
    timestamp: float = 0.0


@st.composite
def partitions(draw: st.DrawFn, max_streams: int = 5, max_len: int = 25) -> list[Record]:
    """A partition log: streams interleaved at random, some items out of sequence order, some streams left
    open (no END_OF_STREAM), foreign records in between."""
    n_streams = draw(st.integers(1, max_streams))
    queues: list[list[Record]] = []
    for i in range(n_streams):
        n = draw(st.integers(0, max_len))
        ts, records = 0.0, []
        for q in range(n):
            ts += draw(st.sampled_from([0, 0.5, 1, 3]))
            records.append(Record("item", f"s{i}", q, draw(st.integers(0, 12)), ts))
        for j in draw(st.lists(st.integers(0, max(n - 2, 0)), max_size=3)) if n > 1 else []:
            records[j], records[j + 1] = records[j + 1], records[j]  # a producer retry reordered them
        if draw(st.integers(0, 4)) > 0:
            # END_OF_STREAM stays the stream's last record (see freight.buffer.commit_point: a finished stream
            # is forgotten once the commit passes it).
            records.append(Record("end", f"s{i}", n))
        queues.append(records)
    log: list[Record] = []
    while any(queues):
        k = draw(st.sampled_from([i for i, q in enumerate(queues) if q]))
        log.append(queues[k].pop(0))
        if draw(st.integers(0, 9)) == 0:
            log.append(Record("foreign"))
    return log


def chunk_key(c: StreamChunk) -> tuple[Any, ...]:
    return (c.data, c.start_offset, c.context_items, c.is_final, c.padding, c.dropped_items, c.offsets)


@dataclass
class Consumer:
    """A consumer process: reads the log from `start`, commits now and then, may crash."""

    policy: ChunkPolicy
    log: list[Record]
    start: int = 0
    metadata: str | None = None
    handed: list[StreamChunk] = field(default_factory=list)
    commits: list[tuple[int, str, int]] = field(default_factory=list)  # (offset, metadata, chunks handed)

    def run(self, rng: random.Random, crash_after_steps: int | None, commit_rate: float) -> bool:
        """True when the whole log was consumed, False when it crashed."""
        pb = PartitionBuffers("t", 0, self.policy, committed_metadata=self.metadata)
        steps = 0

        def maybe_commit(force: bool = False) -> None:
            if force or rng.random() < commit_rate:
                point = pb.commit_point()
                if point is not None:
                    self.check_watermark(pb, point.offset)
                    self.commits.append((point.offset, point.metadata, len(self.handed)))

        for offset in range(self.start, len(self.log)):
            rec = self.log[offset]
            if steps == crash_after_steps:
                return False
            steps += 1
            if rec.kind == "item":
                item = BufferItem(
                    (rec.stream, rec.sequence),
                    rec.sequence,
                    0,
                    offset,
                    rec.nbytes,
                    rec.timestamp,
                    store="fs",
                    key=f"{rec.stream}/{rec.sequence}",
                )
                pb.put(rec.stream, item)
            elif rec.kind == "end":
                pb.end(rec.stream, rec.sequence, offset)
            else:
                pb.skip(offset)
            for chunk in pb.drain():
                if steps == crash_after_steps:
                    return False  # the chunk was popped but the application never got it
                steps += 1
                self.handed.append(chunk)
                maybe_commit()  # the application finished with the chunk and asks for the next one
            maybe_commit()
        maybe_commit(force=True)
        return True

    def check_watermark(self, pb: PartitionBuffers, offset: int) -> None:
        """The commit never passes an item or END_OF_STREAM that an open window still needs."""
        for buf in pb.buffers.values():
            mark = buf.low_watermark()
            assert mark is None or offset <= mark


def uninterrupted(policy: ChunkPolicy, log: list[Record]) -> dict[tuple[str, int], tuple[Any, ...]]:
    consumer = Consumer(policy, log)
    assert consumer.run(random.Random(0), None, 0.0)
    chunks = {(c.stream, c.chunk_index): chunk_key(c) for c in consumer.handed}
    assert len(chunks) == len(consumer.handed), "an uninterrupted run delivers each chunk once"
    return chunks


def crashing(
    policy: ChunkPolicy, log: list[Record], seed: int, crashes: int, commit_rate: float
) -> tuple[list[list[StreamChunk]], list[Consumer]]:
    rng = random.Random(seed)
    start, metadata = 0, None
    runs: list[Consumer] = []
    while True:
        consumer = Consumer(policy, log, start, metadata)
        crash = rng.randrange(0, 2 * len(log) + 2) if len(runs) < crashes else None
        finished = consumer.run(rng, crash, commit_rate)
        runs.append(consumer)
        if finished:
            return [r.handed for r in runs], runs
        if consumer.commits:
            start, _, _ = consumer.commits[-1]
            metadata = consumer.commits[-1][1]


@SETTINGS
@given(
    policy=deterministic_policies(),
    log=partitions(),
    seed=st.integers(0, 2**32 - 1),
    crashes=st.integers(1, 4),
    commit_rate=st.sampled_from([0.1, 0.5, 1.0]),
)
def test_crash_and_resume_rebuilds_identical_chunks(
    policy: ChunkPolicy, log: list[Record], seed: int, crashes: int, commit_rate: float
) -> None:
    expected = uninterrupted(policy, log)
    deliveries, runs = crashing(policy, log, seed, crashes, commit_rate)
    event(f"runs={len(runs)}")
    event(f"redelivered={sum(map(len, deliveries)) > len(expected)}")
    dedup: dict[tuple[str, int], tuple[Any, ...]] = {}
    for handed in deliveries:
        for c in handed:
            key = (c.stream, c.chunk_index)
            assert dedup.setdefault(key, chunk_key(c)) == chunk_key(c), f"chunk {key} differs on redelivery"
    assert dedup == expected, "deduplicated by chunk index, the chunks equal an uninterrupted run's"
    # Redelivered only what was needed: no chunk handed out before the commit a restart resumes from is
    # handed out again (chunks handed out after it are, once: the application never confirmed them).
    seen: set[tuple[str, int]] = set()
    covered: set[tuple[str, int]] = set()
    for run in runs:
        keys = [(c.stream, c.chunk_index) for c in run.handed]
        assert not ({k for k in keys if k in seen} & covered)
        seen.update(keys)
        if run.commits:
            covered |= set(keys[: run.commits[-1][2]])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(log=partitions(max_streams=3), seed=st.integers(0, 2**32 - 1), linger=st.sampled_from([0.0, 1.0]))
def test_time_policy_resumes_without_loss(log: list[Record], seed: int, linger: float) -> None:
    """Lingering Time chunks may be cut differently after a restart, but nothing is lost and each stream
    still ends with exactly one final chunk, after all of its items."""
    clock_rng = random.Random(seed)
    now = [0.0]

    def clock() -> float:
        now[0] += clock_rng.choice([0.0, 0.5, 1.0])
        return now[0]

    policy = Time(linger, 3, clock=clock)
    deliveries, _ = crashing(policy, log, seed, 3, 0.5)
    delivered: dict[str, set[int]] = {}
    finals: dict[str, int] = {}
    last_run_finals = {c.stream for c in deliveries[-1] if c.is_final}
    for handed in deliveries:
        closed: set[str] = set()
        for c in handed:
            assert c.stream not in closed, "the final chunk is the stream's last"
            delivered.setdefault(c.stream, set()).update(range(c.new_start, c.end_offset))
            if c.is_final:
                closed.add(c.stream)
                finals[c.stream] = finals.get(c.stream, 0) + 1
    ends = {r.stream: r.sequence for r in log if r.kind == "end"}
    for stream, n in ends.items():
        assert delivered.get(stream, set()) == set(range(n))
        assert finals.get(stream, 0) >= 1
    assert last_run_finals <= set(ends)


def test_sliding_window_commit_offsets_by_hand() -> None:
    """Two interleaved streams, SlidingWindow(3, 1): commits stop at the oldest item a window needs."""
    pb = PartitionBuffers("t", 0, SlidingWindow(3, 1))
    layout = [("a", 0), ("b", 0), ("a", 1), ("a", 2), ("b", 1), ("a", 3)]  # offsets 0..5
    for offset, (stream, seq) in enumerate(layout):
        pb.put(stream, BufferItem(f"{stream}{seq}", seq, 0, offset, store="fs", key=f"{stream}{seq}"))
    assert pb.commit_offset() == 0  # nothing handed out yet: a0 at offset 0 is still needed
    chunks = list(pb.drain())
    assert [c.data for c in chunks] == [("a0", "a1", "a2"), ("a1", "a2", "a3")]
    # a's next window needs a2, a3 (offsets 3, 5); b needs b0 (offset 1).
    assert pb.commit_offset() == 1
    assert pb.held_refs() == {("fs", "a2"), ("fs", "a3"), ("fs", "b0"), ("fs", "b1")}
    point = pb.commit_point()
    assert point is not None and point.offset == 1
    state = decode_resume(point.metadata, SlidingWindow(3, 1))
    assert state.open == {"a": ResumeState(2, 4), "b": ResumeState(0, 0)} and state.finished == {}
    pb.end("b", 2, 6)
    assert [c.is_final for c in pb.drain()] == [
        True
    ] and pb.commit_offset() == 3  # b finished: a2 at 3 is the oldest
    pb.end("a", 4, 7)
    assert [c.data for c in pb.drain()] == [()]  # a2 a3 were context only: the final chunk is empty
    assert pb.commit_offset() == 8 and pb.held_refs() == set()


def test_restart_from_metadata_ignores_items_before_the_resume_point() -> None:
    policy = LeftContext(2, 1)
    buf = StreamBuffer("s", policy, resume=ResumeState(next_chunk_index=3, next_sequence=6))
    assert buf.keep_from == 5
    for q in range(10):
        buf.put(BufferItem(q, q, 0, q))
    assert buf.ignored_items == 5
    chunk = buf.pop_chunk()
    assert (chunk.chunk_index, chunk.start_offset, chunk.context_items, chunk.data) == (3, 5, 1, (5, 6, 7))


def test_finished_streams_are_remembered_until_committed_past() -> None:
    policy = Count(2)
    pb = PartitionBuffers("t", 0, policy)
    pb.put("old", BufferItem(0, 0, 0, 0))
    pb.put("open", BufferItem(0, 0, 0, 1))
    pb.end("old", 1, 2)
    assert [c.is_final for c in pb.drain()] == [True]
    point = pb.commit_point()
    assert point is not None and point.offset == 1  # "open" still needs its item at offset 1
    state = decode_resume(point.metadata, policy)
    assert state.finished == {"old": 2} and state.open == {"open": ResumeState(0, 0)}
    # A consumer restarted from this point sees "old"'s END_OF_STREAM again and ignores it.
    restarted = PartitionBuffers("t", 0, policy, committed_metadata=point.metadata)
    restarted.put("open", BufferItem(0, 0, 0, 1))
    restarted.end("old", 1, 2)
    assert list(restarted.drain()) == []
    restarted.put("open", BufferItem(1, 1, 0, 3))
    assert [c.data for c in restarted.drain()] == [(0, 1)]
    point = restarted.commit_point()
    assert point is not None and point.offset == 4
    assert decode_resume(point.metadata, policy).finished == {} and "old" not in restarted.buffers


def test_metadata_codec_roundtrip_compression_and_limits() -> None:
    policy = SlidingWindow(4, 2)
    states = {f"stream-{i:04d}-{'x' * 20}": ResumeState(i, 2 * i + 2) for i in range(150)}
    text = encode_resume(policy, states, {"done": 7})
    assert text.startswith("z1:") and len(text) <= 4096  # too long as JSON, fits compressed
    decoded = decode_resume(text, policy)
    assert decoded.open == states and decoded.finished == {"done": 7}
    assert decode_resume(encode_resume(policy, {"a": ResumeState(1, 4)}, {}), policy).open == {
        "a": ResumeState(1, 4)
    }
    assert decode_resume("", policy).open == {} and decode_resume(None, policy).open == {}
    with pytest.raises(ResumeStateError, match=r"offset\.metadata\.max\.bytes"):
        encode_resume(policy, states, {}, limit=100)
    with pytest.raises(ResumeStateError, match="another chunk policy"):
        decode_resume(text, SlidingWindow(4, 1))
    with pytest.raises(ResumeStateError, match="not Freight stream-buffer state"):
        decode_resume("committed by someone else", policy)
    # Pad values and clocks do not change boundaries: they do not change the fingerprint.
    pad0, pad1 = Count(3, partial="pad", pad_value=0), Count(3, partial="pad", pad_factory=lambda last: last)
    assert pad0.fingerprint() == pad1.fingerprint() != Count(4, partial="pad", pad_value=0).fingerprint()
    assert Count(3).fingerprint() != pad0.fingerprint()  # emit vs pad changes the final chunk
    assert Time(1.0, 3).fingerprint() == Time(2.0, 3, clock=lambda: 0.0).fingerprint()


def test_resume_state_that_does_not_fit_the_policy_is_rejected() -> None:
    with pytest.raises(ResumeStateError, match="another policy"):
        StreamBuffer("s", SlidingWindow(4, 1), resume=ResumeState(next_chunk_index=2, next_sequence=1))
    with pytest.raises(ResumeStateError, match="next_sequence"):
        StreamBuffer("s", Count(2), resume=ResumeState(0, -1))


def test_end_of_stream_is_held_until_the_final_chunk() -> None:
    """END_OF_STREAM overtook the last item: a commit made before the final chunk must not pass it."""
    policy = Count(1)
    pb = PartitionBuffers("t", 0, policy)
    pb.put("s", BufferItem("a", 0, 0, 0))
    pb.end("s", 2, 1)  # the stream has 2 items, but item 1 comes later (offset 2)
    assert [c.data for c in pb.drain()] == [("a",)]
    point = pb.commit_point()
    assert point is not None and point.offset == 1, "the END_OF_STREAM record at offset 1 is still needed"
    # Crash; the restarted consumer re-reads from offset 1 and still finishes the stream.
    restarted = PartitionBuffers("t", 0, policy, committed_metadata=point.metadata)
    restarted.end("s", 2, 1)
    restarted.put("s", BufferItem("b", 1, 0, 2))
    # The end is known when "b" is popped: its chunk is the final one (no empty final chunk follows).
    assert [(c.chunk_index, c.data, c.is_final) for c in restarted.drain()] == [(1, ("b",), True)]
