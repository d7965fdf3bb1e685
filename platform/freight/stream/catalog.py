"""The store catalog: store configs in a compacted Kafka topic, so any process can rebuild a store by name.

Each record is keyed by store name, its value an Avro `freight.v1.StoreConfig` (connector kind and
non-secret options only; credentials come from each process's environment). Readers load the topic from
the beginning to its end and keep the last config per name, which is exactly what compaction retains.
"""

from __future__ import annotations

import json
import threading
import time
from typing import TYPE_CHECKING, Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from freight.config import FreightSettings
from freight.errors import ConfigError, DeliveryError
from freight.kafka import KafkaAdmin, consumer_config, producer_config
from freight.schemas import STORE_CONFIG
from freight.schemas.events import now_ms

if TYPE_CHECKING:
    from freight.schemas.serde import EventSerde
    from freight.stores import Store, StoreConfig

STORES_TOPIC = "_freight_stores"
_TOPIC_CONFIG = {"cleanup.policy": "compact", "min.compaction.lag.ms": "0", "segment.ms": "3600000"}


class StoreCatalog:
    """Publish and look up store configs on one cluster."""

    def __init__(self, settings: FreightSettings, *, serde: EventSerde | None = None) -> None:
        self.settings = settings
        self._serde = serde
        self._configs: dict[str, StoreConfig] = {}
        self._published: dict[str, str] = {}  # name -> JSON of what this process last published
        self._lock = threading.Lock()
        self._topic_ready = False

    @property
    def serde(self) -> EventSerde:
        if self._serde is None:
            from freight.schemas.serde import EventSerde

            self._serde = EventSerde.from_settings(self.settings)
        return self._serde

    def _ensure_topic(self) -> None:
        if not self._topic_ready:
            KafkaAdmin(self.settings).create_topic(STORES_TOPIC, 1, config=_TOPIC_CONFIG)
            self._topic_ready = True

    def publish(self, config: StoreConfig) -> None:
        """Write a store config (once per distinct config per process); waits for the broker's ack."""
        fingerprint = config.model_dump_json()
        if self._published.get(config.name) == fingerprint:
            return
        self._ensure_topic()
        record: dict[str, Any] = {
            "name": config.name,
            "connector": config.connector,
            "options": json.dumps(config.options, sort_keys=True),
            "checksum": config.checksum,
            "updated_at": now_ms(),
        }
        value = self.serde.encode_record(STORES_TOPIC, STORE_CONFIG, record)
        producer = Producer(producer_config(self.settings, {"linger.ms": 0}))
        errors: list[str] = []
        producer.produce(
            STORES_TOPIC,
            key=config.name.encode(),
            value=value,
            on_delivery=lambda err, _msg: errors.append(str(err)) if err else None,
        )
        if producer.flush(30) or errors:
            raise DeliveryError(
                f"could not publish the config of store {config.name!r}: {errors or 'timeout'}"
            )
        with self._lock:
            self._configs[config.name] = config
            self._published[config.name] = fingerprint

    def refresh(self) -> dict[str, StoreConfig]:
        """Read the whole catalog topic (start to current end) and return name -> config."""
        from freight.stores import StoreConfig

        self._ensure_topic()
        conf = consumer_config(self.settings, "freight-store-catalog", {"enable.auto.commit": False})
        consumer = Consumer(conf)
        try:
            low, high = consumer.get_watermark_offsets(TopicPartition(STORES_TOPIC, 0), timeout=10)
            configs: dict[str, StoreConfig] = {}
            if high > low:
                consumer.assign([TopicPartition(STORES_TOPIC, 0, OFFSET_BEGINNING)])
                deadline = time.monotonic() + 30
                position = low
                while position < high and time.monotonic() < deadline:
                    for msg in consumer.consume(500, timeout=0.5):
                        if msg.error() is not None:
                            continue
                        position = (msg.offset() or 0) + 1
                        name = (msg.key() or b"").decode()
                        value = msg.value()
                        if value is None:  # tombstone: the store was removed
                            configs.pop(name, None)
                            continue
                        rec = self.serde.decode_record(STORES_TOPIC, value)
                        configs[name] = StoreConfig(
                            name=rec["name"],
                            connector=rec["connector"],
                            options=json.loads(rec["options"]),
                            checksum=rec.get("checksum"),
                        )
        finally:
            consumer.close()
        with self._lock:
            self._configs.update(configs)
        return configs

    def lookup(self, name: str) -> StoreConfig:
        """The config of store `name` (re-reading the topic if it is not known yet)."""
        found = self._configs.get(name)
        if found is None:
            self.refresh()
            found = self._configs.get(name)
        if found is None:
            known = ", ".join(sorted(self._configs)) or "none"
            raise ConfigError(
                f"store {name!r} is not in the store catalog (topic {STORES_TOPIC!r} on "
                f"{self.settings.kafka_bootstrap}; known stores: {known}). The producer publishes it on "
                "first send; check that this process uses the same cluster, or pass the store to the "
                "consumer."
            )
        return found

    def build(self, name: str) -> Store:
        """A working `Store` for `name`, with credentials from this process's environment."""
        from freight.stores import Store

        return Store.from_config(self.lookup(name))
