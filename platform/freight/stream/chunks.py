"""`consumer.chunks(policy)`: one stream buffer per stream, fed by a Kafka `StreamConsumer`, exact restarts.

    with StreamConsumer(topic, group, auto_commit=False) as consumer:
        for chunk in consumer.chunks(SlidingWindow(64, 16), resolve=True, stack=True):
            model(chunk.array)

How it works. The driver owns one `PartitionBuffers` per assigned (topic, partition). Every record the
consumer hands out, in offset order, goes to exactly one buffer call: an object to `put` (its lazy proxy is
the value), an END_OF_STREAM to `end`, a record of a stream left out by `streams=` to `skip`. Chunks are
popped one at a time, only when the application asks for the next one, and come out in the order they
became ready (across streams and partitions).

Commits (at-least-once, and exact chunks after a restart). Kafka commits one offset per partition, and many
streams share a partition, so the driver commits, per partition, the `PartitionBuffers` commit point: the
smallest offset any open window still needs (items not delivered yet, the context the next chunk repeats,
an END_OF_STREAM whose final chunk is not out), with the open streams' resume state in the commit metadata.
A restarted consumer of the same group starts at that offset, rebuilds the buffers from the metadata and
yields the same chunks with the same indices; the records it re-reads only refill open windows (items
already delivered are ignored as duplicates). A commit covers a chunk only once the application has asked
for the next one (or called `commit()`): the chunk in hand when the process dies is delivered again, and
so are, with `commit_interval > 0`, the chunks processed since the last commit. That is why the driver
needs a consumer with manual commits (`auto_commit=False`): an auto-committing consumer commits every
record it hands out, past windows that are still open, and a crash would lose them. (A consumer without a
group, `group_id=None`, commits nothing; chunks then simply start from the beginning every time.)

Rebalances. When an assigned partition's first record arrives, the driver reads the partition's committed
offset and metadata (a fresh group has none) and builds its buffers from them. The consumer normally starts
at that committed offset (at the log start when there is none: Freight's auto.offset.reset is "earliest");
if the first record is elsewhere (an explicit `seek()`, or a partition assigned back to the same consumer,
which librdkafka may resume where it had prefetched) the driver seeks back there once. On revocation it
commits the partition's commit point and drops its buffers (ready chunks not yet handed out included: the
next owner rebuilds them from the commit). A partition lost without a clean revocation cannot be committed;
its new owner rebuilds from the last commit. `chunks()` installs its own `rebalance_listener` on the
consumer (calling the one already there too) and puts the old one back when it is closed or exhausted.
Rebalances are served while the consumer fetches, i.e. once its prefetched batch (`batch_size` records) is
used up: with slow chunk processing, a small `batch_size` lets other members join sooner.

Stop conditions. When the consumer's own stop condition is reached (`until_end_of`, `until_high_watermark`,
`idle_timeout`), the driver yields what is ready, including the final chunks of the streams whose
END_OF_STREAM arrived, commits and stops. Open streams stay open: their partial chunk is not forced out and
their items stay uncommitted, so the next run (same group) continues them exactly.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from freight.buffer.chunk import BufferItem, StreamChunk
from freight.buffer.commit_point import DEFAULT_METADATA_LIMIT
from freight.buffer.partition import PartitionBuffers
from freight.buffer.policies import ChunkPolicy
from freight.buffer.stacking import stack as stack_values
from freight.errors import ConfigError
from freight.stream.session import CommitSession

if TYPE_CHECKING:
    from freight.kafka import KafkaAdmin
    from freight.stream.consumer import ConsumerStats, RebalanceListener, StreamRecord

log = logging.getLogger("freight.stream.chunks")

TP = tuple[str, int]
#: How long one wait for records may last with a `Time` policy before deadlines are looked at again.
_MAX_WAIT = 1.0


class RecordSource(Protocol):
    """What the driver needs of a consumer (`StreamConsumer` has all of it)."""

    group_id: str | None
    auto_commit: bool
    idle_timeout: float | None
    rebalance_listener: RebalanceListener | None
    stats: ConsumerStats

    def next_record(
        self, timeout: float | None = None, *, include_end: bool = True
    ) -> StreamRecord | None: ...

    def commit(self, offsets: Mapping[TP, int | tuple[int, str]] | None = None) -> dict[TP, int]: ...

    def committed(self, partitions: Iterable[TP] | None = None) -> dict[TP, tuple[int, str | None]]: ...

    @property
    def admin(self) -> KafkaAdmin: ...

    def seek(
        self, *, offset: int | None = None, topic: str | None = None, partition: int | None = None
    ) -> Any: ...


@dataclass
class DriverStats:
    """Counters of one `chunks()` iterator."""

    records: int = 0  # records fed to buffers (objects, END_OF_STREAMs, skipped streams)
    items: int = 0  # objects accepted by a buffer
    duplicates: int = 0  # objects a buffer ignored: redelivered after a restart, or of a finished stream
    ends: int = 0
    skipped: int = 0  # records of streams left out by `streams=`
    chunks: int = 0
    commits: int = 0  # commit requests sent (each covers every partition that moved)
    partitions_opened: int = 0  # buffers built from a committed state (assignments)
    partitions_closed: int = 0  # buffers dropped on revocation
    repositions: int = 0  # partitions whose first record was not at the committed offset (moved back there)


class ChunkIterator:
    """`StreamChunk`s cut by `policy` from the streams a consumer reads (see the module docstring).

    Build it with `consumer.chunks(policy, ...)`. Iterating asks the consumer for records until a chunk is
    ready; asking for the next chunk marks the previous one processed. `commit()` commits now, the chunk in
    hand included; `close()` (or leaving a `with` block) commits what was processed, not the chunk in hand,
    and gives the consumer its rebalance listener back. The consumer itself stays open.
    """

    _done: bool  # closed or exhausted

    def __init__(
        self,
        consumer: RecordSource,
        policy: ChunkPolicy,
        *,
        resolve: bool = False,
        stack: bool = False,
        streams: Collection[str] | None = None,
        commit_interval: float = 1.0,
        metadata_limit: int = DEFAULT_METADATA_LIMIT,
    ) -> None:
        if not isinstance(policy, ChunkPolicy):
            raise TypeError(
                "consumer.chunks(): policy must be a ChunkPolicy (Count, Bytes, Time, SlidingWindow, "
                f"LeftContext, SessionGap, Ramp), got {type(policy).__name__}"
            )
        for name in ("next_record", "commit", "committed", "seek"):
            if not callable(getattr(consumer, name, None)):
                raise TypeError(f"chunks(): {type(consumer).__name__} is not a StreamConsumer (no {name}())")
        number = isinstance(commit_interval, int | float) and not isinstance(commit_interval, bool)
        if not number or not commit_interval >= 0:
            raise ConfigError(f"chunks(): commit_interval must be seconds >= 0, got {commit_interval!r}")
        if isinstance(metadata_limit, bool) or not isinstance(metadata_limit, int) or metadata_limit < 64:
            raise ConfigError(f"chunks(): metadata_limit must be an integer >= 64, got {metadata_limit!r}")
        if isinstance(streams, str):
            raise ConfigError("chunks(): streams must be a collection of stream names, not one string")
        if consumer.group_id is not None and consumer.auto_commit:
            raise ConfigError(
                "consumer.chunks() needs a consumer with manual commits: StreamConsumer(..., "
                "auto_commit=False). An auto-committing consumer commits every record it hands out, past "
                "windows that are still open, so a crash would lose their items; chunks() commits the "
                "offset of the oldest item an open window still needs instead"
            )
        if consumer.stats.events:
            raise ConfigError(
                "consumer.chunks() must start before the consumer hands out any record (this one handed out "
                f"{consumer.stats.events}): the buffers are rebuilt from the committed offset, where a fresh "
                "consumer starts. Open a new StreamConsumer with the same group to chunk from there"
            )
        self.consumer = consumer
        self.policy = policy
        self.resolve = resolve or stack
        self.stack = stack
        self.streams = None if streams is None else frozenset(streams)
        self.commit_interval = float(commit_interval)
        self.metadata_limit = metadata_limit
        self.stats = DriverStats()
        self._commits = consumer.group_id is not None
        self._parts: dict[TP, PartitionBuffers] = {}
        self._committed: dict[TP, tuple[int, str]] = {}  # what this iterator committed last, per partition
        self._dirty: set[TP] = set()  # partitions whose commit point may have moved since the last commit
        self._ready: dict[TP, None] = {}  # partitions that may have a chunk ready, oldest first
        self._start: dict[TP, int | None] = {}  # (re)opened partitions: where their first record must be
        # Partitions revoked before their first record arrived: the client may resume them anywhere.
        self._unsure: set[TP] = set()
        self._in_hand: TP | None = None  # partition of the chunk handed out last, until the next is asked for
        self._last_commit = time.monotonic()
        self._timed = policy.clock is not None
        self._deadline: float | None = None  # with `Time`: no lingering chunk is due before this clock time
        self._last_record = time.monotonic()
        self._retry: StreamRecord | None = None
        self._stopped = False
        self._done = False
        self._session = CommitSession(consumer, self, "a chunks() iterator")

    # Public API ---------------------------------------------------------------------------------------
    def __iter__(self) -> ChunkIterator:
        return self

    def __next__(self) -> StreamChunk:
        if self._done:
            raise StopIteration
        self._in_hand = None  # asking for the next chunk: the previous one is processed
        if self._dirty and (
            self.commit_interval == 0 or time.monotonic() - self._last_commit >= self.commit_interval
        ):
            self._commit()
        while True:
            chunk = self._pop()
            if chunk is not None:
                return self._deliver(chunk)
            if self._stopped:
                self._finish()
                raise StopIteration
            self._read()

    def commit(self) -> dict[TP, int]:
        """Commit now: every chunk handed out so far, the one in hand included. Returns the offsets sent."""
        self._in_hand = None
        return self._commit()

    def close(self) -> None:
        """Commit the chunks processed (not the one in hand) and restore the consumer's rebalance listener."""
        if not self._done:
            self._finish()

    def __enter__(self) -> ChunkIterator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def partitions(self) -> Mapping[TP, PartitionBuffers]:
        """The buffers of every partition this iterator reads now."""
        return self._parts

    def committed(self) -> dict[TP, tuple[int, str]]:
        """(offset, metadata) this iterator committed last, per partition it still holds."""
        return {tp: c for tp, c in self._committed.items() if tp in self._parts}

    def held_refs(self) -> set[tuple[str, str]]:
        """(store, key) of every stored object an open window still holds: eviction must spare them."""
        refs: set[tuple[str, str]] = set()
        for pb in self._parts.values():
            refs |= pb.held_refs()
        return refs

    # Partitions ---------------------------------------------------------------------------------------
    def _open(self, tps: list[TP]) -> None:
        """Build the buffers of `tps` from the group's committed offsets and metadata (on the first record
        of each after an assignment), and note where each must be read from."""
        committed = self.consumer.committed(tps) if self._commits else {}
        for tp in tps:
            offset, metadata = committed.get(tp, (None, None))
            if offset and not metadata:
                log.warning(
                    "%s[%d]: the group committed offset %d without stream-buffer state; streams already "
                    "under way there cannot be rebuilt (their earlier items are not re-read). Use a new "
                    "group for chunks(), or reset this one's offsets",
                    tp[0],
                    tp[1],
                    offset,
                )
            self._parts[tp] = PartitionBuffers(
                tp[0], tp[1], self.policy, committed_metadata=metadata, metadata_limit=self.metadata_limit
            )
            if offset is not None and metadata:
                self._committed[tp] = (offset, metadata)
            if offset is None and tp in self._unsure:
                # Never committed, and revoked before its first record arrived: the group reads it from
                # the beginning (Freight's auto.offset.reset is "earliest"), wherever the client resumed.
                offset = self.consumer.admin.watermarks(tp[0])[tp[1]][0]
            self._unsure.discard(tp)
            self._start[tp] = offset
            self.stats.partitions_opened += 1

    def partitions_assigned(self, partitions: list[TP]) -> None:
        """Nothing to do yet: a partition's buffers are built when its first record arrives (reading the
        committed offsets here, inside the rebalance callback, made librdkafka resume partitions assigned
        back to this consumer at their old fetch position more often)."""

    def partitions_revoked(self, partitions: list[TP]) -> None:
        parts = self._parts
        self._unsure |= {tp for tp in partitions if tp not in parts or parts[tp].watermark.observed is None}
        gone = [tp for tp in partitions if tp in self._parts]
        if not gone:
            return
        try:
            self._commit(only=set(gone))
        except Exception as exc:  # e.g. partitions lost to a session timeout: the next owner re-reads
            log.warning("could not commit %s on revocation: %s", gone, exc)
        for tp in gone:
            del self._parts[tp]
            self._committed.pop(tp, None)
            self._dirty.discard(tp)
            self._ready.pop(tp, None)
            self._start.pop(tp, None)
            if self._in_hand == tp:
                self._in_hand = None
            self.stats.partitions_closed += 1

    # Reading ------------------------------------------------------------------------------------------
    def _read(self) -> None:
        """Feed the next record to its partition's buffers; notice timeouts and the stop condition."""
        consumer = self.consumer
        retry, self._retry = self._retry, None
        if retry is not None:  # a record whose partition state could not be read last time
            self._feed(retry)
            return
        clock = self.policy.clock
        if clock is None:
            # The consumer's own wait: None comes back only at its stop condition or after idle_timeout.
            record = consumer.next_record(None, include_end=True)
            if record is None:
                self._stopped = True
                return
            self._feed(record)
            # Feed what is already fetched before popping (a zero timeout never fetches): an END_OF_STREAM
            # right behind a stream's last items is then known when their chunk is popped, which makes
            # that chunk the final one instead of following it with an empty final chunk.
            while self._retry is None and (record := consumer.next_record(0, include_end=True)) is not None:
                self._feed(record)
            return
        # `Time`: wait no longer than until the next lingering chunk is due, and keep track of idleness.
        now = time.monotonic()
        wait = _MAX_WAIT
        if self._deadline is not None:
            wait = min(wait, max(self._deadline - clock(), 0.0))
        idle = consumer.idle_timeout
        if idle is not None:
            left = self._last_record + idle - now
            if left <= 0:
                self._stopped = True
                return
            wait = min(wait, left)
        until = now + wait
        record = consumer.next_record(wait, include_end=True)
        if record is None:
            if wait > 0 and time.monotonic() < until:  # it returned early: its stop condition
                self._stopped = True
        else:
            self._last_record = time.monotonic()
            self._feed(record)
        if self._deadline is not None and clock() >= self._deadline:
            self._wake_due()

    def _feed(self, record: StreamRecord) -> None:
        event = record.event
        # Records of newer consumers carry their coordinates (their `metadata` is built on first use).
        offset: int | None = getattr(record, "offset", None)
        if offset is None:
            meta = record.metadata
            topic, partition, offset = meta.topic, meta.partition, meta.offset
        else:
            topic, partition = getattr(record, "topic"), getattr(record, "partition")  # noqa: B009
        tp = (topic, partition)
        pb = self._parts.get(tp)
        if pb is None:  # the partition's first record since it was assigned
            try:
                self._open([tp])
            except BaseException:
                self._retry = record  # fed on the next call: the record is never lost
                raise
            pb = self._parts[tp]
        if self._start and tp in self._start and self._reposition(tp, offset):
            return
        self.stats.records += 1
        self._dirty.add(tp)
        stream = event.stream
        if self.streams is not None and stream not in self.streams:
            pb.skip(offset)
            self.stats.skipped += 1
            return
        if record.proxy is None:  # END_OF_STREAM: its sequence is the stream's item count
            pb.end(stream, event.sequence, offset)
            self.stats.ends += 1
        else:
            obj = event.object
            if obj is not None:
                item = BufferItem(
                    record.proxy,
                    event.sequence,
                    partition,
                    offset,
                    obj.size,
                    event.created_at / 1000,
                    obj.store,
                    obj.key,
                )
            else:
                inline = event.inline
                size = len(inline.data) if inline is not None else 0
                created = event.created_at / 1000
                item = BufferItem(record.proxy, event.sequence, partition, offset, size, created)
            if pb.put(stream, item):
                self.stats.items += 1
            else:
                self.stats.duplicates += 1
        self._ready[tp] = None
        if self._timed and self._deadline is None:
            self._deadline = -math.inf  # a lingering chunk may have started: look at the deadlines

    def _reposition(self, tp: TP, offset: int) -> bool:
        """The first record of a (re)opened partition: True when it was not where the partition must be
        read from (its committed offset; its log start when never committed), and the consumer was moved
        there (this record, and what was prefetched after it, are read again).

        The buffers were just rebuilt for that offset, so they must be fed from there. But a partition
        revoked and assigned back to the same consumer may resume where librdkafka had prefetched, past
        records the consumer dropped at the revocation (seen with confluent-kafka 2.x), and an explicit
        `consumer.seek()` may point elsewhere too. Done once per assignment: a log whose records start
        later (retention, compaction) is taken as it is.
        """
        start = self._start.pop(tp)
        if start is None or offset == start:
            return False
        log.info("%s[%d]: read from %d, moving to the committed offset %d", tp[0], tp[1], offset, start)
        self.consumer.seek(offset=start, topic=tp[0], partition=tp[1])
        self.stats.repositions += 1
        return True

    def _wake_due(self) -> None:
        """With `Time`: queue the partitions whose lingering chunk is due, and note the next deadline.

        `_deadline` is a lower bound of every pending deadline (popping or adding items only moves them
        later), so nothing is due before it; -inf means: look again after the pops.
        """
        clock = self.policy.clock
        if clock is None:
            return
        now = clock()
        nearest: float | None = None
        due = False
        for tp, pb in self._parts.items():
            d = pb.next_deadline()
            if d is None:
                continue
            if d <= now:
                self._ready[tp] = None
                due = True
            elif nearest is None or d < nearest:
                nearest = d
        self._deadline = -math.inf if due else nearest

    # Output -------------------------------------------------------------------------------------------
    def _pop(self) -> StreamChunk | None:
        ready = self._ready
        while ready:
            tp = next(iter(ready))
            pb = self._parts.get(tp)
            chunk = None if pb is None else pb.pop_ready()
            if chunk is not None:
                self._in_hand = tp
                self._dirty.add(tp)
                if len(ready) > 1:  # round robin: the partition goes to the back of the queue
                    del ready[tp]
                    ready[tp] = None
                return chunk
            del ready[tp]
        return None

    def _deliver(self, chunk: StreamChunk) -> StreamChunk:
        self.stats.chunks += 1
        if not self.resolve:
            return chunk
        from freight.stream.proxy import Proxy, extract

        # Resolved objects replace the proxies in the items the buffer keeps (the driver built them), so
        # context items repeated by the next chunks are not looked at again.
        values = []
        for item in chunk.items:
            value = item.value
            if type(value) is Proxy:
                value = item.value = extract(value)
            values.append(value)
        data = tuple(values) + chunk.data[len(values) :]  # pad values are not proxies
        array = stack_values(data) if self.stack and data else None
        return replace(chunk, data=data, array=array)

    # Commits ------------------------------------------------------------------------------------------
    def _commit(self, only: set[TP] | None = None) -> dict[TP, int]:
        """Commit the commit point of every partition that moved (of `only`, when given)."""
        if not self._commits:
            self._dirty.clear()
            return {}
        offsets: dict[TP, tuple[int, str]] = {}
        for tp in list(self._dirty if only is None else self._dirty & only):
            pb = self._parts.get(tp)
            if pb is None:
                self._dirty.discard(tp)
                continue
            point = pb.commit_point(unpop_last=tp == self._in_hand)
            if point is None:
                continue
            value = (point.offset, point.metadata)
            if self._committed.get(tp) != value:
                offsets[tp] = value
        self._last_commit = time.monotonic()
        if not offsets:
            self._clean(only)
            return {}
        result = self.consumer.commit(offsets)
        self.stats.commits += 1
        self._committed.update(offsets)
        self._clean(only)
        return result

    def _clean(self, only: set[TP] | None) -> None:
        """Partitions just committed are clean, except the one whose chunk is still in hand."""
        keep = {self._in_hand} if self._in_hand is not None else set()
        if only is None:
            self._dirty &= keep
        else:
            self._dirty -= only - keep

    def _finish(self) -> None:
        self._done = True
        try:
            self._commit()
        finally:
            self._session.release()


