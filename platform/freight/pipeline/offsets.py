"""Per-partition contiguous-prefix offset tracking: commit only what is fully done.

Items are registered in the order the source hands them out; within a partition offsets strictly increase but
need not be consecutive (compacted topics, transaction markers). An item is marked done when its result was
consumed, or it was filtered, skipped or dead-lettered. The commit position of a partition is one past the
last item of the longest done prefix, so a restarted consumer replays exactly the unfinished items (and
possibly some done ones after the first unfinished: at-least-once). Memory is proportional to the number of
registered, not yet committed items, which the pipeline's window bounds.

Rebalances: when a partition is revoked, `forget` drops its state and returns its commit position; the
partition's generation moves on, so items registered before still finish but can no longer mark anything done
(`done` ignores a stale generation), and offsets of the partition may start again lower if it comes back.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from freight.errors import PipelineError
from freight.pipeline.source import PartitionKey


@dataclass
class _Partition:
    pending: deque[int] = field(default_factory=deque)  # registered, not yet in the done prefix, in order
    done_ahead: set[int] = field(default_factory=set)  # done, but behind an unfinished item
    last: int | None = None  # last registered offset
    position: int | None = None  # one past the done prefix
    committed: int | None = None  # last position handed to commit


class OffsetTracker:
    """Tracks, per (topic, partition), the offset one past the contiguous prefix of done items."""

    def __init__(self) -> None:
        self._parts: dict[PartitionKey, _Partition] = {}
        self._generations: dict[PartitionKey, int] = {}

    def generation(self, key: PartitionKey) -> int:
        """How many times `key` was forgotten: an item registered under an older generation is stale."""
        return self._generations.get(key, 0)

    def register(self, key: PartitionKey, offset: int) -> int:
        """Record that the item at `offset` entered the pipeline (in source order); return its generation."""
        part = self._parts.get(key)
        if part is None:
            part = self._parts[key] = _Partition()
        elif part.last is not None and offset <= part.last:
            raise PipelineError(
                f"offsets of {key[0]}[{key[1]}] went backwards: {offset} after {part.last}; a source "
                "must hand out each partition's items in increasing offset order (restart after a seek)"
            )
        part.pending.append(offset)
        part.last = offset
        return self._generations.get(key, 0)

    def done(self, key: PartitionKey, offset: int, generation: int | None = None) -> bool:
        """Mark the item done; True when the partition's commit position moved forward.

        With `generation` (what `register` returned), an item of a partition forgotten since is ignored.
        """
        if generation is not None and generation != self._generations.get(key, 0):
            return False
        part = self._parts.get(key)
        if part is None:
            raise PipelineError(f"{key[0]}[{key[1]}] offset {offset} marked done but never registered")
        if not part.pending or offset < part.pending[0]:
            raise PipelineError(f"{key[0]}[{key[1]}] offset {offset} marked done twice or never registered")
        if offset != part.pending[0]:
            part.done_ahead.add(offset)
            return False
        part.pending.popleft()
        position = offset + 1
        while part.pending and part.pending[0] in part.done_ahead:
            head = part.pending.popleft()
            part.done_ahead.discard(head)
            position = head + 1
        part.position = position
        return True

    def positions(self) -> dict[PartitionKey, int]:
        """Commit position of every partition with a done prefix."""
        return {key: p.position for key, p in self._parts.items() if p.position is not None}

    def uncommitted(self) -> dict[PartitionKey, int]:
        """Positions that moved past what was last handed to `mark_committed`."""
        return {
            key: p.position
            for key, p in self._parts.items()
            if p.position is not None and (p.committed is None or p.position > p.committed)
        }

    def mark_committed(self, positions: dict[PartitionKey, int]) -> None:
        """Record that `positions` were committed."""
        for key, position in positions.items():
            part = self._parts.get(key)
            if part is None:  # forgotten (revoked) while the commit was in flight
                continue
            part.committed = position if part.committed is None else max(part.committed, position)

    def committed(self) -> dict[PartitionKey, int]:
        """Positions handed to `mark_committed`, per partition."""
        return {key: p.committed for key, p in self._parts.items() if p.committed is not None}

    def forget(self, keys: Iterable[PartitionKey]) -> dict[PartitionKey, int]:
        """Drop the state of partitions this member lost; return their commit positions (done prefixes).

        Their items still in the pipeline become stale: they finish, but mark nothing done any more.
        """
        positions: dict[PartitionKey, int] = {}
        for key in keys:
            part = self._parts.pop(key, None)
            if part is not None and part.position is not None:
                positions[key] = part.position
            self._generations[key] = self._generations.get(key, 0) + 1
        return positions

    def first_unfinished(self, key: PartitionKey) -> int | None:
        """Offset of the oldest registered item of `key` that is not done (None when all are)."""
        part = self._parts.get(key)
        return part.pending[0] if part is not None and part.pending else None

    def outstanding(self) -> int:
        """Registered items not yet in a done prefix (bounded by the pipeline's window)."""
        return sum(len(p.pending) for p in self._parts.values())
