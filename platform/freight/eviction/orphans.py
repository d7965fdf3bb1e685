"""The orphan sweep: delete stored objects that no event refers to, once older than a grace period.

A producer writes an object, then produces its event; a crash in between leaves an orphan. The rule, per
topic T with policy grace G, in one sweep started at time t0:

    an object is deleted iff its key has the producer's form `<T>/<producer id>/<12-digit counter>`,
    it was last modified before t0 - G, no event in the log of T (log start up to the high watermark read
    after t0) refers to it, and the keep ledger does not hold it (`never` mode).

Why it never deletes an object whose event exists: a producer acknowledges (or gives up on and deletes) an
event within its delivery timeout D (`delivery.timeout.ms`, 120 s by default) of writing the object. With
G > D, every object written before t0 - G has its event appended before t0, hence below the high watermark
read after t0, and the sweep reads all of it. Keys are unique (producer id + counter), never reused.

The same rule removes objects whose events Kafka retention or `delete_records` dropped: that is how
`retention`-mode objects go, and how leftovers of events the evictor never read are reclaimed. The keep
ledger protects `never`-mode objects; the sweep also records every `never` event it reads there.

Topics whose names map to the same key segment (`safe_key_part`) share a prefix: all of them are scanned.
Stores swept: every store the topic's events name, those the evictor's checkpoints remember (so stores stay
known after their events are gone), and the policy's `orphan_stores`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from freight.connectors.keys import safe_key_part
from freight.connectors.protocol import ObjectInfo
from freight.errors import FreightError, ServiceUnavailableError
from freight.eviction.ledger import KeepLedger
from freight.eviction.policy import RetentionPolicy
from freight.eviction.reader import TP, RangeReader
from freight.kafka import KafkaAdmin
from freight.schemas.events import EvictionMode
from freight.stores import Store

_COUNTER = re.compile(r"^\d{12}$")


@dataclass
class SweepReport:
    """What one orphan sweep of one topic found and did."""

    topic: str
    events: int = 0
    stores: list[str] = field(default_factory=list)
    listed: int = 0
    young: int = 0
    referenced: int = 0
    kept: int = 0
    orphans: int = 0
    deleted: int = 0
    bytes_deleted: int = 0
    dry_run: bool = False
    errors: list[str] = field(default_factory=list)


def is_producer_key(key: str, prefix: str) -> bool:
    """True for keys a `StreamProducer` writes under `prefix`: `<prefix>/<producer id>/<12 digits>`."""
    head, sep, rest = key.partition("/")
    if head != prefix or not sep:
        return False
    producer, sep2, counter = rest.rpartition("/")
    return bool(sep2 and producer and _COUNTER.match(counter))


def orphan_candidates(
    objects: Iterable[ObjectInfo], prefix: str, cutoff_s: float
) -> tuple[list[ObjectInfo], int]:
    """Producer-written objects under `prefix` last modified before `cutoff_s`, and how many were younger."""
    old: list[ObjectInfo] = []
    young = 0
    for info in objects:
        if not is_producer_key(info.key, prefix):
            continue
        if info.modified < cutoff_s:
            old.append(info)
        else:
            young += 1
    return old, young


def sibling_topics(topic: str, all_topics: Iterable[str]) -> list[str]:
    """Topics whose objects share `topic`'s key prefix (itself included)."""
    prefix = safe_key_part(topic)
    return sorted({topic} | {t for t in all_topics if safe_key_part(t) == prefix})


class OrphanSweeper:
    """Runs the sweep for one policy at a time (see the module docstring)."""

    def __init__(
        self,
        admin: KafkaAdmin,
        reader: RangeReader,
        ledger: KeepLedger,
        store: Callable[[str], Store],
        batch_size: int = 1000,
    ) -> None:
        self.admin = admin
        self.reader = reader
        self.ledger = ledger
        self.store = store
        self.batch_size = batch_size

    def sweep(self, policy: RetentionPolicy, *, dry_run: bool = False) -> SweepReport:
        """Sweep `policy.topic`'s stores; with `dry_run`, count orphans without deleting them."""
        report = SweepReport(policy.topic, dry_run=dry_run)
        started = time.time()  # t0: taken before the high watermarks are read
        prefix = safe_key_part(policy.topic)
        try:
            topics = sibling_topics(policy.topic, self.admin.list_topics())
            ranges: dict[TP, tuple[int, int]] = {}
            for topic in topics:
                for p, (low, high) in self.admin.watermarks(topic).items():
                    ranges[(topic, p)] = (low, high)
            referenced: dict[str, set[str]] = {}
            for records in self.reader.read(ranges):
                for rec in records:
                    report.events += 1
                    event = rec.event
                    if event is None or event.object is None:
                        continue
                    ref = event.object
                    referenced.setdefault(ref.store, set()).add(ref.key)
                    if ref.eviction is EvictionMode.NEVER and not dry_run:
                        self.ledger.record(rec.topic, rec.partition, rec.offset, event)
            self.ledger.flush()
            kept = self.ledger.refresh()
            remembered = {s for ck in self.reader.checkpoints(ranges).values() for s in ck.stores}
        except ServiceUnavailableError:
            raise
        except FreightError as exc:
            report.errors.append(str(exc))
            return report
        report.stores = sorted(set(referenced) | set(policy.orphan_stores) | remembered)
        cutoff = started - policy.orphan_grace_s
        for name in report.stores:
            try:
                self._sweep_store(
                    report, name, prefix, cutoff, referenced.get(name, set()), kept.get(name, set()), dry_run
                )
            except ServiceUnavailableError:
                raise
            except FreightError as exc:
                report.errors.append(f"store {name!r}: {exc}")
        return report

    def _sweep_store(
        self,
        report: SweepReport,
        name: str,
        prefix: str,
        cutoff: float,
        referenced: set[str],
        kept: set[str],
        dry_run: bool,
    ) -> None:
        store = self.store(name)
        listed = list(store.connector.list(prefix + "/"))
        report.listed += len(listed)
        old, young = orphan_candidates(listed, prefix, cutoff)
        report.young += young
        orphans: list[ObjectInfo] = []
        for info in old:
            if info.key in referenced:
                report.referenced += 1
            elif info.key in kept:
                report.kept += 1
            else:
                orphans.append(info)
        report.orphans += len(orphans)
        if dry_run:
            return
        for i in range(0, len(orphans), self.batch_size):
            chunk = orphans[i : i + self.batch_size]
            existed = store.evict_batch([o.key for o in chunk], only_framed=True)
            report.deleted += existed
            if existed == len(chunk):
                report.bytes_deleted += sum(o.size for o in chunk)