def chunks(
    consumer: RecordSource,
    policy: ChunkPolicy,
    *,
    resolve: bool = False,
    stack: bool = False,
    streams: Collection[str] | None = None,
    commit_interval: float = 1.0,
    metadata_limit: int = DEFAULT_METADATA_LIMIT,
    **unknown: Any,
) -> ChunkIterator:
    """Chunks of every stream the consumer reads, one buffer per stream, cut by `policy`.

    - `resolve`: hand out resolved objects instead of lazy proxies (a chunk's context items, already
      resolved for the previous chunk, are not fetched again);
    - `stack`: also stack each chunk's values into `chunk.array` (numpy arrays or torch tensors of one
      shape; implies `resolve`; None for an empty final chunk);
    - `streams`: chunk only these streams; records of the others are passed over (and committed past);
    - `commit_interval`: seconds between commits (0: before every chunk after the first; the close, the
      end, and revocations always commit). Longer intervals only mean more redelivery after a crash;
    - `metadata_limit`: the broker's `offset.metadata.max.bytes` (bounds the resume state per partition).

    Needs `StreamConsumer(..., auto_commit=False)` (see the module docstring for why, and for commits,
    rebalances and stop conditions). Returns a `ChunkIterator`.
    """
    if unknown:
        raise ConfigError(
            f"consumer.chunks(): unknown option(s) {', '.join(sorted(unknown))}; the options are resolve, "
            "stack, streams, commit_interval, metadata_limit"
        )
    return ChunkIterator(
        consumer,
        policy,
        resolve=resolve,
        stack=stack,
        streams=streams,
        commit_interval=commit_interval,
        metadata_limit=metadata_limit,
    )
