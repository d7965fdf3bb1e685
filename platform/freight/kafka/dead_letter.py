"""Dead letters: one header convention and one writer, shared by the consumer's bad-record policy and
the pipeline's `KafkaDeadLetterSink`.

A record written to a dead-letter topic carries `freight.error` (what went wrong) and
`freight.source.topic/partition/offset` (where the original record sits), so any reader of a dead-letter
topic, whoever wrote it, finds the reason and the source the same way.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from confluent_kafka import KafkaError, Producer

from freight.errors import FreightError
from freight.kafka.admin import KafkaAdmin
from freight.kafka.clients import produce_when_room, producer_config

if TYPE_CHECKING:
    from freight.config import FreightSettings

Headers = list[tuple[str, str | bytes | None]]


def source_headers(reason: str, topic: str, partition: int | None, offset: int | None) -> Headers:
    """The headers every dead-lettered record carries.

    Args:
        reason: What went wrong, e.g. ``"ValueError: bad magic byte"``.
        topic: The topic of the original record.
        partition: Its partition.
        offset: Its offset.

    Returns:
        Kafka headers, values encoded as UTF-8.
    """
    return [
        ("freight.error", reason.encode()),
        ("freight.source.topic", topic.encode()),
        ("freight.source.partition", str(partition).encode()),
        ("freight.source.offset", str(offset).encode()),
    ]


class DeadLetterWriter:
    """Writes records to dead-letter topics, creating each topic on first use, and waits for the broker.

    The one writer behind both dead-letter paths: the consumer's bad-record policy and the pipeline's
    `KafkaDeadLetterSink`. Thread-safe. A record the broker did not acknowledge is an error, never a silent
    loss: the caller has not moved past the original record yet.

    Args:
        settings: The cluster to write to.
        partitions: Partitions of a dead-letter topic this writer creates.
        kafka_config: librdkafka producer overrides.
        timeout: Seconds to wait for each acknowledgement.
    """

    def __init__(
        self,
        settings: FreightSettings,
        *,
        partitions: int = 1,
        kafka_config: Mapping[str, Any] | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.settings = settings
        self.partitions = partitions
        self.timeout = timeout
        self._kafka_config = dict(kafka_config or {})
        self._producer: Producer | None = None
        self._topics: set[str] = set()
        self._lock = threading.Lock()

    def write(self, topic: str, key: bytes | None, value: bytes | None, headers: Headers, what: str) -> None:
        """Write one record and wait until the broker acknowledged it.

        Args:
            topic: The dead-letter topic (created if missing).
            key: The record's key.
            value: The record's value.
            headers: Its headers (`source_headers(...)` and any more).
            what: What is written, for the error message (e.g. "the bad record at topic 't' offset 5").

        Raises:
            FreightError: the broker did not acknowledge the record within `timeout`.
        """
        producer = self._prepare(topic)
        outcome: list[KafkaError | None] = []
        produce_when_room(
            producer,
            topic,
            key=key,
            value=value,
            headers=headers,
            on_delivery=lambda err, _msg: outcome.append(err),
        )
        left = producer.flush(self.timeout)
        if left or not outcome or outcome[0] is not None:
            reason = outcome[0] if outcome else f"not acknowledged within {self.timeout:g}s"
            raise FreightError(f"could not write {what} to dead-letter topic {topic!r}: {reason}")

    def _prepare(self, topic: str) -> Producer:
        with self._lock:
            if self._producer is None:
                self._producer = Producer(
                    producer_config(self.settings, {"linger.ms": 0, **self._kafka_config})
                )
            if topic not in self._topics:
                KafkaAdmin(self.settings).create_topic(topic, self.partitions)  # exists already: fine
                self._topics.add(topic)
            return self._producer

    def close(self) -> None:
        """Flush and release the producer (writing again later opens a new one)."""
        with self._lock:
            if self._producer is not None:
                self._producer.flush(self.timeout)
                self._producer = None
