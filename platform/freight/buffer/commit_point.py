"""Per-partition commit low watermark over many stream buffers, and the resume state stored with it.

Many streams share a Kafka partition (the key is the stream id). A consumer may commit offset C on that
partition only if, after a crash, re-reading from C gives every buffer the items its next chunks need. So:

    commit offset = min(smallest offset any buffer still retains, highest offset observed + 1)

where a buffer retains the items of its open window (not yet delivered as new, or repeated as context by the
next chunk) and its END_OF_STREAM record until the final chunk is out. Items that have not arrived yet are
at offsets above everything observed, so they are re-read too.

The offset alone is not enough: a restarted consumer must also know, per stream, where chunking stood
(`ResumeState`), or it would re-cut chunks from wherever replay happens to start. That state travels in the
commit's metadata string (confluent-kafka: `TopicPartition(topic, partition, offset, metadata=...)`), so
offset and state are committed atomically. It holds:

- every open stream: `[next_chunk_index, next_sequence]` (needed even when the stream holds nothing,
  because its next item may arrive after the commit point);
- every finished stream whose records reach the commit point or beyond, with its last offset: replay
  would show them again, and they must be ignored. Finished streams entirely below the commit point are
  forgotten (`prune`): their records are never read again. This relies on a stream's END_OF_STREAM being
  its last record in the partition, as Freight's idempotent producer writes it (items may arrive out of
  sequence order before it): an item written after its stream's END_OF_STREAM could, after a restart,
  come once the stream was forgotten and would then start it anew.

Encoding: compact JSON `{"v":1,"p":<policy fingerprint>,"o":{stream:[i,s]},"f":{stream:last_offset}}`;
when longer than the limit (Kafka's broker default `offset.metadata.max.bytes` is 4096) it is
zlib-compressed and base64-encoded with the prefix `z1:`. If even that does not fit, `ResumeStateError`
says so (raise `offset.metadata.max.bytes`, or use fewer concurrently open streams per partition).
"""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from freight.buffer.buffer import ResumeState, StreamBuffer
from freight.buffer.policies import ChunkPolicy
from freight.errors import ResumeStateError

#: Kafka's default `offset.metadata.max.bytes`: the largest commit metadata a broker accepts.
DEFAULT_METADATA_LIMIT = 4096
_FORMAT_VERSION = 1
_ZPREFIX = "z1:"


@dataclass(frozen=True, slots=True)
class CommitPoint:
    """What to commit on one partition: the offset and the resume-state metadata that goes with it."""

    topic: str
    partition: int
    offset: int
    metadata: str


@dataclass(frozen=True, slots=True)
class Unpopped:
    """A stream's buffer as it was just before its last chunk was popped (that chunk is still in the
    application's hands): its resume state and low watermark then. Used to commit on close without
    covering the chunk in hand."""

    stream: str
    state: ResumeState
    low: int | None


@dataclass(frozen=True, slots=True)
class PartitionResume:
    """Decoded commit metadata: open streams' states and finished streams' last offsets."""

    open: dict[str, ResumeState]
    finished: dict[str, int]


def encode_resume(
    policy: ChunkPolicy,
    open_states: Mapping[str, ResumeState],
    finished: Mapping[str, int],
    *,
    limit: int = DEFAULT_METADATA_LIMIT,
) -> str:
    """Commit metadata for these states (see the module docstring); raises `ResumeStateError` past `limit`."""
    doc: dict[str, Any] = {
        "v": _FORMAT_VERSION,
        "p": policy.fingerprint(),
        "o": {s: [st.next_chunk_index, st.next_sequence] for s, st in open_states.items()},
        "f": dict(finished),
    }
    text = json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
    if len(text.encode()) <= limit:
        return text
    packed = _ZPREFIX + base64.b64encode(zlib.compress(text.encode(), 9)).decode("ascii")
    if len(packed) <= limit:
        return packed
    raise ResumeStateError(
        f"the resume state of {len(open_states)} open and {len(finished)} finished stream(s) needs "
        f"{len(packed)} bytes of commit metadata (compressed), over the limit of {limit}; raise the broker's "
        "offset.metadata.max.bytes (and the limit here), or keep fewer streams open per partition"
    )


def decode_resume(metadata: str | None, policy: ChunkPolicy) -> PartitionResume:
    """Parse commit metadata written by `encode_resume`; empty or None means no state (a fresh group)."""
    if not metadata:
        return PartitionResume({}, {})
    try:
        text = metadata
        if text.startswith(_ZPREFIX):
            text = zlib.decompress(base64.b64decode(text[len(_ZPREFIX) :], validate=True)).decode()
        doc = json.loads(text)
        version, fingerprint = doc["v"], doc["p"]
        open_raw, finished_raw = doc["o"], doc["f"]
    except (ValueError, KeyError, TypeError, zlib.error) as exc:
        raise ResumeStateError(
            f"commit metadata is not Freight stream-buffer state ({exc}): {metadata[:80]!r}; was this "
            "consumer group committed by something else? Use a new group id, or reset its offsets"
        ) from None
    if version != _FORMAT_VERSION:
        raise ResumeStateError(f"stream-buffer state has format version {version!r}; this Freight reads 1")
    if fingerprint != policy.fingerprint():
        raise ResumeStateError(
            f"the committed stream-buffer state was written with another chunk policy (fingerprint "
            f"{fingerprint}), not {policy!r} ({policy.fingerprint()}): restarting with a different policy "
            "cannot rebuild the same chunks. Use the same policy, or a new consumer group"
        )
    try:
        open_states = {str(s): ResumeState(int(v[0]), int(v[1])) for s, v in open_raw.items()}
        finished = {str(s): int(o) for s, o in finished_raw.items()}
    except (ValueError, TypeError, IndexError, AttributeError) as exc:
        raise ResumeStateError(f"malformed stream-buffer state in commit metadata: {exc}") from None
    return PartitionResume(open_states, finished)


