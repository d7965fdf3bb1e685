"""The keep ledger: references to `never`-mode objects, so they outlive their events.

The orphan sweep deletes stored objects that no event in the log refers to (orphans, and objects whose events
Kafka retention or `delete_records` dropped: that is how `retention`-mode objects go). A `never`-mode object
must survive its event, so whenever the evictor or the sweep reads a `never` event it records it here first:
the compacted topic `_freight_evictor_ledger`, keyed by `store/key`, whose values are the events themselves
(Avro `freight.v1.ObjectEvent`, with the source topic, partition and offset in the metadata). Writes are
idempotent (same key, same value), so two evictors may record the same event.
"""

from __future__ import annotations

import threading
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Message, Producer, TopicPartition

from freight.config import FreightSettings
from freight.errors import DeliveryError, EventDecodeError, FreightError
from freight.eviction.reader import fetch
from freight.kafka import (
    KafkaAdmin,
    consumer_config,
    produce_when_room,
    producer_config,
    translate_kafka_error,
)
from freight.schemas.events import ObjectEvent
from freight.schemas.serde import EventSerde

LEDGER_TOPIC = "_freight_evictor_ledger"
_TOPIC_CONFIG = {"cleanup.policy": "compact", "min.compaction.lag.ms": "0", "segment.ms": "3600000"}
SOURCE_TOPIC = "freight.evict.source.topic"
SOURCE_PARTITION = "freight.evict.source.partition"
SOURCE_OFFSET = "freight.evict.source.offset"


class KeepLedger:
    """Record and list the `never`-mode objects of one cluster (see the module docstring)."""

    def __init__(
        self,
        settings: FreightSettings,
        serde: EventSerde,
        *,
        topic: str = LEDGER_TOPIC,
        admin: KafkaAdmin | None = None,
    ) -> None:
        self.settings = settings
        self._admin = admin
        self.serde = serde
        self.topic = topic
        self._kept: dict[str, set[str]] = {}  # store -> keys
        self._position = 0
        self._consumer: Consumer | None = None
        self._producer: Producer | None = None
        self._errors: list[str] = []
        self._lock = threading.Lock()
        self._ready = False

    def _ensure_topic(self) -> None:
        if not self._ready:
            (self._admin or KafkaAdmin(self.settings)).create_internal_topic(self.topic, config=_TOPIC_CONFIG)
            self._ready = True

    def record(self, topic: str, partition: int, offset: int, event: ObjectEvent) -> None:
        """Queue a `never` object's event for the ledger; `flush()` waits for it."""
        ref = event.object
        if ref is None:
            return
        self._ensure_topic()
        if self._producer is None:
            self._producer = Producer(producer_config(self.settings, {"linger.ms": 5}))
        meta = dict(event.metadata)
        meta.update({SOURCE_TOPIC: topic, SOURCE_PARTITION: str(partition), SOURCE_OFFSET: str(offset)})
        copy = ObjectEvent(
            stream=event.stream,
            sequence=event.sequence,
            producer_id=event.producer_id,
            kind=event.kind,
            object=ref,
            descriptor=event.descriptor,
            metadata=meta,
            created_at=event.created_at,
        )
        value = self.serde.encode(self.topic, copy)

        def done(err: object, _msg: Message) -> None:
            if err is not None:
                self._errors.append(str(err))

        produce_when_room(
            self._producer, self.topic, value, key=f"{ref.store}/{ref.key}".encode(), on_delivery=done
        )
        with self._lock:
            self._kept.setdefault(ref.store, set()).add(ref.key)

    def flush(self, timeout: float = 60.0) -> None:
        """Wait until every recorded reference is acknowledged; raise if any failed."""
        if self._producer is None:
            return
        left = self._producer.flush(timeout)
        errors, self._errors = self._errors, []
        if left or errors:
            raise DeliveryError(
                f"could not record kept objects in {self.topic!r}: {errors[:1] or f'{left} unacknowledged'}; "
                f"is the broker at {self.settings.kafka_bootstrap} up? (`freight dev status`)"
            )

    def refresh(self, timeout: float = 60.0) -> dict[str, set[str]]:
        """Read what was added since the last call; return store -> kept keys."""
        self._ensure_topic()
        if self._consumer is None:
            conf = consumer_config(self.settings, "freight-evictor-ledger", {"enable.auto.commit": False})
            self._consumer = Consumer(conf)
            self._consumer.assign([TopicPartition(self.topic, 0, OFFSET_BEGINNING)])
        try:
            _low, high = self._consumer.get_watermark_offsets(TopicPartition(self.topic, 0), timeout=10)
        except KafkaException as exc:
            raise translate_kafka_error(exc, self.settings.kafka_bootstrap, "read the keep ledger") from exc
        deadline = time.monotonic() + timeout
        while self._position < high:
            if time.monotonic() > deadline:
                raise FreightError(f"reading {self.topic!r} stalled at offset {self._position} of {high}")
            for msg in fetch(self._consumer, 500, 0.2):
                if msg.error() is not None:
                    continue
                self._position = (msg.offset() or 0) + 1
                try:
                    store, _, key = (msg.key() or b"").decode().partition("/")
                except UnicodeDecodeError:  # not written by Freight: skip it (docs/security.md)
                    continue
                value = msg.value()
                with self._lock:
                    if value is None:
                        self._kept.get(store, set()).discard(key)
                        continue
                    try:
                        self.serde.decode(self.topic, value)
                    except EventDecodeError:
                        continue
                    self._kept.setdefault(store, set()).add(key)
        with self._lock:
            return {s: set(k) for s, k in self._kept.items()}

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush(10)
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
