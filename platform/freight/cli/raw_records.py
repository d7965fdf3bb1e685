"""`freight consume --raw`: read a topic's records as Kafka has them, without Freight decoding.

What a user reaches for when a record is not a Freight event (written by another tool, corrupt, a
tombstone): offset, key, headers and value, as kcat shows them. No group, no commits: it looks, it never
moves anybody's position.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from freight.cli.record_format import Row
from freight.config import FreightSettings
from freight.errors import ConfigError
from freight.kafka import KafkaAdmin
from freight.kafka.clients import base_config
from freight.kafka.errors import translate_kafka_error


def start_offsets(
    admin: KafkaAdmin,
    topic: str,
    *,
    partition: int | None,
    offset: int | None,
    timestamp_ms: int | None,
) -> dict[int, int]:
    """Where to start reading per partition: the log start unless an offset or a time is given.

    Args:
        admin: the cluster's admin.
        topic: the topic (must exist).
        partition: only this partition (None: every one).
        offset: start at this offset (in every partition read).
        timestamp_ms: start at the first record at/after this time.

    Returns:
        The start offset per partition (OFFSET_BEGINNING for the log start).

    Raises:
        ConfigError: the topic or the partition does not exist.
    """
    parts = check_partition(admin, topic, partition)
    if timestamp_ms is not None:
        by_time = admin.offsets_for_time(topic, timestamp_ms)
        return {p: by_time[p] for p in parts}
    return {p: OFFSET_BEGINNING if offset is None else offset for p in parts}


def check_partition(admin: KafkaAdmin, topic: str, partition: int | None) -> list[int]:
    """The partitions to read: all of `topic`'s, or just `partition` if the topic has it (else exit 2)."""
    parts = admin.partitions(topic)
    if partition is None:
        return parts
    if partition not in parts:
        raise ConfigError(
            f"topic {topic!r} has partitions {parts[0]}..{parts[-1]}; "
            f"--partition {partition} is not one of them"
        )
    return [partition]


def read_raw(
    settings: FreightSettings,
    topic: str,
    starts: dict[int, int],
    *,
    idle_timeout: float | None,
) -> Iterator[Row]:
    """Records of `topic` from `starts`, until `idle_timeout` seconds pass without one (None: forever).

    Args:
        settings: the cluster (and client properties).
        topic: the topic.
        starts: start offset per partition (from `start_offsets`).
        idle_timeout: seconds without a record after which reading stops; None waits forever.

    Yields:
        One `Row` per record, with its key, value and headers as bytes.
    """
    consumer = Consumer(
        base_config(settings, quiet=True)
        | {"group.id": "freight-raw", "enable.auto.commit": False, "auto.offset.reset": "earliest"}
    )
    try:
        consumer.assign([TopicPartition(topic, p, o) for p, o in sorted(starts.items())])
        last = time.monotonic()
        while idle_timeout is None or time.monotonic() - last < idle_timeout:
            try:
                msg = consumer.poll(0.2)
            except KafkaException as exc:
                raise translate_kafka_error(exc, settings.kafka_bootstrap, "read records") from exc
            if msg is None:
                continue
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    continue
                raise translate_kafka_error(KafkaException(err), settings.kafka_bootstrap, "read records")
            last = time.monotonic()
            raw_headers = msg.headers() or []
            pairs = raw_headers.items() if isinstance(raw_headers, dict) else raw_headers
            yield Row(
                topic=msg.topic() or topic,
                partition=msg.partition() or 0,
                offset=msg.offset() or 0,
                timestamp=msg.timestamp()[1],
                key=msg.key(),
                value=msg.value(),
                headers=[
                    (name, value.encode() if isinstance(value, str) else value) for name, value in pairs
                ],
            )
    finally:
        consumer.close()