class PartitionWatermark:
    """Tracks the buffers of one (topic, partition) and the offsets handed to them; computes what to commit.

    The driver calls `observe(offset, stream)` for every record it consumed from the partition, in order
    (stream items, END_OF_STREAM records, and records that belong to no buffer with `stream=None`), and
    `track(buffer)` for each stream buffer fed from it.
    """

    def __init__(self, topic: str, partition: int) -> None:
        self.topic = topic
        self.partition = partition
        self._buffers: dict[str, StreamBuffer] = {}
        self._last_offset: dict[str, int] = {}
        self._observed: int | None = None

    @property
    def buffers(self) -> Mapping[str, StreamBuffer]:
        return self._buffers

    @property
    def observed(self) -> int | None:
        """The highest offset observed on the partition, or None."""
        return self._observed

    def track(self, buffer: StreamBuffer, last_offset: int | None = None) -> None:
        """Take `buffer` into account; `last_offset` is a known offset of its stream (from resume state)."""
        self._buffers[buffer.stream] = buffer
        if last_offset is not None:
            self._note(buffer.stream, last_offset)

    def _note(self, stream: str, offset: int) -> None:
        if offset > self._last_offset.get(stream, -1):
            self._last_offset[stream] = offset

    def observe(self, offset: int, stream: str | None = None) -> None:
        """One record at `offset` was consumed (and handed to `stream`'s buffer, if any)."""
        if self._observed is None or offset > self._observed:
            self._observed = offset
        if stream is not None:
            self._note(stream, offset)

    def low_watermark(self, unpopped: Unpopped | None = None) -> int | None:
        """The smallest offset any open window still needs, or None when the buffers hold nothing.

        With `unpopped`, that stream's buffer counts as it was before its last pop.
        """
        if unpopped is None:
            marks = [m for b in self._buffers.values() if (m := b.low_watermark()) is not None]
        else:
            skip = unpopped.stream
            marks = [
                m for s, b in self._buffers.items() if s != skip and (m := b.low_watermark()) is not None
            ]
            if unpopped.low is not None:
                marks.append(unpopped.low)
        return min(marks) if marks else None

    def commit_offset(self, unpopped: Unpopped | None = None) -> int | None:
        """The offset to commit: the low watermark, else last observed offset + 1; None before any record."""
        low = self.low_watermark(unpopped)
        nxt = None if self._observed is None else self._observed + 1
        if low is None:
            return nxt
        return low if nxt is None else min(low, nxt)

    def held_refs(self) -> set[tuple[str, str]]:
        """(store, key) of every stored object an open window on this partition still holds."""
        refs: set[tuple[str, str]] = set()
        for b in self._buffers.values():
            refs |= b.held_refs()
        return refs

    def resume_states(self, commit_offset: int, unpopped: Unpopped | None = None) -> PartitionResume:
        """State to commit with `commit_offset`: open streams, and finished ones that replay shows again."""
        open_states: dict[str, ResumeState] = {}
        finished: dict[str, int] = {}
        for stream, b in self._buffers.items():
            if unpopped is not None and stream == unpopped.stream:
                open_states[stream] = unpopped.state
                continue
            if not b.finished:
                open_states[stream] = b.resume_state()
                continue
            last = self._last_offset.get(stream)
            if last is not None and last >= commit_offset:
                finished[stream] = last
        return PartitionResume(open_states, finished)

    def prune(self, commit_offset: int, keep: str | None = None) -> list[str]:
        """Forget finished streams whose records all lie below `commit_offset` (but `keep`); their names."""
        gone = [
            s
            for s, b in self._buffers.items()
            if b.finished and self._last_offset.get(s, -1) < commit_offset and s != keep
        ]
        for s in gone:
            del self._buffers[s]
            self._last_offset.pop(s, None)
        return gone

    def commit_point(
        self, policy: ChunkPolicy, *, limit: int = DEFAULT_METADATA_LIMIT, unpopped: Unpopped | None = None
    ) -> CommitPoint | None:
        """Offset + metadata to commit now (None before any record); forgets streams that no longer matter.

        With `unpopped`, as if that stream's last chunk had not been popped yet (see `Unpopped`).
        """
        offset = self.commit_offset(unpopped)
        if offset is None:
            return None
        state = self.resume_states(offset, unpopped)
        metadata = encode_resume(policy, state.open, state.finished, limit=limit)
        self.prune(offset, keep=None if unpopped is None else unpopped.stream)
        return CommitPoint(self.topic, self.partition, offset, metadata)


def restore_buffers(
    resume: PartitionResume, policy: ChunkPolicy, streams: Iterable[str] | None = None
) -> list[tuple[StreamBuffer, int | None]]:
    """Buffers rebuilt from decoded metadata, each with the last offset to `track` it with (finished ones)."""
    wanted = None if streams is None else set(streams)
    out: list[tuple[StreamBuffer, int | None]] = []
    for stream, st in resume.open.items():
        if wanted is None or stream in wanted:
            out.append((StreamBuffer(stream, policy, resume=st), None))
    for stream, last in resume.finished.items():
        if wanted is None or stream in wanted:
            out.append((StreamBuffer(stream, policy, resume=ResumeState(finished=True)), last))
    return out
