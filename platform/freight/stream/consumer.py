"""`StreamConsumer`: read a stream's events in a consumer group and hand out lazy proxies.

Delivery is at-least-once. An item's offset is stored for commit only once the item was handed out *and*
the next one was requested (or on `commit()`); stored offsets are committed in the background and on
rebalance, so a crash redelivers only items that were not finished. Events arrive in batches
(`consume(num_messages)`), are decoded through the registry (schema ids cached), and turn into `Proxy`
objects without touching the store: bytes move only when a proxy is resolved. `iter_objects()` and
`next_object()` resolve for you; when the store or the registry cannot be reached, the item is not finished
and the next call tries it again, so an outage never skips an item.

Replay: `seek(to="beginning" | "end" | offset=N | timestamp=ms)` for one partition or all; a seek before the
first assignment is applied when partitions are assigned. `group_id=None` reads every partition without a
group and commits nothing. Iteration can stop at END_OF_STREAM of given streams (`until_end_of`), at the
high watermarks seen at start (`until_high_watermark`), or after `idle_timeout` seconds without events.

Manual commits (`auto_commit=False`): nothing is stored or committed by iteration; the owner commits its
own positions with `commit({(topic, partition): offset or (offset, metadata)})` (stream buffers and
pipelines do this), reads them back with `committed()`, and hears about rebalances through a
`RebalanceListener`.

Bad records (not a Freight event: wrong magic byte, unknown schema id, garbage) follow `on_bad_event`
("raise", "skip" or "dead-letter"); decoding and that policy live in `freight.stream.decode`, the offset
bookkeeping in `freight.stream.offsets`.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, TopicPartition

from freight import tracing
from freight.config import FreightSettings, resolve_settings
from freight.errors import ConfigError, ObjectEvictedError, ServiceUnavailableError
from freight.kafka import KafkaAdmin, consumer_config
from freight.kafka.errors import translate_kafka_error
from freight.stores.resolver import default_resolver
from freight.stream.decode import BadEventPolicy, ConsumerStats, RecordDecoder, StreamRecord
from freight.stream.metadata import ItemMetadata
from freight.stream.offsets import TP, OffsetBook
from freight.stream.onresolve import MARKS
from freight.stream.proxy import Proxy, extract
from freight.stream.replay import Position, seek_targets

if TYPE_CHECKING:
    from freight.schemas.serde import EventSerde
    from freight.stores import Store

log = logging.getLogger(__name__)

__all__ = ["TP", "BadEventPolicy", "ConsumerStats", "RebalanceListener", "StreamConsumer", "StreamRecord"]

T = TypeVar("T")


@dataclass
class _SeekSpec:
    to: Position | None
    offset: int | None
    timestamp_ms: int | None
    topic: str | None
    partition: int | None

    def covers(self, topic: str, partition: int) -> bool:
        return (self.topic is None or self.topic == topic) and (
            self.partition is None or self.partition == partition
        )


class RebalanceListener(Protocol):
    """Told about partitions gained and lost (after the consumer's own bookkeeping).

    `on_revoke` runs before the partitions go to another member: the place to commit what is finished.
    """

    def on_assign(self, consumer: StreamConsumer, partitions: list[TP]) -> None: ...

    def on_revoke(self, consumer: StreamConsumer, partitions: list[TP]) -> None: ...


class _Iter(Generic[T]):
    """An iterator that survives exceptions: after an error, `next()` continues with the next item."""

    def __init__(self, step: Callable[[], T]) -> None:
        self._step = step

    def __iter__(self) -> _Iter[T]:
        return self

    def __next__(self) -> T:
        return self._step()


class StreamConsumer:
    """Consume Freight streams from Kafka topics in a consumer group (see the module docstring).

    Args:
        topics: one topic or several; each must exist.
        group_id: the consumer group (None: read every partition from the start, commit nothing).
        settings: cluster, registry and defaults (None: from the environment, `FREIGHT_*`).
        bootstrap: Kafka bootstrap servers; wins over `settings`.
        registry_url: the schema registry's URL; wins over `settings`.
        stores: stores to resolve from in this process (others are found in `_freight_stores`).
        kafka_config: librdkafka consumer overrides (e.g. `auto.offset.reset`).
        batch_size: records fetched per call to librdkafka.
        poll_timeout: longest single wait for records.
        until_end_of: stop once every one of these streams sent END_OF_STREAM.
        until_high_watermark: stop at the high watermarks seen at start (a replay to "now").
        idle_timeout: stop after this many seconds without a record (None: wait forever).
        on_bad_event: "raise", "skip" or "dead-letter" (see `freight.stream.decode`).
        dead_letter_topic: where dead letters go (default `<topic>.dlq`).
        skip_evicted: `iter_objects` counts and skips evicted objects instead of raising.
        serde: the event serde (None: one for the registry).
        auto_commit: commit what was handed out (False: the owner commits with `commit(offsets)`).
        rebalance_listener: told about partitions gained and lost.

    Raises:
        ConfigError: no topic, a missing topic or a bad option (the message says which).
    """

    def __init__(
        self,
        topics: str | Sequence[str],
        group_id: str | None,
        *,
        settings: FreightSettings | None = None,
        bootstrap: str | None = None,
        registry_url: str | None = None,
        stores: Iterable[Store] | None = None,
        kafka_config: Mapping[str, Any] | None = None,
        batch_size: int = 500,
        poll_timeout: float = 0.5,
        until_end_of: Iterable[str] | None = None,
        until_high_watermark: bool = False,
        idle_timeout: float | None = None,
        on_bad_event: BadEventPolicy = "raise",
        dead_letter_topic: str | None = None,
        skip_evicted: bool = False,
        serde: EventSerde | None = None,
        auto_commit: bool = True,
        rebalance_listener: RebalanceListener | None = None,
    ) -> None:
        self.settings = resolve_settings(settings, bootstrap=bootstrap, registry_url=registry_url)
        self.topics = [topics] if isinstance(topics, str) else list(topics)
        if not self.topics:
            raise ConfigError("StreamConsumer needs at least one topic")
        self.group_id = group_id
        self.batch_size = batch_size
        self.poll_timeout = poll_timeout
        self.idle_timeout = idle_timeout
        self.skip_evicted = skip_evicted
        self.auto_commit = auto_commit
        self.rebalance_listener = rebalance_listener
        self.stats = ConsumerStats()
        self._decoder = RecordDecoder(
            self.settings,
            group_id=group_id,
            stats=self.stats,
            on_bad_event=on_bad_event,
            dead_letter_topic=dead_letter_topic,
            serde=serde,
        )
        self._book = OffsetBook()
        self._until = set(until_end_of) if until_end_of is not None else None
        self._ended: set[str] = set()
        self._batch: deque[Message] = deque()
        self._assigned: set[TP] = set()
        self._closed = False
        self._ever_assigned = False
        self._assign_pending = False  # partitions were taken away and the group has not assigned again yet
        self._pending_seeks: list[_SeekSpec] = []
        self._stop_at: dict[TP, int] | None = None
        self._stopped = False
        self._admin: KafkaAdmin | None = None
        default_resolver().trust(self.settings)  # proxies of this cluster resolve with these settings
        tracing.instrument_from_settings(self.settings.tracing)
        for store in stores or ():
            default_resolver().register(store, settings=self.settings)

        overrides: dict[str, Any] = dict(kafka_config or {})
        if "stats_cb" not in overrides:  # keeps freight_consumer_lag current (every 5 s, on this thread)
            from freight.metrics import lag_config

            for k, v in lag_config(group_id).items():
                overrides.setdefault(k, v)
        if until_high_watermark:
            overrides.setdefault("enable.partition.eof", True)
        if group_id is None or not auto_commit:
            overrides.update({"enable.auto.commit": False})
        if group_id is not None:  # on-resolve objects resolved here go once the group commits past them
            MARKS.consumer_opened(group_id)
            overrides.setdefault("on_commit", self._on_commit)
        conf = consumer_config(self.settings, group_id or f"freight-replay-{uuid.uuid4().hex[:8]}", overrides)
        self._reset_earliest = str(conf.get("auto.offset.reset", "earliest")).lower() in (
            "earliest",
            "smallest",
            "beginning",
        )
        self._consumer = Consumer(conf)
        self._partitions: dict[str, list[int]] = {}
        try:
            self._check_topics()
            if until_high_watermark:
                self._stop_at = self._high_watermarks()
            if group_id is None:
                parts = [
                    TopicPartition(t, p, OFFSET_BEGINNING) for t in self.topics for p in self._partitions[t]
                ]
                self._consumer.assign(parts)
                self._assigned = {(tp.topic, tp.partition) for tp in parts}
                self._ever_assigned = True
            else:
                self._consumer.subscribe(
                    self.topics, on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
                )
        except BaseException:
            self._consumer.close()
            raise

    # Plumbing -----------------------------------------------------------------------------------------
    @property
    def on_bad_event(self) -> BadEventPolicy:
        """What happens to a record that is not a Freight event (the decoder's policy)."""
        return self._decoder.on_bad_event

    @property
    def dead_letter_topic(self) -> str | None:
        """Where bad records go under "dead-letter" (None: `<topic>.dlq`)."""
        return self._decoder.dead_letter_topic

    @property
    def serde(self) -> EventSerde:
        """The event serde (decoding through the registry; made on first use unless one was given)."""
        return self._decoder.serde

    @property
    def admin(self) -> KafkaAdmin:
        if self._admin is None:
            self._admin = KafkaAdmin(self.settings)
        return self._admin

    def _check_topics(self) -> None:
        """Load the topics' metadata before assigning: a missing topic is a clear error, and librdkafka
        knows the partition leaders at assignment (otherwise its first offset lookup waits 500 ms)."""
        for topic in self.topics:
            try:
                md = self._consumer.list_topics(topic, timeout=10)
            except KafkaException as exc:
                raise translate_kafka_error(
                    exc, self.settings.kafka_bootstrap, "read topic metadata"
                ) from exc
            t = md.topics.get(topic)
            if t is None or t.error is not None or not t.partitions:
                raise ConfigError(
                    f"topic {topic!r} does not exist on {self.settings.kafka_bootstrap}; create it with "
                    f"`freight topics create {topic}` (a StreamProducer creates it on first send)"
                )
            self._partitions[topic] = sorted(t.partitions)

    def _high_watermarks(self) -> dict[TP, int]:
        """Each partition's end, asked over the consumer's own connections (an admin client of its own
        would cost a connection set-up, about 50 ms, on every replay)."""
        ends: dict[TP, int] = {}
        for topic, parts in self._partitions.items():
            for p in parts:
                try:
                    _lo, hi = self._consumer.get_watermark_offsets(
                        TopicPartition(topic, p), timeout=10, cached=False
                    )
                except KafkaException as exc:
                    raise translate_kafka_error(
                        exc, self.settings.kafka_bootstrap, "read the partitions' high watermarks"
                    ) from exc
                ends[(topic, p)] = hi
        return ends

    def assignment(self) -> list[TP]:
        """Partitions currently assigned to this consumer."""
        return sorted(self._assigned)

    def wait_for_assignment(self, timeout: float = 30.0) -> list[TP]:
        """Take part in the group (serving rebalances) until partitions are assigned or `timeout` passes.

        Records fetched meanwhile are kept for iteration, nothing is handed out or committed.

        Args:
            timeout: Seconds to wait at most.

        Returns:
            The assigned (topic, partition) pairs; empty if none were assigned in time.
        """
        deadline = time.monotonic() + timeout
        while True:
            msgs = self._consumer.consume(
                self.batch_size, timeout=min(0.1, max(deadline - time.monotonic(), 0))
            )
            self._batch.extend(msgs)
            if (self._assigned and not msgs) or time.monotonic() >= deadline:
                return self.assignment()

    # Rebalance callbacks -------------------------------------------------------------------------------
    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.stats.rebalances += 1
        for tp in partitions:
            for spec in self._pending_seeks:
                if spec.covers(tp.topic, tp.partition):
                    targets = seek_targets(
                        self.admin,
                        tp.topic,
                        [tp.partition],
                        to=spec.to,
                        offset=spec.offset,
                        timestamp_ms=spec.timestamp_ms,
                    )
                    tp.offset = targets[tp.partition]
        self._pending_seeks = [
            s
            for s in self._pending_seeks
            if s.topic is not None
            and s.partition is not None
            and (s.topic, s.partition) not in {(tp.topic, tp.partition) for tp in partitions}
        ]
        self._start_at_committed(consumer, [tp for tp in partitions if tp.offset < 0])
        consumer.assign(partitions)
        self._assigned |= {(tp.topic, tp.partition) for tp in partitions}
        self._ever_assigned = True
        self._assign_pending = False
        if self.rebalance_listener is not None:
            self.rebalance_listener.on_assign(self, sorted((tp.topic, tp.partition) for tp in partitions))

    def _start_at_committed(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Start newly assigned partitions at the group's committed offset, explicitly.

        Left to itself, librdkafka resumes a partition assigned back to this member where its own fetcher
        stood, past records that were prefetched and then dropped at revocation: they would be lost. A
        partition the group never committed starts at the log start (auto.offset.reset=earliest, Freight's
        default) or is left to the configured reset policy.
        """
        if not partitions:
            return
        try:
            committed = {
                (tp.topic, tp.partition): tp.offset for tp in consumer.committed(partitions, timeout=10)
            }
        except KafkaException as exc:
            log.warning("could not read committed offsets at assignment (%s); librdkafka decides", exc)
            return
        for tp in partitions:
            offset = committed.get((tp.topic, tp.partition), -1)
            if offset >= 0:
                tp.offset = offset
            elif self._reset_earliest:
                tp.offset = OFFSET_BEGINNING

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.stats.rebalances += 1
        revoked = {(tp.topic, tp.partition) for tp in partitions}
        if self.rebalance_listener is not None:
            self.rebalance_listener.on_revoke(self, sorted(revoked))
        self._store_done(only=revoked)
        try:
            consumer.commit(asynchronous=False)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError._NO_OFFSET:
                log.warning("commit on revoke failed: %s", exc)
        self._drop(revoked)
        self._assigned -= revoked
        self._assign_pending = True

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        lost = {(tp.topic, tp.partition) for tp in partitions}
        if self.rebalance_listener is not None:
            self.rebalance_listener.on_revoke(self, sorted(lost))
        self._drop(lost)
        self._assigned -= lost
        self._assign_pending = True

    def _drop(self, parts: set[TP]) -> None:
        """Forget prefetched records and unfinished bookkeeping of partitions we no longer own.

        The deque is changed in place, never replaced: this runs inside librdkafka callbacks during a fetch
        whose caller already holds `self._batch` to extend it with what the fetch returns.
        """
        kept = [m for m in self._batch if (m.topic(), m.partition()) not in parts]
        self._batch.clear()
        self._batch.extend(kept)
        # A reassignment starts from the group's committed offset; `_reached_stop` asks the position again.
        self._book.forget(parts)

    # Offsets -------------------------------------------------------------------------------------------
    def _finish_last(self) -> None:
        self._book.finish_last(record=self.auto_commit)

    def _store_done(self, only: set[TP] | None = None) -> None:
        """Hand the finished offsets (of `only`, default all) to librdkafka for the background commit."""
        offsets = self._book.take(only, self._assigned)
        if offsets and self.group_id is not None:
            try:
                self._consumer.store_offsets(offsets=offsets)
            except KafkaException as exc:
                log.debug("store_offsets skipped: %s", exc)

    def commit(self, offsets: Mapping[TP, int | tuple[int, str]] | None = None) -> dict[TP, int]:
        """Commit synchronously and return what was committed.

        Without `offsets`: everything handed out so far (the item in hand included). With `offsets`: exactly
        these next-offsets-to-read, each optionally with commit metadata `(offset, "text")`; this is how
        pipelines and stream buffers commit their own low watermark (with `auto_commit=False`).

        Args:
            offsets: Next offsets to read per (topic, partition), optionally with metadata; None: all
                handed out so far.

        Returns:
            The committed next-offset per (topic, partition).
        """
        if self._closed:
            self._raise_closed()
        if self.group_id is None:
            return {}
        if offsets is not None:
            tps = []
            for (t, p), value in offsets.items():
                offset, meta = value if isinstance(value, tuple) else (value, None)
                tp = (
                    TopicPartition(t, p, offset)
                    if meta is None
                    else TopicPartition(t, p, offset, metadata=meta)
                )
                tps.append(tp)
            if not tps:
                return {}
            try:
                result = self._consumer.commit(offsets=tps, asynchronous=False)
            except KafkaException as exc:
                raise translate_kafka_error(exc, self.settings.kafka_bootstrap, "commit offsets") from exc
            done = {(tp.topic, tp.partition): tp.offset for tp in result or tps}
            MARKS.committed(self.group_id, done)
            return done
        self._finish_last()
        pending = dict(self._book.done)
        self._store_done()
        try:
            result = self._consumer.commit(asynchronous=False)
        except KafkaException as exc:
            if exc.args[0].code() == KafkaError._NO_OFFSET:
                return {}
            raise translate_kafka_error(exc, self.settings.kafka_bootstrap, "commit offsets") from exc
        committed = {(tp.topic, tp.partition): tp.offset for tp in result or [] if tp.offset >= 0}
        MARKS.committed(self.group_id, committed)
        return committed or pending

    def _on_commit(self, err: KafkaError | None, partitions: list[TopicPartition]) -> None:
        """librdkafka's report of a commit (the background auto-commit included)."""
        if err is None and self.group_id is not None:
            done = {
                (tp.topic, tp.partition): tp.offset for tp in partitions if tp.offset >= 0 and not tp.error
            }
            MARKS.committed(self.group_id, done)

    def committed(self, partitions: Iterable[TP] | None = None) -> dict[TP, tuple[int, str | None]]:
        """The group's committed positions.

        Args:
            partitions: (topic, partition) pairs; None: the assigned ones.

        Returns:
            (next offset, commit metadata or None) per partition that has a commit.
        """
        parts = [TopicPartition(t, p) for t, p in (partitions if partitions is not None else self._assigned)]
        if not parts or self.group_id is None:
            return {}
        try:
            result = self._consumer.committed(parts, timeout=10)
        except KafkaException as exc:
            raise translate_kafka_error(exc, self.settings.kafka_bootstrap, "read committed offsets") from exc
        return {(tp.topic, tp.partition): (tp.offset, tp.metadata or None) for tp in result if tp.offset >= 0}

    # Replay --------------------------------------------------------------------------------------------
    def seek(
        self,
        to: Position | None = None,
        *,
        offset: int | None = None,
        timestamp: int | None = None,
        topic: str | None = None,
        partition: int | None = None,
    ) -> dict[TP, int]:
        """Move to a position, an offset or a timestamp, for one partition or every one.

        Args:
            to: "beginning" or "end".
            offset: an exact offset (clamped to the partition's log by the broker's rules).
            timestamp: epoch milliseconds: the first record at or after it.
            topic: only this topic (needed with `partition` when reading several).
            partition: only this partition.

        Returns:
            The new offsets of the partitions moved now; partitions not yet assigned move when they are.
        """
        if partition is not None and topic is None:
            if len(self.topics) != 1:
                raise ConfigError("seek(partition=...) needs topic=... when consuming several topics")
            topic = self.topics[0]
        spec = _SeekSpec(to, offset, timestamp, topic, partition)
        moved: dict[TP, int] = {}
        targets_now = sorted(tp for tp in self._assigned if spec.covers(*tp))
        by_topic: dict[str, list[int]] = {}
        for t, p in targets_now:
            by_topic.setdefault(t, []).append(p)
        for t, parts in by_topic.items():
            for p, o in seek_targets(
                self.admin, t, parts, to=to, offset=offset, timestamp_ms=timestamp
            ).items():
                self._seek_partition(t, p, o)
                moved[(t, p)] = o
        if not moved:  # nothing covered is assigned yet: apply when partitions are assigned
            self._pending_seeks.append(spec)
        return moved

    def _seek_partition(self, topic: str, partition: int, offset: int) -> None:
        self._drop({(topic, partition)})
        deadline = time.monotonic() + 10
        while True:
            try:
                self._consumer.seek(TopicPartition(topic, partition, offset))
                return
            except KafkaException as exc:
                # A partition whose fetcher has not started yet refuses seeks for a moment.
                if time.monotonic() > deadline:
                    raise translate_kafka_error(exc, self.settings.kafka_bootstrap, "seek") from exc
                self._consumer.consume(0, timeout=0.05)

    # The read loop ---------------------------------------------------------------------------------------
    def _reached_stop(self) -> bool:
        if self._until is not None and self._until and self._until <= self._ended:
            return True
        if self._stop_at is None or not self._ever_assigned:
            return False
        if not self._assigned and self._assign_pending:
            return False  # mid-rebalance: the partitions taken away may come back with records to read
        for tp in self._assigned:
            stop = self._stop_at.get(tp, 0)
            if self._book.seen.get(tp, -1) >= stop:
                continue
            if tp not in self._book.seen:
                pos = self._consumer.position([TopicPartition(*tp)])[0].offset
                if pos >= stop:
                    continue
            return False
        return True

    def mark_unread(self, partitions: Iterable[TP]) -> None:
        """Count these partitions as not read yet for the stop condition (`until_high_watermark`).

        For owners of the consumer's commits across rebalances (a pipeline run): a partition that comes back
        would otherwise count as read as far as this member had prefetched it before, and the consumer
        would stop without re-reading it from the committed offset.

        Args:
            partitions: (topic, partition) pairs just assigned or revoked.
        """
        self._book.mark_unread(partitions)

    @property
    def stopped(self) -> bool:
        """Whether the stop condition (`until_high_watermark`, `until_end_of`) was reached.

        `next_record` returns None both then and on a timeout; this tells the two apart.
        """
        return self._stopped

    def _fetch(self, timeout: float) -> list[Message]:
        """What is already fetched, without waiting; if nothing, wait up to `timeout` for the first record.

        (`consume(n, timeout)` alone waits until n records *or* the timeout, which would delay every
        partial batch by the whole timeout.)
        """
        try:
            msgs = self._consumer.consume(self.batch_size, timeout=0)
            if msgs:
                return msgs
            first = self._consumer.poll(timeout)
            if first is None:
                return []
            return [first, *self._consumer.consume(self.batch_size - 1, timeout=0)]
        except KafkaException as exc:
            raise translate_kafka_error(exc, self.settings.kafka_bootstrap, "consume") from exc

    def _serve_group(self) -> None:
        """While records prefetched earlier (up to `batch_size`) are being handed out: store the finished
        offsets, so they reach the background commit within a second, and let librdkafka run rebalance
        callbacks, so a rebalance is not held up until the batch is drained (revoked partitions' records
        are dropped from the batch, and their finished items committed, at once)."""
        self._store_done()
        try:
            self._batch.extend(self._consumer.consume(self.batch_size, timeout=0))
        except KafkaException as exc:
            raise translate_kafka_error(exc, self.settings.kafka_bootstrap, "consume") from exc

    def _next_message(self, deadline: float | None) -> tuple[Message, str, int, int] | None:
        """The next data record with its topic, partition and offset (errors handled), or None when stopping
        or when the monotonic `deadline` (None: none) passes. Runs once per record, so each accessor of
        the message is read once."""
        if self._stopped:
            return None
        batch = self._batch
        if batch and time.monotonic() - self._book.last_store > 0.5:
            self._serve_group()
        while True:
            while batch:
                msg = batch.popleft()
                err = msg.error()
                tp = (msg.topic() or "", msg.partition() or 0)
                if err is None and tp not in self._assigned:
                    continue  # fetched before its partition was revoked: its new owner reads it
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        if tp in self._assigned:  # an end fetched before a revocation is stale
                            self._book.read_up_to(tp, msg.offset() or 0)
                        continue
                    if err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                        raise ConfigError(
                            f"topic {msg.topic()!r} does not exist; create it with `freight topics create`"
                        )
                    raise translate_kafka_error(KafkaException(err), self.settings.kafka_bootstrap, "consume")
                offset = msg.offset() or 0
                if self._stop_at is not None:
                    stop = self._stop_at.get(tp)
                    if stop is not None and offset >= stop:
                        # Past the high watermark seen at start: not handed out, so never committed.
                        self._book.read_up_to(tp, stop)
                        continue
                self._book.seen[tp] = offset + 1
                return msg, tp[0], tp[1], offset
            if self._reached_stop():
                self._stopped = True
                return None
            if self._book.since_store() > 0.5:
                self._store_done()
            remaining = (
                self.poll_timeout if deadline is None else min(self.poll_timeout, deadline - time.monotonic())
            )
            if remaining <= 0:
                return None
            self._batch.extend(self._fetch(remaining))
            self._store_done()
            self._decoder.report_metrics()

    def next_record(self, timeout: float | None = None, *, include_end: bool = True) -> StreamRecord | None:
        """The next event (END_OF_STREAM included unless `include_end` is False), or None.

        None means: the stop condition was reached, or nothing arrived within `timeout` (or `idle_timeout`
        when `timeout` is None). Calling this finishes the previously returned item (its offset may commit).

        Args:
            timeout: Seconds to wait for a record; None: the consumer's `idle_timeout`.
            include_end: Whether END_OF_STREAM events are returned too.

        Returns:
            The record (event, proxy, coordinates, timestamp), or None.
        """
        if self._closed:
            self._raise_closed()
        self._finish_last()
        wait = self.idle_timeout if timeout is None else timeout
        deadline = None if wait is None else time.monotonic() + wait
        while True:
            found = self._next_message(deadline)
            if found is None:
                return None
            msg, topic, partition, offset = found
            self._book.hand_out(topic, partition, offset)
            record = self._decoder.decode(msg, topic, partition, offset)
            if record is None:
                continue
            if record.proxy is None:
                self._ended.add(record.event.stream)
                if not include_end:
                    continue
            return record

    # Public iteration API ------------------------------------------------------------------------------
    def poll(self, timeout: float = 1.0) -> Proxy | None:
        """The next object's proxy (END_OF_STREAM events skipped).

        Args:
            timeout: Seconds to wait.

        Returns:
            The proxy, or None if nothing arrived within `timeout` or the stop condition was reached.
        """
        record = self.next_record(timeout, include_end=False)
        return None if record is None else record.proxy

    def _step_record(self) -> StreamRecord:
        record = self.next_record(include_end=False)
        if record is None:
            raise StopIteration
        return record

    def _step_proxy(self) -> Proxy:
        return _proxy(self._step_record())

    def _step_object(self) -> tuple[ItemMetadata, Any]:
        while True:
            record = self._step_record()
            try:
                return record.metadata, self._resolve(record)
            except ObjectEvictedError:
                if not self.skip_evicted:
                    raise
                self.stats.evicted_skipped += 1

    def _resolve(self, record: StreamRecord) -> Any:
        """The record's object. If its store (or the registry) cannot be reached, the record is not
        finished: the partition goes back to it, so the next call tries it again instead of moving past
        (an outage never skips an item). Other errors (corrupt, evicted) move on, as documented."""
        assert record.proxy is not None
        try:
            return extract(record.proxy)
        except ServiceUnavailableError:
            tp = (record.topic, record.partition)
            self._book.release(tp)
            self._store_done(only={tp})
            if tp in self._assigned:
                self._seek_partition(record.topic, record.partition, record.offset)
            raise

    def __iter__(self) -> Iterator[Proxy]:
        return _Iter(self._step_proxy)

    def iter_with_metadata(self) -> Iterator[tuple[ItemMetadata, Proxy]]:
        """(metadata, proxy) pairs, as ProxyStore's `iter_with_metadata`."""
        return _Iter(lambda: (lambda r: (r.metadata, _proxy(r)))(self._step_record()))

    def iter_objects(self) -> Iterator[Any]:
        """Resolved objects (evicted ones raise, or are counted and skipped with `skip_evicted`)."""
        return _Iter(lambda: self._step_object()[1])

    def iter_objects_with_metadata(self) -> Iterator[tuple[ItemMetadata, Any]]:
        return _Iter(self._step_object)

    def iter_records(self) -> Iterator[StreamRecord]:
        """Every event including END_OF_STREAM (what stream buffers consume)."""
        return _Iter(lambda: _or_stop(self.next_record()))

    def next_proxy(self, timeout: float | None = None) -> Proxy:
        """The next object's proxy (END_OF_STREAM events skipped).

        Args:
            timeout: seconds to wait; None: the consumer's `idle_timeout`.

        Returns:
            The proxy.

        Raises:
            StopIteration: the stop condition was reached or nothing arrived in time.
        """
        return _proxy(_or_stop(self.next_record(timeout, include_end=False)))

    def next_object(self, timeout: float | None = None) -> Any:
        """The next object, resolved from its store.

        Args:
            timeout: seconds to wait; None: the consumer's `idle_timeout`.

        Returns:
            The object.

        Raises:
            StopIteration: the stop condition was reached or nothing arrived in time.
            ObjectEvictedError: the object is gone from its store (the next call reads on).
            ServiceUnavailableError: the store or registry is unreachable (the next call tries it again).
        """
        return self._resolve(_or_stop(self.next_record(timeout, include_end=False)))

    # Flow control and lifecycle ----------------------------------------------------------------------------
    def chunks(self, policy: Any, **options: Any) -> Iterator[Any]:
        """Chunks of each stream cut by a `freight.buffer` policy (see `freight.stream.chunks.chunks`).

        Args:
            policy: a `ChunkPolicy` (Count, Bytes, Time, SlidingWindow, LeftContext, SessionGap, Ramp).
            **options: `resolve`, `stack`, `streams`, `commit_interval`, `metadata_limit`.

        Returns:
            A `ChunkIterator` (needs `auto_commit=False` on a group consumer).
        """
        from freight.stream.chunks import chunks

        return chunks(self, policy, **options)

    def pause(self, partitions: Iterable[TP] | None = None) -> None:
        """Stop fetching from partitions; records already fetched are still handed out.

        Args:
            partitions: (topic, partition) pairs; None: every assigned one.
        """
        parts = [TopicPartition(t, p) for t, p in (partitions or self._assigned)]
        if parts:
            self._consumer.pause(parts)

    def resume(self, partitions: Iterable[TP] | None = None) -> None:
        """Fetch again from paused partitions.

        Args:
            partitions: (topic, partition) pairs; None: every assigned one.
        """
        parts = [TopicPartition(t, p) for t, p in (partitions or self._assigned)]
        if parts:
            self._consumer.resume(parts)

    def _raise_closed(self) -> None:
        topics = self.topics[0] if len(self.topics) == 1 else self.topics
        again = f"StreamConsumer({topics!r}, {self.group_id!r}, ...)"
        where = "where the group's commits left off" if self.group_id is not None else "from the start"
        raise ConfigError(
            f"this StreamConsumer is closed; to read on, create a new one ({again}): it reads {where}"
        )

    def close(self) -> None:
        """Commit what is finished (not the item still in hand) and leave the group. Closing twice is
        harmless; reading from a closed consumer raises an error that says so."""
        if self._closed:
            return
        self._closed = True
        try:
            self._store_done()
            if self.group_id is not None and self.auto_commit:
                try:
                    result = self._consumer.commit(asynchronous=False)
                    done = {(tp.topic, tp.partition): tp.offset for tp in result or [] if tp.offset >= 0}
                    MARKS.committed(self.group_id, done)
                except KafkaException as exc:
                    if exc.args[0].code() not in (KafkaError._NO_OFFSET, KafkaError._STATE):
                        log.warning("final commit failed: %s", exc)
        finally:
            if self.group_id is not None:
                MARKS.consumer_closed(self.group_id, set(self._assigned))
            self._consumer.close()
            self._decoder.close()

    def __enter__(self) -> StreamConsumer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _proxy(record: StreamRecord) -> Proxy:
    assert record.proxy is not None
    return record.proxy


def _or_stop(record: StreamRecord | None) -> StreamRecord:
    if record is None:
        raise StopIteration
    return record
