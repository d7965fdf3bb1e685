"""`PartitionBuffers`: every stream buffer of one Kafka partition, behind one small feeding API.

This is the Kafka-free core of `consumer.chunks()`. The consumer driver owns one `PartitionBuffers` per
assigned (topic, partition), built from the partition's committed metadata, and for each record it consumed,
in offset order, calls exactly one of `put(stream, item)`, `end(stream, end_sequence, offset)` or
`skip(offset)`. It then pops chunks with `pop_ready()` one at a time, hands each out, and commits
`commit_point()` only after the chunk handed out last has been processed (the next one is asked for): a
commit never covers a chunk the application has not finished with. To commit while the last chunk is still
in the application's hands (closing early), `commit_point(unpop_last=True)` computes the point as if that
chunk had not been popped.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from freight.buffer.buffer import ResumeState, StreamBuffer
from freight.buffer.chunk import BufferItem, StreamChunk
from freight.buffer.commit_point import (
    DEFAULT_METADATA_LIMIT,
    CommitPoint,
    PartitionWatermark,
    Unpopped,
    decode_resume,
    restore_buffers,
)
from freight.buffer.policies import ChunkPolicy


class PartitionBuffers:
    """One buffer per stream on one (topic, partition), all with `policy`, plus the partition's watermark.

    `committed_metadata` is the metadata string of the partition's committed offset (None or "" for a
    fresh group): the buffers of the streams that were open at that commit are rebuilt from it.
    `metadata_limit` bounds the metadata `commit_point()` writes (the broker's `offset.metadata.max.bytes`).
    """

    def __init__(
        self,
        topic: str,
        partition: int,
        policy: ChunkPolicy,
        *,
        committed_metadata: str | None = None,
        metadata_limit: int = DEFAULT_METADATA_LIMIT,
    ) -> None:
        self.topic = topic
        self.partition = partition
        self.policy = policy
        self.metadata_limit = metadata_limit
        self.watermark = PartitionWatermark(topic, partition)
        self._buffers = self.watermark.buffers  # the watermark's own dict (read here on the hot path)
        for buf, last in restore_buffers(decode_resume(committed_metadata, policy), policy):
            self.watermark.track(buf, last)
        self._candidates: dict[str, None] = {}  # streams that may have a chunk ready, in first-touched order
        self._timed = policy.clock is not None
        # The last popped stream as it was before that pop: stream, chunk index, sequence, low watermark.
        self._unpopped: tuple[str, int, int, int | None] | None = None

    @property
    def buffers(self) -> Mapping[str, StreamBuffer]:
        """The live buffers by stream (finished streams disappear once committed past)."""
        return self.watermark.buffers

    def buffer(self, stream: str) -> StreamBuffer:
        """The stream's buffer, created on first use."""
        buf = self._buffers.get(stream)
        if buf is None:
            buf = StreamBuffer(stream, self.policy)
            self.watermark.track(buf)
        return buf

    def put(self, stream: str, item: BufferItem) -> bool:
        """A stream item consumed from this partition; False when its buffer ignored it (a duplicate)."""
        self._unpopped = None
        if item.offset is not None:
            self.watermark.observe(item.offset, stream)
        buf = self._buffers.get(stream)
        accepted = (buf if buf is not None else self.buffer(stream)).put(item)
        if accepted:
            self._candidates[stream] = None
        return accepted

    def end(self, stream: str, end_sequence: int, offset: int | None = None) -> None:
        """The stream's END_OF_STREAM record: `end_sequence` items in all."""
        self._unpopped = None
        if offset is not None:
            self.watermark.observe(offset, stream)
        self.buffer(stream).signal_done(end_sequence, offset)
        self._candidates[stream] = None

    def skip(self, offset: int) -> None:
        """A record that feeds no buffer (another kind of event, or one the driver filters out)."""
        self._unpopped = None
        self.watermark.observe(offset)

    def pop_ready(self, now: float | None = None) -> StreamChunk | None:
        """Pop one ready chunk of any stream (streams in the order they were first touched), or None."""
        candidates = self._candidates
        if not candidates:
            return None
        buffers = self._buffers
        for stream in list(candidates):
            buf = buffers.get(stream)
            if buf is None:
                del self._candidates[stream]
                continue
            if buf.has_chunk_ready(now):
                # Cheap to note on every pop; made into an `Unpopped` only when asked for.
                self._unpopped = (stream, buf.next_chunk_index, buf.next_sequence, buf.low_watermark())
                return buf.pop_chunk(now)
            if not (self._timed and buf.pending_items):
                del self._candidates[stream]
        return None

    def drain(self, now: float | None = None) -> Iterator[StreamChunk]:
        """Pop ready chunks lazily, one per iteration (commit between them as `pop_ready` says)."""
        while (chunk := self.pop_ready(now)) is not None:
            yield chunk

    def next_deadline(self) -> float | None:
        """The earliest clock time at which a lingering (`Time`) chunk becomes ready, or None."""
        deadlines = [d for b in self.watermark.buffers.values() if (d := b.next_deadline()) is not None]
        return min(deadlines) if deadlines else None

    def low_watermark(self) -> int | None:
        return self.watermark.low_watermark()

    def commit_offset(self) -> int | None:
        return self.watermark.commit_offset()

    def held_refs(self) -> set[tuple[str, str]]:
        return self.watermark.held_refs()

    def commit_point(self, *, unpop_last: bool = False) -> CommitPoint | None:
        """Offset and metadata to commit now; None before the first record.

        `unpop_last=True`: as if the chunk popped last (with nothing fed since) were still in its buffer, for
        a commit while that chunk is still being processed; it is then redelivered after a restart.
        """
        last = self._unpopped if unpop_last else None
        unpopped = None if last is None else Unpopped(last[0], ResumeState(last[1], last[2]), last[3])
        return self.watermark.commit_point(self.policy, limit=self.metadata_limit, unpopped=unpopped)
