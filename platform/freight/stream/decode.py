"""Records to items: decode a Kafka record into a `StreamRecord` with its `ProxyRef`, or apply the
bad-event policy.

Anything in a topic may have been written by someone else, so a record that is not a Freight event
(wrong magic byte, unknown schema id, garbage, a tombstone) never stops the consumer by itself:
`on_bad_event` says what happens to it. "raise" raises an `EventDecodeError` naming topic, partition and
offset (the consumer moves past it on the next call), "skip" counts and logs it, "dead-letter" writes the
raw record and the reason to a dead-letter topic (`freight.kafka.dead_letter`) and reads on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, get_args

from freight import tracing
from freight.errors import ConfigError, EventDecodeError
from freight.kafka.dead_letter import DeadLetterWriter, source_headers
from freight.schemas.events import EventKind, EvictionMode, ObjectEvent
from freight.stream.metadata import ItemMetadata
from freight.stream.proxy import Proxy, ProxyRef

if TYPE_CHECKING:
    from confluent_kafka import Message

    from freight.config import FreightSettings
    from freight.schemas.serde import EventSerde

log = logging.getLogger(__name__)

BadEventPolicy = Literal["raise", "skip", "dead-letter"]
BAD_EVENT_POLICIES: tuple[str, ...] = get_args(BadEventPolicy)


@dataclass
class ConsumerStats:
    """Counters of one consumer."""

    events: int = 0
    objects: int = 0
    end_of_streams: int = 0
    bad_events: int = 0
    dead_lettered: int = 0
    evicted_skipped: int = 0
    rebalances: int = 0


class StreamRecord:
    """One decoded event: the event, its proxy (None for END_OF_STREAM) and, built on first use, metadata."""

    __slots__ = ("_metadata", "event", "offset", "partition", "proxy", "timestamp", "topic")

    def __init__(
        self, event: ObjectEvent, proxy: Proxy | None, topic: str, partition: int, offset: int, timestamp: int
    ) -> None:
        self.event = event
        self.proxy = proxy
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.timestamp = timestamp
        self._metadata: ItemMetadata | None = None

    @property
    def metadata(self) -> ItemMetadata:
        """The item's metadata (coordinates, stream, sequence, store, size, ...), built once when asked."""
        if self._metadata is None:
            event = self.event
            obj = event.object
            self._metadata = ItemMetadata(
                topic=self.topic,
                partition=self.partition,
                offset=self.offset,
                timestamp=self.timestamp,
                stream=event.stream,
                sequence=event.sequence,
                producer_id=event.producer_id,
                created_at=event.created_at,
                metadata=event.metadata,
                store=obj.store if obj else None,
                key=obj.key if obj else None,
                size=obj.size if obj else None,
                inline=event.inline is not None,
                descriptor=event.descriptor,
                end_of_stream=event.kind is EventKind.END_OF_STREAM,
            )
        return self._metadata


def proxy_ref(
    event: ObjectEvent,
    *,
    topic: str,
    partition: int,
    offset: int,
    bootstrap: str | None,
    group: str | None,
    trace: str | None = None,
) -> ProxyRef:
    """The reference a proxy of an OBJECT event resolves from.

    Args:
        event: The decoded OBJECT event (a store reference or an inline payload).
        topic: Where the event was read.
        partition: Its partition.
        offset: Its offset.
        bootstrap: The cluster it came from (a resolving process uses only clusters it trusts).
        group: The consumer group that hands it out (on-resolve eviction); unused for inline objects.
        trace: The receive span's trace context (`freight.tracing`), carried to where it is resolved.

    Returns:
        The `ProxyRef`.
    """
    obj, inline = event.object, event.inline
    if obj is not None:
        serializer, data = obj.serializer, None
    elif inline is not None:
        serializer, data = inline.serializer, inline.data
    else:
        raise EventDecodeError(
            f"an OBJECT event at {topic}[{partition}]@{offset} has no object and no payload"
        )
    if obj is not None:
        # Positional, in ProxyRef's field order (one is built per record; keywords cost a third more).
        return ProxyRef(
            topic, partition, offset, event.stream, event.sequence, serializer,
            obj.store, obj.key, obj.checksum, event.descriptor, obj.eviction, None, bootstrap, group, trace,
        )  # fmt: skip
    return ProxyRef(
        topic, partition, offset, event.stream, event.sequence, serializer,
        None, None, None, event.descriptor, EvictionMode.WATERMARK, data, bootstrap, None, trace,
    )  # fmt: skip


