"""`freight evict --status`: per topic and partition, the watermark, every retaining group's committed offset
and lag, the evictor's checkpoint and lag, objects and bytes held, and what blocks eviction.

"Held" objects are the stored (not inline) objects of the events from the evictor's checkpoint to the high
watermark, found by reading those events (at most `scan_limit` per partition; the figures then say so).
Per store, the objects and bytes under the topic's key prefix are listed too: that total also counts
`never`/`retention` objects below the checkpoint and orphans. `explain_missing` (in
freight.kafka.checkpoint) tells a replay that hits a missing object whether the evictor removed it by policy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from freight.connectors.keys import safe_key_part
from freight.errors import FreightError, ServiceUnavailableError
from freight.eviction.decisions import Action, decide
from freight.eviction.policy import RetentionPolicy, format_duration
from freight.eviction.reader import TP, RangeReader
from freight.eviction.watermark import GroupPosition, PartitionWatermark
from freight.schemas.events import EvictionMode, now_ms


@dataclass
class PartitionStatus:
    """Eviction state of one partition."""

    partition: int
    low: int
    high: int
    watermark: int
    checkpoint: int
    groups: list[GroupPosition]
    held_objects: int = 0
    held_bytes: int = 0
    evictable_objects: int = 0
    scan_truncated: bool = False
    blocking: list[str] = field(default_factory=list)

    @property
    def evictor_lag(self) -> int:
        """Offsets below the watermark the evictor has not passed."""
        return max(self.watermark - self.checkpoint, 0)


@dataclass
class StoreUsage:
    """Objects and bytes under the topic's key prefix in one store."""

    store: str
    objects: int = 0
    bytes: int = 0
    error: str | None = None


@dataclass
class TopicStatus:
    """Eviction state of one topic."""

    topic: str
    policy: dict[str, Any]
    partitions: list[PartitionStatus] = field(default_factory=list)
    stores: list[StoreUsage] = field(default_factory=list)
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        for p, part in zip(doc["partitions"], self.partitions, strict=True):
            p["evictor_lag"] = part.evictor_lag
        return doc


def blocking_reasons(
    wm: PartitionWatermark, checkpoint: int, waiting: tuple[int, float] | None, min_age_s: float
) -> list[str]:
    """Why objects are still held on a partition, most immediate first."""
    reasons: list[str] = []
    if waiting is not None:
        offset, age = waiting
        reasons.append(
            f"min age: the object at offset {offset} is {format_duration(round(age, 1))} old, the policy "
            f"keeps objects {format_duration(min_age_s)}"
        )
    elif checkpoint < wm.watermark:
        reasons.append(
            f"evictor behind: {wm.watermark - checkpoint} offset(s) below the watermark not passed yet "
            "(run `freight evict --once`, or keep `freight evict serve` running)"
        )
    reasons.extend(wm.blocking())
    return reasons


def topic_status(
    policy: RetentionPolicy,
    marks: list[PartitionWatermark],
    checkpoints: Mapping[TP, int],
    reader: RangeReader,
    store: Any,
    *,
    scan_limit: int = 100_000,
    list_stores: bool = True,
) -> TopicStatus:
    """The status of one topic from its watermarks and the evictor's checkpoints (reads events and stores)."""
    status = TopicStatus(policy.topic, policy.describe())
    ranges: dict[TP, tuple[int, int]] = {}
    by_tp: dict[TP, PartitionStatus] = {}
    for wm in marks:
        tp = (policy.topic, wm.partition)
        ckpt = max(checkpoints.get(tp, wm.low), wm.low)
        part = PartitionStatus(wm.partition, wm.low, wm.high, wm.watermark, ckpt, list(wm.groups))
        by_tp[tp] = part
        status.partitions.append(part)
        end = min(wm.high, ckpt + scan_limit)
        part.scan_truncated = end < wm.high
        ranges[tp] = (ckpt, end)
    stores: set[str] = set(policy.orphan_stores)
    waiting: dict[TP, tuple[int, float]] = {}
    now = now_ms()
    min_age_ms = round(policy.min_age_s * 1000)
    for records in reader.read(ranges):
        for rec in records:
            event = rec.event
            if event is None or event.object is None:
                continue
            tp = (rec.topic, rec.partition)
            part = by_tp[tp]
            stores.add(event.object.store)
            part.held_objects += 1
            part.held_bytes += event.object.size
            if rec.offset < part.watermark and event.object.eviction is not EvictionMode.NEVER:
                action = decide(event, now, min_age_ms)
                if action is Action.DELETE:
                    part.evictable_objects += 1
                elif action is Action.WAIT and tp not in waiting:
                    waiting[tp] = (rec.offset, (now - event.created_at) / 1000)
    for wm in marks:
        tp = (policy.topic, wm.partition)
        part = by_tp[tp]
        part.blocking = blocking_reasons(wm, part.checkpoint, waiting.get(tp), policy.min_age_s)
    if list_stores:
        prefix = safe_key_part(policy.topic) + "/"
        for name in sorted(stores):
            usage = StoreUsage(name)
            try:
                for info in store(name).connector.list(prefix):
                    usage.objects += 1
                    usage.bytes += info.size
            except ServiceUnavailableError:
                raise
            except FreightError as exc:
                usage.error = str(exc)
            status.stores.append(usage)
    return status
