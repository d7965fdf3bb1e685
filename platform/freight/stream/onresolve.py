"""`on-resolve` eviction that is safe under redelivery.

An `on-resolve` object is one-time use: its first resolve makes it deletable. Deleting it at that very
moment would lose it when the consumer that resolved it stops before committing: Kafka delivers the event
again (at-least-once), and the next member of the group would find the object gone. So a resolve only marks
the object, and it is deleted once the resolving group has committed past its event.

The guarantee, exactly:

- a proxy handed out by a consumer *group* (`StreamConsumer(topic, group_id)`) and resolved in the process of
  a consumer of that group: the object is deleted when that consumer's commit (its own `commit()`, the
  background auto-commit, or the commit at `close()`) covers the event's offset. Until then a redelivery,
  to this or another member, resolves it again;
- resolved anywhere else (a worker the proxy was pickled to): the object stays until the evictor deletes it,
  once every retaining group of the topic's policy committed past the event (the `watermark` rule);
- a proxy of a consumer without a group (a replay, `group_id=None`): nothing redelivers it to a group, so
  the first resolve deletes it, as before.

A consumer that closes drops the marks of what it resolved but did not commit: the next member resolves
those again, and its own commit deletes them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from freight.stream.proxy import ProxyRef

log = logging.getLogger(__name__)

TP = tuple[str, int]


@dataclass(frozen=True, slots=True)
class _Resolved:
    offset: int
    store: str
    key: str
    bootstrap: str | None


class _Marks:
    """Per group and partition: the on-resolve objects resolved here whose event the group has not committed
    past yet; and which groups have a consumer in this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._consumers: dict[str, int] = {}
        self._marks: dict[tuple[str, TP], list[_Resolved]] = {}

    def consumer_opened(self, group: str) -> None:
        with self._lock:
            self._consumers[group] = self._consumers.get(group, 0) + 1

    def consumer_closed(self, group: str, partitions: set[TP] | None = None) -> None:
        """A consumer of `group` closed: forget the marks on its partitions (all, when it was the group's
        last consumer here); their events will be delivered again."""
        with self._lock:
            left = self._consumers.get(group, 0) - 1
            if left <= 0:
                self._consumers.pop(group, None)
            for mark in list(self._marks):
                if mark[0] == group and (left <= 0 or partitions is None or mark[1] in partitions):
                    del self._marks[mark]

    def resolved(self, ref: ProxyRef) -> bool:
        """Mark a resolved on-resolve object; False when no consumer of its group runs here (then the caller
        deletes it at once if it has no group, or leaves it to the evictor)."""
        group = ref.group
        if group is None or ref.store is None or ref.key is None:
            return False
        with self._lock:
            if group not in self._consumers:
                return False
            entry = _Resolved(ref.offset, ref.store, ref.key, ref.bootstrap)
            self._marks.setdefault((group, (ref.topic, ref.partition)), []).append(entry)
        return True

    def committed(self, group: str, offsets: Mapping[TP, int]) -> int:
        """`group` committed `offsets` (next offsets to read): delete the marked objects below them."""
        due: list[_Resolved] = []
        with self._lock:
            for tp, offset in offsets.items():
                marks = self._marks.get((group, tp))
                if not marks:
                    continue
                due.extend(m for m in marks if m.offset < offset)
                keep = [m for m in marks if m.offset >= offset]
                if keep:
                    self._marks[(group, tp)] = keep
                else:
                    del self._marks[(group, tp)]
        deleted = 0
        if not due:
            return 0
        from freight.stores.resolver import default_resolver

        for m in due:
            try:
                store = default_resolver().store(m.store, bootstrap=m.bootstrap)
                deleted += bool(store.evict(m.key))
            except Exception:  # the evictor deletes it later (it is below the group's commit)
                log.warning(
                    "could not delete the on-resolve object %s of store %s", m.key, m.store, exc_info=True
                )
        return deleted

    def pending(self, group: str) -> int:
        """How many resolved objects of `group` wait for its commit (for tests and status)."""
        with self._lock:
            return sum(len(v) for (g, _tp), v in self._marks.items() if g == group)


#: The process-wide marks.
MARKS = _Marks()
