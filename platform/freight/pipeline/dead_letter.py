"""Pipeline dead-letter topics: `KafkaDeadLetterSink` writes failed items, `read_dead_letters` reads them.

A dead-lettered item from a `ConsumerSource` is its event, re-encoded for the dead-letter topic and keyed by
its stream id, so the dead-letter topic is itself a Freight stream: a `StreamConsumer` on it gets proxies of
the failed objects (while their store still holds them: the objects follow the source topic's eviction).
The `ErrorReport` travels in headers: `freight.error.<field>` for every field of `ErrorReport.to_dict()`,
plus `freight.error` (type and message) and `freight.source.topic/partition/offset`, the headers the
consumer's own bad-record dead-lettering uses. `send` returns once the broker acknowledged the record.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from freight.errors import ConfigError, FreightError
from freight.kafka.dead_letter import DeadLetterWriter, source_headers

if TYPE_CHECKING:
    from freight.config import FreightSettings
    from freight.pipeline.error_policy import ErrorReport
    from freight.pipeline.source import SourceItem
    from freight.schemas.events import ObjectEvent
    from freight.schemas.serde import EventSerde

HEADER_PREFIX = "freight.error."


def dead_letter_headers(report: ErrorReport) -> list[tuple[str, str | bytes | None]]:
    """Kafka headers describing a failure: the report's fields plus the consumer's DLQ source headers."""
    fields = report.to_dict()
    headers = source_headers(
        f"{report.error_type}: {report.message}",
        str(fields["topic"]),
        fields["partition"],
        fields["offset"],
    )
    headers += [(HEADER_PREFIX + name, str(value).encode()) for name, value in fields.items()]
    return headers


class KafkaDeadLetterSink:
    """A `DeadLetterSink` writing to a Kafka topic: `topic`, or `<source topic>.dlq` (created if missing,
    with `partitions` partitions). Thread-safe; `send` waits for the broker's acknowledgement."""

    def __init__(
        self,
        settings: FreightSettings | None = None,
        *,
        topic: str | None = None,
        partitions: int = 1,
        serde: EventSerde | None = None,
        kafka_config: Mapping[str, Any] | None = None,
        timeout: float = 30.0,
    ) -> None:
        from freight.config import load_settings

        if topic is not None and not topic:
            raise ConfigError("the dead-letter topic name must not be empty (None: <source topic>.dlq)")
        if partitions < 1:
            raise ConfigError(f"dead-letter topic partitions must be >= 1, got {partitions}")
        self.settings = settings or load_settings()
        self.topic = topic
        self.partitions = partitions
        self.timeout = timeout
        self.sent = 0
        self._serde = serde
        self._own_serde = serde is None
        self._lock = threading.Lock()
        self._writer = DeadLetterWriter(
            self.settings, partitions=partitions, kafka_config=kafka_config, timeout=timeout
        )

    def topic_for(self, source_topic: str) -> str:
        """The dead-letter topic of items from `source_topic`."""
        return self.topic or f"{source_topic}.dlq"

    async def send(self, item: SourceItem[Any], report: ErrorReport) -> None:
        await asyncio.to_thread(self.send_sync, item, report)

    def send_sync(self, item: SourceItem[Any], report: ErrorReport) -> None:
        """Write one dead letter and wait until the broker acknowledged it (raises FreightError if not)."""
        topic = self.topic_for(item.partition_key[0])
        key, value = self._payload(topic, item.raw)
        self._writer.write(topic, key, value, dead_letter_headers(report), report.where())
        self.sent += 1

    def _payload(self, topic: str, raw: Any) -> tuple[bytes | None, bytes]:
        event = getattr(raw, "event", None)
        if event is not None and hasattr(raw, "proxy"):  # a StreamRecord from a ConsumerSource
            if self._serde is None:
                from freight.schemas.serde import EventSerde

                self._serde = EventSerde.from_settings(self.settings)
            return event.stream.encode(), self._serde.encode(topic, event)
        if isinstance(raw, bytes | bytearray | memoryview):
            return None, bytes(raw)
        raise ConfigError(
            f"KafkaDeadLetterSink writes items of a ConsumerSource (raw StreamRecord) or raw bytes, got "
            f"{type(raw).__name__}; use another DeadLetterSink for this source"
        )

    def close(self) -> None:
        """Flush and release the producer and the registry client."""
        self._writer.close()
        with self._lock:
            if self._serde is not None and self._own_serde:
                self._serde.close()
                self._serde = None

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    async def __aenter__(self) -> KafkaDeadLetterSink:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


@dataclass(frozen=True)
class DeadLetter:
    """One record of a dead-letter topic: where the failed item came from, why, and its event."""

    source_topic: str
    source_partition: int
    source_offset: int
    error: dict[str, str]  # the freight.error.* headers without the prefix
    event: ObjectEvent | None  # None when the value is not a Freight event (raw bytes dead-lettered)
    value: bytes
    partition: int
    offset: int
    headers: dict[str, str] = field(default_factory=dict)


def read_dead_letters(
    topic: str,
    settings: FreightSettings | None = None,
    *,
    serde: EventSerde | None = None,
    timeout: float = 30.0,
) -> list[DeadLetter]:
    """Every record of a dead-letter topic (up to its high watermarks now), in partition and offset order."""
    from confluent_kafka import OFFSET_BEGINNING, TopicPartition

    from freight.config import load_settings
    from freight.errors import EventDecodeError
    from freight.kafka import KafkaAdmin

    settings = settings or load_settings()
    admin = KafkaAdmin(settings)
    ends = {p: high for p, (low, high) in admin.watermarks(topic).items() if high > low}
    own_serde = serde is None
    if serde is None:
        from freight.schemas.serde import EventSerde

        serde = EventSerde.from_settings(settings)
    consumer = admin.probe_consumer()
    letters: list[DeadLetter] = []
    try:
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
        deadline = time.monotonic() + timeout
        left = dict(ends)
        while left:
            if time.monotonic() > deadline:
                raise FreightError(f"reading dead-letter topic {topic!r} timed out; still to read: {left}")
            for msg in consumer.consume(500, timeout=0.2):
                if msg.error() is not None:
                    continue
                partition, offset = msg.partition() or 0, msg.offset() or 0
                if offset + 1 >= left.get(partition, 0):
                    left.pop(partition, None)
                raw_headers = msg.headers() or []
                pairs = raw_headers.items() if isinstance(raw_headers, dict) else raw_headers
                headers = {k: _text(v) for k, v in pairs}
                value = msg.value() or b""
                try:
                    event: ObjectEvent | None = serde.decode(topic, value)
                except EventDecodeError:
                    event = None
                letters.append(
                    DeadLetter(
                        source_topic=headers.get("freight.source.topic", ""),
                        source_partition=int(headers.get("freight.source.partition", "-1")),
                        source_offset=int(headers.get("freight.source.offset", "-1")),
                        error={
                            k.removeprefix(HEADER_PREFIX): v
                            for k, v in headers.items()
                            if k.startswith(HEADER_PREFIX)
                        },
                        event=event,
                        value=value,
                        partition=partition,
                        offset=offset,
                        headers=headers,
                    )
                )
    finally:
        consumer.close()
        if own_serde:
            serde.close()
    return sorted(letters, key=lambda d: (d.partition, d.offset))


def _text(value: str | bytes | None) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else value.decode(errors="replace")