class RecordDecoder:
    """Turns a consumer's records into `StreamRecord`s and applies its bad-event policy.

    Args:
        settings: The consumer's settings (cluster, registry, dead-letter writes).
        group_id: The consumer's group (proxies carry it; metrics are labelled with it).
        stats: The consumer's counters, updated here.
        on_bad_event: "raise", "skip" or "dead-letter" (see the module docstring).
        dead_letter_topic: Where dead letters go (default `<topic>.dlq`).
        serde: The event serde (default: one for the settings' registry, made on first use).
    """

    def __init__(
        self,
        settings: FreightSettings,
        *,
        group_id: str | None,
        stats: ConsumerStats,
        on_bad_event: BadEventPolicy = "raise",
        dead_letter_topic: str | None = None,
        serde: EventSerde | None = None,
    ) -> None:
        if on_bad_event not in BAD_EVENT_POLICIES:
            raise ConfigError(f"on_bad_event must be 'raise', 'skip' or 'dead-letter', got {on_bad_event!r}")
        self.settings = settings
        self.group_id = group_id
        self.stats = stats
        self.on_bad_event = on_bad_event
        self.dead_letter_topic = dead_letter_topic
        self._serde = serde
        self._bootstrap = settings.kafka_bootstrap
        self._dead_letters: DeadLetterWriter | None = None
        # Per-topic [events, bad events] not yet added to the Prometheus counters (added per fetched batch).
        self._unreported: dict[str, list[int]] = {}

    @property
    def serde(self) -> EventSerde:
        """The event serde (made from the settings on first use unless one was given)."""
        if self._serde is None:
            from freight.schemas.serde import EventSerde

            self._serde = EventSerde.from_settings(self.settings)
        return self._serde

    def decode(
        self,
        msg: Message,
        topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
    ) -> StreamRecord | None:
        """Decode one record.

        Args:
            msg: A data record (no error) from the consumer.
            topic: `msg.topic()` when the caller has read it already (each accessor call costs).
            partition: `msg.partition()`, likewise.
            offset: `msg.offset()`, likewise.

        Returns:
            The record, or None when it was bad and skipped or dead-lettered (read on).

        Raises:
            EventDecodeError: the record is bad and the policy is "raise".
        """
        if topic is None or partition is None or offset is None:
            topic, partition, offset = msg.topic() or "", msg.partition() or 0, msg.offset() or 0
        value = msg.value()
        try:
            if value is None:
                raise EventDecodeError(f"record at {topic}[{partition}]@{offset} has no value (a tombstone)")
            serde = self._serde if self._serde is not None else self.serde
            event = serde.decode(topic, value)
            tracer = tracing.TRACER
            trace = None
            if tracer is not None and event.kind is not EventKind.END_OF_STREAM:
                trace = tracing.receive_span(tracer, topic, partition, offset, msg.headers())
            record = self._record(event, topic, partition, offset, msg.timestamp()[1], trace)
        except EventDecodeError as exc:
            self._bad(msg, topic, partition, offset, exc)
            return None
        self.stats.events += 1
        self._count(topic, 0)
        return record

    def _record(
        self, event: ObjectEvent, topic: str, partition: int, offset: int, ts: int, trace: str | None
    ) -> StreamRecord:
        if event.kind is EventKind.END_OF_STREAM:
            self.stats.end_of_streams += 1
            return StreamRecord(event, None, topic, partition, offset, ts)
        ref = proxy_ref(
            event,
            topic=topic,
            partition=partition,
            offset=offset,
            bootstrap=self._bootstrap,
            group=self.group_id,
            trace=trace,
        )
        self.stats.objects += 1
        return StreamRecord(event, Proxy(ref), topic, partition, offset, ts)

    def _bad(self, msg: Message, topic: str, partition: int, offset: int, exc: EventDecodeError) -> None:
        self.stats.bad_events += 1
        self._count(topic, 1)
        reason = str(exc)
        if self.on_bad_event == "raise":
            raise EventDecodeError(
                f"{reason} (topic {topic!r} partition {partition} offset {offset}). The consumer moves "
                "past it on the next call; use on_bad_event='skip' or 'dead-letter' to keep going."
            ) from exc
        if self.on_bad_event == "dead-letter":
            if self._dead_letters is None:
                self._dead_letters = DeadLetterWriter(self.settings)
            self._dead_letters.write(
                self.dead_letter_topic or f"{topic}.dlq",
                msg.key(),
                msg.value(),
                source_headers(reason, topic, partition, offset),
                f"the bad record at topic {topic!r} partition {partition} offset {offset}",
            )
            self.stats.dead_lettered += 1
        else:
            log.warning("skipping bad record at %s[%d]@%d: %s", topic, partition, offset, reason)

    def _count(self, topic: str, index: int) -> None:
        counts = self._unreported.get(topic)
        if counts is None:
            counts = self._unreported[topic] = [0, 0]
        counts[index] += 1

    def report_metrics(self) -> None:
        """Add what was counted since the last report to the Prometheus counters."""
        if not self._unreported:
            return
        from freight.metrics import consumer_metrics

        for topic, counts in self._unreported.items():
            if counts[0] or counts[1]:
                m = consumer_metrics(topic, self.group_id)
                m.events.inc(counts[0])
                m.bad_events.inc(counts[1])
                counts[0] = counts[1] = 0

    def close(self) -> None:
        """Report the last counts and flush the dead-letter writer."""
        self.report_metrics()
        if self._dead_letters is not None:
            self._dead_letters.close()
