"""Replay: where to start reading. Seek targets by position, offset or timestamp, and offset resets of a
stopped consumer group (what `freight groups reset-offsets` applies)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from freight.config import FreightSettings
from freight.errors import ConfigError
from freight.kafka import KafkaAdmin

Position = Literal["beginning", "end", "earliest", "latest"]


def seek_targets(
    admin: KafkaAdmin,
    topic: str,
    partitions: Iterable[int],
    *,
    to: Position | None = None,
    offset: int | None = None,
    timestamp_ms: int | None = None,
) -> dict[int, int]:
    """Absolute offsets per partition for exactly one of: a position, an offset, a timestamp.

    Offsets are clamped to [log start, high watermark], so a reset never points below what Kafka still has.
    A timestamp maps to the first record at or after it (the high watermark where there is none).
    """
    if sum(x is not None for x in (to, offset, timestamp_ms)) != 1:
        raise ConfigError("seek needs exactly one of to='beginning'|'end', offset=N or timestamp=ms")
    parts = sorted(partitions)
    marks = admin.watermarks(topic)
    unknown = [p for p in parts if p not in marks]
    if unknown:
        raise ConfigError(f"topic {topic!r} has no partition(s) {unknown}; it has {sorted(marks)}")
    if to is not None:
        if to not in ("beginning", "end", "earliest", "latest"):
            raise ConfigError(f"unknown seek position {to!r}; use 'beginning' or 'end'")
        first = to in ("beginning", "earliest")
        return {p: marks[p][0] if first else marks[p][1] for p in parts}
    if offset is not None:
        if offset < 0:
            raise ConfigError(f"offset must be >= 0, got {offset}")
        return {p: min(max(offset, marks[p][0]), marks[p][1]) for p in parts}
    assert timestamp_ms is not None
    by_time = admin.offsets_for_time(topic, timestamp_ms)
    return {p: by_time[p] if by_time[p] >= 0 else marks[p][1] for p in parts}


@dataclass
class ResetPlan:
    """New committed offsets for a group on one topic; `apply()` writes them (group must be stopped)."""

    admin: KafkaAdmin
    group: str
    topic: str
    current: Mapping[int, int]
    targets: Mapping[int, int]

    def apply(self) -> None:
        self.admin.alter_group_offsets(self.group, {(self.topic, p): o for p, o in self.targets.items()})


def plan_reset(
    settings: FreightSettings,
    group: str,
    topic: str,
    *,
    to: Position | None = None,
    offset: int | None = None,
    timestamp_ms: int | None = None,
    partitions: Iterable[int] | None = None,
) -> ResetPlan:
    """Compute (not apply) the offsets a reset would commit for `group` on `topic`."""
    admin = KafkaAdmin(settings)
    parts = list(partitions) if partitions else admin.partitions(topic)
    committed = admin.committed(group, topic)
    targets = seek_targets(admin, topic, parts, to=to, offset=offset, timestamp_ms=timestamp_ms)
    current = {p: committed[(topic, p)] for p in parts if (topic, p) in committed}
    return ResetPlan(admin, group, topic, current, targets)
