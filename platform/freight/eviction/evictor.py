"""The evictor: deletes the objects of events every retaining group has committed past.

One pass, per topic with a retention policy and per partition:

1. watermark W = min committed offset over the retaining groups (`freight.eviction.watermark`);
2. checkpoint C = the evictor's own committed offset (consumer group `freight-evictor`; the log start if it
   never committed or Kafka dropped records below it);
3. read the events in [C, W) and act by eviction mode (`freight.eviction.decisions`): collect deletable
   keys, record `never` objects in the keep ledger, stop the partition at the first object younger than the
   policy's minimum age;
4. per batch of `batch_size` keys: delete them (`Store.evict_batch`, grouped by store), flush the ledger,
   then commit the checkpoint just past the last event handled;
5. with `delete_records`, delete the Kafka records below the new checkpoint.

Safety: the checkpoint only ever moves to offsets the evictor has handled, and handled offsets lie below W,
which never passes the slowest retaining group. Deletes happen before the commit, so a crash (even between
the two) only makes the next pass re-read and re-delete a batch: deletes are idempotent, nothing is deleted
early, nothing is skipped. Two evictors at once read the same ranges, delete the same keys and commit
offsets each has handled; a commit that moves the checkpoint back only causes re-reading. The evictor
reads with an assigned (never subscribed) consumer, so instances do not rebalance each other.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from freight.config import FreightSettings, load_settings
from freight.errors import ConfigError, FreightError, ServiceUnavailableError
from freight.eviction.decisions import Action, decide
from freight.eviction.ledger import KeepLedger
from freight.eviction.orphans import OrphanSweeper, SweepReport
from freight.eviction.policy import PolicyStore, RetentionPolicy
from freight.eviction.reader import TP, RangeReader
from freight.eviction.report import TopicStatus, topic_status
from freight.eviction.watermark import PartitionWatermark, read_group_offsets, topic_watermarks
from freight.kafka import KafkaAdmin
from freight.kafka.checkpoint import EVICTOR_GROUP, checkpoint_metadata
from freight.schemas.events import now_ms
from freight.schemas.serde import EventSerde
from freight.stores import Store
from freight.stores.resolver import default_resolver

log = logging.getLogger(__name__)


@dataclass
class PartitionReport:
    """What one pass did on one partition."""

    topic: str
    partition: int
    low: int
    high: int
    watermark: int
    start: int
    checkpoint: int
    events: int = 0
    deleted: int = 0
    already_gone: int = 0
    bytes_deleted: int = 0
    kept: int = 0
    dropped_unread: int = 0
    waiting_at: int | None = None
    blocking: list[str] = field(default_factory=list)

    @property
    def lag(self) -> int:
        """Offsets below the watermark the evictor has not passed yet."""
        return max(self.watermark - self.checkpoint, 0)


@dataclass
class TopicReport:
    """What one pass did on one topic (or why it could not)."""

    topic: str
    partitions: list[PartitionReport] = field(default_factory=list)
    records_deleted_below: dict[int, int] = field(default_factory=dict)
    error: str | None = None
    #: Stores whose objects this pass left alone: unknown, or outside this process's allow-list (their
    #: events may be foreign records; docs/security.md). The pass goes on past them.
    refused: dict[str, str] = field(default_factory=dict)

    @property
    def deleted(self) -> int:
        return sum(p.deleted for p in self.partitions)

    @property
    def bytes_deleted(self) -> int:
        return sum(p.bytes_deleted for p in self.partitions)


@dataclass
class PassReport:
    """One evictor pass over the policy topics (and, if asked, its orphan sweeps)."""

    started_ms: int
    seconds: float = 0.0
    topics: list[TopicReport] = field(default_factory=list)
    sweeps: list[SweepReport] = field(default_factory=list)
    stopped: bool = False

    @property
    def deleted(self) -> int:
        return sum(t.deleted for t in self.topics)

    @property
    def bytes_deleted(self) -> int:
        return sum(t.bytes_deleted for t in self.topics)

    @property
    def errors(self) -> list[str]:
        return [f"{t.topic}: {t.error}" for t in self.topics if t.error] + [
            f"{s.topic} (orphans): {e}" for s in self.sweeps for e in s.errors
        ]

    def as_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["deleted"] = self.deleted
        doc["bytes_deleted"] = self.bytes_deleted
        doc["errors"] = self.errors
        for t, topic in zip(doc["topics"], self.topics, strict=True):
            t["deleted"] = topic.deleted
            t["bytes_deleted"] = topic.bytes_deleted
            for p, part in zip(t["partitions"], topic.partitions, strict=True):
                p["lag"] = part.lag
        return doc


@dataclass(frozen=True, slots=True)
class BatchEvent:
    """Told to `on_batch` around each batch: phase 'start' (before deleting), 'deleted' (deleted, checkpoint
    not yet committed) and 'committed'."""

    phase: str
    topic: str
    keys: tuple[tuple[str, str], ...]
    checkpoints: Mapping[TP, int]
    watermarks: Mapping[TP, int]


BatchHook = Callable[[BatchEvent], None]


class _Batch:
    """Deletable keys collected across partitions, and how far each partition has been handled."""

    def __init__(self) -> None:
        self.keys: dict[str, list[tuple[str, int, TP]]] = {}
        self.count = 0
        self.handled_since_commit = 0

    def add(self, store: str, key: str, size: int, tp: TP) -> None:
        self.keys.setdefault(store, []).append((key, size, tp))
        self.count += 1

    def clear(self) -> None:
        self.keys.clear()
        self.count = 0
        self.handled_since_commit = 0


class Evictor:
    """Offset-driven eviction for the topics that have a retention policy (see the module docstring)."""

    def __init__(
        self,
        settings: FreightSettings | None = None,
        *,
        group: str = EVICTOR_GROUP,
        batch_size: int = 500,
        stores: Iterable[Store] | None = None,
        on_batch: BatchHook | None = None,
        stop: threading.Event | None = None,
        serde: EventSerde | None = None,
        admin: KafkaAdmin | None = None,
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        if not group.strip():
            raise ConfigError("the evictor's checkpoint group must not be empty")
        self.settings = settings or load_settings()
        self.group = group
        self.batch_size = batch_size
        self.on_batch = on_batch
        self.stop = stop or threading.Event()
        if admin is None:
            # A broker that is down is a clear error now (saying `freight dev up`), not a hang later; the
            # probe is quiet so that librdkafka's connection errors do not flood the log first.
            KafkaAdmin(self.settings, timeout=3, quiet=True).ping(3)
            admin = KafkaAdmin(self.settings)
        self.admin = admin
        self.serde = serde or EventSerde.from_settings(self.settings)
        self.policies = PolicyStore(self.settings, serde=self.serde, admin=admin)
        self.ledger = KeepLedger(self.settings, self.serde, admin=admin)
        self.reader = RangeReader(self.settings, self.serde, group)
        self.sweeper = OrphanSweeper(self.admin, self.reader, self.ledger, self.store)
        for store in stores or ():
            default_resolver().register(store, settings=self.settings)

    # Plumbing -----------------------------------------------------------------------------------------
    def store(self, name: str) -> Store:
        """The store called `name` (registered here, else rebuilt from the store catalog)."""
        default_resolver().trust(self.settings)
        return default_resolver().store(name, bootstrap=self.settings.kafka_bootstrap)

    def _hook(self, event: BatchEvent) -> None:
        if self.on_batch is not None:
            self.on_batch(event)

    def selected_policies(self, topics: Iterable[str] | None) -> list[RetentionPolicy]:
        """Policies of `topics` (each must have one), or of every topic with a policy."""
        policies = self.policies.refresh()
        if topics is None:
            return [policies[t] for t in sorted(policies)]
        return [self.policies.require(t) if t not in policies else policies[t] for t in topics]

    # One pass -----------------------------------------------------------------------------------------
    def run_once(self, topics: Iterable[str] | None = None, *, orphans: bool = False) -> PassReport:
        """Evict what every retaining group has committed past, on `topics` (default: every policy topic).

        With `orphans`, also sweep each topic's stores for orphans afterwards. Errors of one topic are
        reported and do not stop the others; an unreachable broker raises.
        """
        started = time.monotonic()
        report = PassReport(started_ms=now_ms())
        selected = self.selected_policies(topics)
        group_offsets = read_group_offsets(self.admin, selected, self.group) if selected else {}
        for policy in selected:
            if self.stop.is_set():
                report.stopped = True
                break
            try:
                report.topics.append(self._run_topic(policy, group_offsets))
            except ServiceUnavailableError:
                raise
            except FreightError as exc:
                log.warning("evicting %s failed: %s", policy.topic, exc)
                report.topics.append(TopicReport(policy.topic, error=str(exc)))
        if orphans and not self.stop.is_set():
            report.sweeps = self.sweep_orphans(p.topic for p in selected)
        report.stopped = report.stopped or self.stop.is_set()
        report.seconds = time.monotonic() - started
        return report

    def sweep_orphans(
        self, topics: Iterable[str] | None = None, *, dry_run: bool = False
    ) -> list[SweepReport]:
        """Delete unreferenced objects older than each policy's grace (see `freight.eviction.orphans`)."""
        out = []
        for policy in self.selected_policies(topics):
            if self.stop.is_set():
                break
            out.append(self.sweeper.sweep(policy, dry_run=dry_run))
        return out

    def watermarks(
        self, policy: RetentionPolicy, group_offsets: Mapping[str, Mapping[TP, int]] | None = None
    ) -> list[PartitionWatermark]:
        """The current watermark of each partition of `policy.topic`."""
        if group_offsets is None:
            group_offsets = read_group_offsets(self.admin, [policy], self.group)
        return topic_watermarks(policy, self.admin.watermarks(policy.topic), group_offsets, self.group)

    def _run_topic(
        self, policy: RetentionPolicy, group_offsets: Mapping[str, Mapping[TP, int]]
    ) -> TopicReport:
        topic = policy.topic
        marks = self.watermarks(policy, group_offsets)
        checkpoints = self.reader.checkpoints((topic, wm.partition) for wm in marks)
        stores_seen = {tp: set(ck.stores) for tp, ck in checkpoints.items()}
        report = TopicReport(topic)
        refused = report.refused
        parts: dict[TP, PartitionReport] = {}
        ranges: dict[TP, tuple[int, int]] = {}
        for wm in marks:
            tp = (topic, wm.partition)
            known = checkpoints.get(tp)
            previous = None if known is None else known.offset
            start = wm.low if previous is None else max(previous, wm.low)
            part = PartitionReport(
                topic, wm.partition, wm.low, wm.high, wm.watermark, start, start, blocking=wm.blocking()
            )
            if previous is not None and previous < wm.low:
                part.dropped_unread = wm.low - previous  # their objects are left to the orphan sweep
            parts[tp] = part
            report.partitions.append(part)
            if start < wm.watermark:
                ranges[tp] = (start, wm.watermark)
        watermark_of = {(topic, wm.partition): wm.watermark for wm in marks}
        committed = {tp: p.start for tp, p in parts.items()}
        progress = dict(committed)
        batch = _Batch()
        min_age_ms = round(policy.min_age_s * 1000)

        def flush() -> None:
            keys = tuple((s, k) for s, items in batch.keys.items() for k, _, _ in items)
            if keys:
                self._hook(BatchEvent("start", topic, keys, dict(committed), watermark_of))
                for store_name, items in batch.keys.items():
                    try:
                        store = self.store(store_name)
                    except ConfigError as exc:  # unknown or not allowed: never fatal to the pass
                        if store_name not in refused:
                            log.warning("not deleting objects of store %r on %s: %s", store_name, topic, exc)
                        refused[store_name] = str(exc)
                        continue
                    existed = store.evict_batch([k for k, _, _ in items], only_framed=True)
                    self._account(parts, items, existed)
                self._hook(BatchEvent("deleted", topic, keys, dict(committed), watermark_of))
            self.ledger.flush()
            moved = {tp: o for tp, o in progress.items() if o > committed[tp]}
            if moved:
                self.reader.commit(
                    {
                        tp: (o, checkpoint_metadata(watermark_of[tp], stores_seen.get(tp, ())))
                        for tp, o in moved.items()
                    }
                )
                committed.update(moved)
                for tp, o in moved.items():
                    parts[tp].checkpoint = o
            if keys or moved:
                self._hook(BatchEvent("committed", topic, keys, dict(committed), watermark_of))
            batch.clear()

        interrupted = False
        waiting: set[TP] = set()
        batches = self.reader.read(ranges, batch=max(self.batch_size, 100))
        try:
            for records in batches:
                now = now_ms()
                for rec in records:
                    tp = (rec.topic, rec.partition)
                    if tp in waiting:
                        continue
                    part = parts[tp]
                    part.events += 1
                    action = decide(rec.event, now, min_age_ms)
                    if action is Action.WAIT:
                        waiting.add(tp)
                        part.waiting_at = rec.offset
                        self.reader.finish(tp)
                        continue
                    if rec.event is not None and rec.event.object is not None:
                        ref = rec.event.object
                        stores_seen.setdefault(tp, set()).add(ref.store)
                        if action is Action.DELETE:
                            batch.add(ref.store, ref.key, ref.size, tp)
                        elif action is Action.KEEP:
                            self.ledger.record(rec.topic, rec.partition, rec.offset, rec.event)
                            part.kept += 1
                    progress[tp] = rec.offset + 1
                    batch.handled_since_commit += 1
                    if batch.count >= self.batch_size or batch.handled_since_commit >= 10 * self.batch_size:
                        flush()
                if self.stop.is_set():
                    interrupted = True
                    break
        finally:
            batches.close()  # unassigns at once, also when stopping early
        if not interrupted:
            for tp, (_start, end) in ranges.items():
                if tp not in waiting:
                    progress[tp] = end  # offsets without records (transaction markers) count as handled
        flush()
        if policy.delete_records:
            self._delete_records(report, parts, committed)
        return report

    @staticmethod
    def _account(parts: Mapping[TP, PartitionReport], items: list[tuple[str, int, TP]], existed: int) -> None:
        """Spread a batch's delete count over its partitions (exact unless a batch mixes present and gone)."""
        if existed == len(items):
            for _key, size, tp in items:
                parts[tp].deleted += 1
                parts[tp].bytes_deleted += size
            return
        gone = len(items) - existed
        for _key, size, tp in items:  # which ones were gone is not known: attribute in order
            if gone > 0:
                parts[tp].already_gone += 1
                gone -= 1
            else:
                parts[tp].deleted += 1
                parts[tp].bytes_deleted += size

    def _delete_records(
        self, report: TopicReport, parts: Mapping[TP, PartitionReport], committed: Mapping[TP, int]
    ) -> None:
        """Delete Kafka records the evictor has passed (never at or above the watermark)."""
        before = {
            tp: min(committed[tp], part.watermark)
            for tp, part in parts.items()
            if min(committed[tp], part.watermark) > part.low
        }
        if before:
            self.admin.delete_records(before)
            report.records_deleted_below = {p: o for (_t, p), o in before.items()}

    # Status -------------------------------------------------------------------------------------------
    def status(
        self, topics: Iterable[str] | None = None, *, scan_limit: int = 100_000, list_stores: bool = True
    ) -> list[TopicStatus]:
        """The eviction state of `topics` (default: every topic with a policy): `freight.eviction.report`."""
        selected = self.selected_policies(topics)
        group_offsets = read_group_offsets(self.admin, selected, self.group) if selected else {}
        out = []
        for policy in selected:
            try:
                marks = self.watermarks(policy, group_offsets)
                checkpoints = {
                    tp: ck.offset
                    for tp, ck in self.reader.checkpoints((policy.topic, m.partition) for m in marks).items()
                }
                out.append(
                    topic_status(
                        policy,
                        marks,
                        checkpoints,
                        self.reader,
                        self.store,
                        scan_limit=scan_limit,
                        list_stores=list_stores,
                    )
                )
            except ServiceUnavailableError:
                raise
            except FreightError as exc:
                out.append(TopicStatus(policy.topic, policy.describe(), error=str(exc)))
        return out

    # Service ------------------------------------------------------------------------------------------
    def serve(
        self,
        interval_s: float = 5.0,
        *,
        topics: Iterable[str] | None = None,
        orphan_interval_s: float | None = 300.0,
        on_pass: Callable[[PassReport], None] | None = None,
    ) -> None:
        """Run passes every `interval_s` until `stop` is set (a pass in progress finishes its batch first).

        Orphan sweeps run every `orphan_interval_s` (None: never). A failed pass (a broker outage, a policy
        deleted meanwhile) is logged and retried at the next interval instead of ending the service.
        """
        if interval_s <= 0:
            raise ConfigError(f"the evictor interval must be positive, got {interval_s:g}s")
        chosen = None if topics is None else list(topics)
        next_sweep = time.monotonic() + (orphan_interval_s or 0)
        while not self.stop.is_set():
            began = time.monotonic()
            sweep = orphan_interval_s is not None and began >= next_sweep
            try:
                report = self.run_once(chosen, orphans=sweep)
            except FreightError as exc:  # broker down, a policy deleted meanwhile: retry next time
                log.warning("evictor pass failed, retrying in %gs: %s", interval_s, exc)
                report = PassReport(started_ms=now_ms(), topics=[TopicReport("*", error=str(exc))])
            if sweep and orphan_interval_s is not None:
                next_sweep = time.monotonic() + orphan_interval_s
            if on_pass is not None:
                on_pass(report)
            self.stop.wait(max(interval_s - (time.monotonic() - began), 0.0))

    def close(self) -> None:
        """Release the Kafka clients (the registry client is shared with the serde's owner)."""
        self.reader.close()
        self.ledger.close()
        self.policies.close()

    def __enter__(self) -> Evictor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def summary(settings: FreightSettings | None = None, *, group: str = EVICTOR_GROUP) -> dict[str, Any]:
    """A cheap eviction overview for dashboards (`freight status`): per topic with a policy and partition, the
    watermark, the evictor's checkpoint and lag, and the retaining groups; no events are read."""
    with Evictor(settings, group=group) as evictor:
        statuses = evictor.status(scan_limit=0, list_stores=False)
    return {"evictor_group": group, "topics": [s.as_dict() for s in statuses]}
