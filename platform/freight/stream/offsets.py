"""Offset bookkeeping of one consumer: what was handed out, what is finished, how far each partition was read.

At-least-once: an item is finished (its next offset may be committed) only once it was handed out *and* the
next one was requested, or on an explicit commit. `OffsetBook` holds that state and nothing else; the
consumer moves the finished offsets to librdkafka (`store_offsets`) and commits.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from confluent_kafka import TopicPartition

TP = tuple[str, int]


class OffsetBook:
    """Per-partition positions of one consumer.

    `done` holds the next offset to commit per partition (items finished, not yet stored), `last` the item
    handed out and not yet finished, `seen` the next offset after what was read (END markers included).
    """

    __slots__ = ("done", "last", "last_store", "seen")

    def __init__(self) -> None:
        self.done: dict[TP, int] = {}
        self.last: tuple[str, int, int] | None = None
        self.seen: dict[TP, int] = {}
        self.last_store = time.monotonic()

    def hand_out(self, topic: str, partition: int, offset: int) -> None:
        """The record at this offset is now in the caller's hands (finished when the next is asked for)."""
        self.last = (topic, partition, offset)

    def finish_last(self, *, record: bool) -> None:
        """The item in hand is finished; with `record` False (manual commits) it is only let go of."""
        if self.last is not None and record:
            topic, partition, offset = self.last
            self.done[(topic, partition)] = offset + 1
        self.last = None

    def release(self, tp: TP) -> None:
        """Let go of the item in hand on `tp` without finishing it (it is read again)."""
        if self.last is not None and self.last[:2] == tp:
            self.last = None

    def take(self, only: set[TP] | None, owned: set[TP]) -> list[TopicPartition]:
        """Remove the finished offsets (of `only`, default all) and return those of partitions still owned.

        Args:
            only: Partitions to take; None: all.
            owned: Partitions assigned to the consumer now (others' offsets are dropped, not stored).

        Returns:
            The offsets to store for commit.
        """
        self.last_store = time.monotonic()
        if not self.done:
            return []
        items = [(tp, o) for tp, o in self.done.items() if only is None or tp in only]
        for tp, _ in items:
            del self.done[tp]
        return [TopicPartition(t, p, o) for (t, p), o in items if (t, p) in owned]

    def read_up_to(self, tp: TP, next_offset: int) -> None:
        """Partition `tp` was read up to `next_offset` (never moves back)."""
        self.seen[tp] = max(self.seen.get(tp, 0), next_offset)

    def mark_unread(self, parts: Iterable[TP]) -> None:
        """Count these partitions as not read at all yet (a stop check waits for a record or their end)."""
        for tp in parts:
            self.seen[tp] = -1

    def forget(self, parts: Iterable[TP]) -> None:
        """Drop all state of partitions this consumer no longer reads from where it stood.

        Where this member stood is stale once another may read on; a reassignment starts from the group's
        committed offset.
        """
        parts = set(parts)
        for tp in parts:
            self.done.pop(tp, None)
            self.seen.pop(tp, None)
        if self.last is not None and (self.last[0], self.last[1]) in parts:
            self.last = None

    def since_store(self) -> float:
        """Seconds since finished offsets were last taken for storing."""
        return time.monotonic() - self.last_store
