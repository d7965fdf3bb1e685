"""librdkafka configuration dictionaries for Freight's producers and consumers.

Defaults favour throughput with safety (idempotent producer, acks=all, lz4, linger) and at-least-once
consumption (offsets stored explicitly, committed in the background). User properties from the settings
(`FREIGHT_KAFKA_PROPERTIES`, the config file) and explicit `overrides` are applied last, untouched.
"""

from __future__ import annotations

import logging
from typing import Any

from freight.config import FreightSettings

#: librdkafka's own log lines go through Python logging under this name (never raw to stderr).
LIBRDKAFKA_LOGGER = logging.getLogger("freight.librdkafka")
#: For probes that expect failures (readiness polling, health checks): their noise is dropped.
QUIET_LOGGER = logging.getLogger("freight.librdkafka.quiet")
QUIET_LOGGER.setLevel(logging.CRITICAL)
QUIET_LOGGER.propagate = False


def base_config(
    settings: FreightSettings, overrides: dict[str, Any] | None = None, *, quiet: bool = False
) -> dict[str, Any]:
    """Bootstrap servers plus the user's pass-through client properties."""
    conf: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_bootstrap,
        "logger": QUIET_LOGGER if quiet else LIBRDKAFKA_LOGGER,
    }
    conf.update(settings.client_properties())
    conf.update(overrides or {})
    return conf


def producer_config(settings: FreightSettings, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """An idempotent producer tuned for batching small events."""
    conf: dict[str, Any] = {
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "batch.size": 1_000_000,
        "compression.type": "lz4",
        "message.max.bytes": 67_108_864,
        "queue.buffering.max.kbytes": 262_144,
        "delivery.timeout.ms": 120_000,
    }
    conf.update(base_config(settings))
    conf.update(overrides or {})
    return conf


def consumer_config(
    settings: FreightSettings, group_id: str, overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A group consumer whose offsets are stored by Freight and committed in the background."""
    conf: dict[str, Any] = {
        "group.id": group_id,
        "enable.auto.commit": True,
        "enable.auto.offset.store": False,
        "auto.commit.interval.ms": 1000,
        "auto.offset.reset": "earliest",
        "fetch.max.bytes": 67_108_864,
        "max.partition.fetch.bytes": 67_108_864,
        "fetch.wait.max.ms": 50,
        "session.timeout.ms": 10_000,
        "heartbeat.interval.ms": 1000,
    }
    conf.update(base_config(settings))
    conf.update(overrides or {})
    return conf


def produce_when_room(
    producer: Any, topic: str, value: bytes | None, *, wait_s: float = 0.05, **kwargs: Any
) -> None:
    """`producer.produce(topic, value, **kwargs)`, serving deliveries while librdkafka's local queue is full.

    `produce` raises BufferError when the queue (`queue.buffering.max.*`) is full; polling lets acknowledged
    messages leave it. Anything else `produce` raises is the caller's to handle.
    """
    while True:
        try:
            producer.produce(topic, value, **kwargs)
            return
        except BufferError:
            producer.poll(wait_s)
