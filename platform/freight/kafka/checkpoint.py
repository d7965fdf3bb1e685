"""The evictor's checkpoint format, and why an object is missing: what Kafka alone can tell.

The evictor commits its position per partition in its own consumer group (`EVICTOR_GROUP`) with JSON
metadata (the watermark it computed, when, and the stores the partition's events named). A reader that meets
a missing object asks that group whether the evictor passed the event (`explain_missing`). This module needs
nothing but Kafka, so the stream layer explains a missing object without importing the evictor.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from confluent_kafka import Consumer, TopicPartition

from freight.config import FreightSettings, load_settings
from freight.kafka.admin import KafkaAdmin
from freight.kafka.clients import consumer_config

#: Default consumer group of the evictor's checkpoint.
EVICTOR_GROUP = "freight-evictor"
#: Commit metadata is limited by the broker (`offset.metadata.max.bytes`, 4096 by default).
_METADATA_LIMIT = 3500


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The evictor's committed position on a partition, the watermark it was computed under, when, and the
    stores the partition's events have named (so the orphan sweep finds them after the events are gone)."""

    offset: int
    watermark: int | None = None
    at_ms: int | None = None
    stores: tuple[str, ...] = ()


def checkpoint_metadata(watermark: int, stores: Iterable[str] = ()) -> str:
    """Commit metadata of an evictor checkpoint (store names are dropped beyond the metadata limit)."""
    names: list[str] = []
    for name in sorted(set(stores)):
        names.append(name)
        if len(json.dumps(names)) > _METADATA_LIMIT:
            names.pop()
            break
    return json.dumps(
        {"v": 1, "w": watermark, "at": int(time.time() * 1000), "s": names}, separators=(",", ":")
    )


def parse_checkpoint(offset: int, text: str | None) -> Checkpoint:
    """A `Checkpoint` from a committed offset and its metadata (anything unreadable is left out)."""
    try:
        doc = json.loads(text or "")
        return Checkpoint(offset, int(doc["w"]), int(doc["at"]), tuple(str(s) for s in doc.get("s", ())))
    except (ValueError, KeyError, TypeError, AttributeError):
        return Checkpoint(offset)


def explain_missing(
    topic: str,
    partition: int,
    offset: int,
    eviction: str = "WATERMARK",
    *,
    settings: FreightSettings | None = None,
    group: str = EVICTOR_GROUP,
) -> str:
    """Why the object of the event at `topic[partition]@offset` is not in its store, as far as Kafka tells.

    "evicted by policy" when the evictor's checkpoint has passed the offset (with the watermark and time of
    that checkpoint); otherwise the evictor did not delete it (an `on-resolve` object was resolved before,
    or the write was lost, or something outside Freight deleted it).
    """
    settings = settings or load_settings()
    admin = KafkaAdmin(settings)
    consumer = Consumer(consumer_config(settings, group, {"enable.auto.commit": False}))
    try:
        (tp,) = consumer.committed([TopicPartition(topic, partition)], timeout=10)
    finally:
        consumer.close()
    checkpoint = tp.offset if tp.offset >= 0 else None
    if checkpoint is not None and offset < checkpoint:
        ck = parse_checkpoint(tp.offset, tp.metadata)
        when = (
            f" at {datetime.fromtimestamp(ck.at_ms / 1000).astimezone().isoformat(timespec='seconds')}"
            if ck.at_ms is not None
            else ""
        )
        under = f" under watermark {ck.watermark}" if ck.watermark is not None else ""
        return (
            f"evicted by policy: every retaining group had committed past it and the evictor (group "
            f"{group!r}) passed offset {checkpoint}{under}{when}"
        )
    if str(eviction).upper().replace("-", "_") == "ON_RESOLVE":  # an EvictionMode or its name
        return (
            "an on-resolve object: it was resolved and then deleted (once the resolving group committed past "
            "it, or at once for a consumer without a group)"
        )
    low = admin.watermarks(topic).get(partition, (0, 0))[0]
    if offset < low:
        return (
            f"its event is below the log start ({low}): Kafka retention dropped it, then the orphan sweep "
            "deleted the object"
        )
    return (
        f"not evicted by Freight's evictor (its checkpoint on {topic}[{partition}] is "
        f"{'unset' if checkpoint is None else checkpoint}): the write was lost, or it was deleted outside "
        "Freight"
    )
