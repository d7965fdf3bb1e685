"""The eviction watermark of each partition: the lowest offset some retaining group still needs.

    watermark(p) = min over retaining groups g of committed(g, p), clamped to [log start, high watermark]

A retaining group that never committed on `p` holds the whole partition (its term is the log start), so a
group that has not started yet keeps everything. With no retaining group at all nothing is evicted: the
evictor never guesses. Every event below the watermark has been committed past by every retaining group;
stream buffers commit the oldest offset their open windows still need, so objects of open windows stay.

`retaining_groups` picks the groups of a policy: those it names, plus (with `all_committed_groups`) every
group with a committed offset on the topic, minus the excluded ones and Freight's own groups (the evictor's
checkpoint group would otherwise hold itself back). This module is pure: `GroupOffsets` is gathered by
`read_group_offsets` (admin calls) and passed in, so the computation is unit-tested without a broker.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from freight.eviction.policy import RetentionPolicy
from freight.kafka import KafkaAdmin
from freight.kafka.checkpoint import EVICTOR_GROUP

#: Groups Freight itself uses for bookkeeping; never retaining.
INTERNAL_GROUP_PREFIXES = (
    "freight-evictor",
    "freight-probe",
    "freight-store-catalog",
    "freight-retention",
    "freight-replay-",
)

#: group -> {(topic, partition): committed offset}; partitions never committed are absent.
GroupOffsets = Mapping[str, Mapping[tuple[str, int], int]]


def is_internal_group(group: str, evictor_group: str = EVICTOR_GROUP) -> bool:
    """True for the evictor's own group and Freight's bookkeeping groups."""
    return group == evictor_group or group.startswith(INTERNAL_GROUP_PREFIXES)


def retaining_groups(
    policy: RetentionPolicy, offsets: GroupOffsets, evictor_group: str = EVICTOR_GROUP
) -> list[str]:
    """The groups holding `policy.topic`'s objects: named ones, plus committed ones if the policy says so."""
    chosen = dict.fromkeys(policy.groups)
    if policy.all_committed_groups:
        for group, committed in sorted(offsets.items()):
            if any(t == policy.topic for t, _ in committed):
                chosen.setdefault(group)
    excluded = set(policy.exclude_groups)
    return [
        g
        for g in chosen
        if g not in excluded and (g in policy.groups or not is_internal_group(g, evictor_group))
    ]


@dataclass(frozen=True, slots=True)
class GroupPosition:
    """One retaining group on one partition: its committed offset (None: never), lag, and whether it sets
    the watermark."""

    group: str
    committed: int | None
    lag: int
    holds_watermark: bool


@dataclass(frozen=True, slots=True)
class PartitionWatermark:
    """The watermark of one partition and how it came about."""

    topic: str
    partition: int
    low: int
    high: int
    watermark: int
    groups: tuple[GroupPosition, ...] = field(default_factory=tuple)

    @property
    def retained(self) -> int:
        """Offsets at or above the watermark (still needed by some group)."""
        return self.high - self.watermark

    def blocking(self) -> list[str]:
        """Why the watermark is not at the high watermark: the groups holding it, in words."""
        if not self.groups:
            return ["no retaining group (name one: `freight evict policy set T --group G`)"]
        if self.watermark >= self.high:
            return []
        reasons = []
        for g in self.groups:
            if not g.holds_watermark:
                continue
            if g.committed is None:
                reasons.append(f"group {g.group} never committed here: it holds everything")
            else:
                reasons.append(f"group {g.group} at offset {g.committed} (lag {g.lag})")
        return reasons


def partition_watermark(
    topic: str,
    partition: int,
    low: int,
    high: int,
    groups: Iterable[str],
    offsets: GroupOffsets,
) -> PartitionWatermark:
    """The watermark of one partition for these retaining groups (see the module docstring)."""
    terms: list[tuple[str, int | None, int]] = []
    for group in groups:
        committed = offsets.get(group, {}).get((topic, partition))
        effective = low if committed is None else min(max(committed, low), high)
        terms.append((group, committed, effective))
    watermark = min((e for _, _, e in terms), default=low)
    positions = tuple(
        GroupPosition(
            group=g,
            committed=c,
            lag=max(high - e, 0),
            holds_watermark=e == watermark,
        )
        for g, c, e in terms
    )
    return PartitionWatermark(topic, partition, low, high, watermark, positions)


def topic_watermarks(
    policy: RetentionPolicy,
    log_offsets: Mapping[int, tuple[int, int]],
    offsets: GroupOffsets,
    evictor_group: str = EVICTOR_GROUP,
) -> list[PartitionWatermark]:
    """Watermarks of every partition of `policy.topic`; `log_offsets` is partition -> (low, high)."""
    groups = retaining_groups(policy, offsets, evictor_group)
    return [
        partition_watermark(policy.topic, p, low, high, groups, offsets)
        for p, (low, high) in sorted(log_offsets.items())
    ]


def read_group_offsets(
    admin: KafkaAdmin, policies: Iterable[RetentionPolicy], evictor_group: str = EVICTOR_GROUP
) -> dict[str, dict[tuple[str, int], int]]:
    """Committed offsets of the groups these policies may retain for: the named ones, plus every group on
    the cluster (Freight's own skipped) when a policy retains for all committed groups.

    One admin call per group; a named group the cluster does not know has committed nothing.
    """
    chosen = list(policies)
    named = {g for p in chosen for g in p.groups}
    everyone = any(p.all_committed_groups for p in chosen)
    known = admin.list_groups()
    out: dict[str, dict[tuple[str, int], int]] = {}
    for group in known:
        if group in named or (everyone and not is_internal_group(group, evictor_group)):
            out[group] = admin.committed(group)
    for group in named:
        out.setdefault(group, {})
    return out
