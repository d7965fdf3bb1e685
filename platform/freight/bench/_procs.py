"""Processes for the end-to-end benchmarks: producers and consumers that start, get ready, then go together.

Handshake, the same for every subject: a child process does its first-use work (imports, connections,
group join, a warm-up object) and sets `ready`; the parent then sets `go` and the timed part starts. A
child that dies fails the run instead of hanging it. Children come from a forkserver that has already
imported numpy, confluent-kafka and freight, so a child starts in tens of milliseconds instead of seconds.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import queue
import time
import uuid
import zlib
from collections.abc import Callable, Iterable
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import Any

from freight.config import FreightSettings
from freight.errors import FreightError

# Imported once by the forkserver, so each child skips them (missing optional ones are skipped too).
# freight.bench.stream first: it silences ProxyStore's ExperimentalWarning before ProxyStore is imported.
_PRELOAD = [
    "numpy",
    "confluent_kafka",
    "confluent_kafka.schema_registry",
    "httpx",
    "freight.bench.stream",
    "freight.stream",
    "freight.stores",
    "freight.connectors.file",
    "freight.schemas.serde",
    "proxystore.store",
    "proxystore.connectors.file",
    "proxystore.stream",
    "proxystore.stream.shims.kafka",
]
_context: BaseContext | None = None

#: Objects at least this large are touched as numpy arrays (every byte summed), smaller ones as bytes.
ARRAY_MIN = 64 * 1024


def context() -> BaseContext:
    """The multiprocessing context of benchmark children (forkserver with Freight preloaded)."""
    global _context
    if _context is None:
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(_PRELOAD)
        _context = ctx
    return _context


def settings_dict(settings: FreightSettings) -> dict[str, Any]:
    """What a child needs to rebuild the settings (picklable)."""
    return {
        "kafka_bootstrap": settings.kafka_bootstrap,
        "schema_registry_url": settings.schema_registry_url,
        "allowed_store_roots": [str(p) for p in settings.allowed_store_roots],
    }


def allow_store_roots(settings: FreightSettings, *roots: Path) -> FreightSettings:
    """`settings` that also allow file stores under `roots` (the benchmark's own working directories).

    A consumer only opens file stores from the catalog under its allowed roots (docs/security.md); the
    benchmarks put their stores in a temporary directory, which is therefore allowed explicitly.
    """
    current = settings.allowed_store_roots or [settings.store_dir]
    extra = [r for r in roots if r not in current]
    return settings.model_copy(update={"allowed_store_roots": [*current, *extra]})


def new_topic(settings: FreightSettings, prefix: str, partitions: int = 1) -> str:
    """A fresh topic for one run."""
    from freight.kafka import KafkaAdmin

    name = f"bench-{prefix}-{uuid.uuid4().hex[:8]}"
    KafkaAdmin(settings).create_topic(name, partitions)
    return name


def drop_topics(settings: FreightSettings, *topics: str) -> None:
    """Delete benchmark topics, their registry subjects, and their stores (`bench-<topic>`) in the catalog.

    Best effort: a leftover is only clutter. A catalog entry is removed by a tombstone (compaction keeps
    none of it), so `freight status` does not list the stores of finished runs; each topic's value subject
    (`<topic>-value`) is deleted soft, then for good, so `freight schemas list` does not fill up with runs.
    """
    from confluent_kafka import KafkaException, Producer

    from freight.kafka import KafkaAdmin, producer_config
    from freight.stores.catalog import STORES_TOPIC

    admin = KafkaAdmin(settings)
    with contextlib.suppress(FreightError):
        admin.delete_topics(list(topics))
    with contextlib.suppress(FreightError, KafkaException, BufferError):
        if admin.topic_exists(STORES_TOPIC):
            producer = Producer(producer_config(settings, {"linger.ms": 0}))
            for topic in topics:
                producer.produce(STORES_TOPIC, key=f"bench-{topic}".encode(), value=None)
            producer.flush(10)
    _drop_subjects(settings, topics)


def _drop_subjects(settings: FreightSettings, topics: Iterable[str]) -> None:
    from freight.registry.client import RegistryClient
    from freight.schemas.serde import subject_for

    with contextlib.suppress(FreightError), RegistryClient.from_settings(settings) as client:
        existing = set(client.subjects(prefix="bench"))
        for topic in topics:
            subject = subject_for(topic)
            if subject in existing:
                with contextlib.suppress(FreightError):
                    client.delete(subject)
                    client.delete(subject, permanent=True)


def streams_for_partitions(partitions: int, per_partition: int) -> list[str]:
    """Stream ids that spread evenly: `per_partition` of them land on each partition.

    librdkafka's default partitioner (consistent_random) puts a key on crc32(key) % partitions.
    """
    found: dict[int, list[str]] = {p: [] for p in range(partitions)}
    i = 0
    while any(len(v) < per_partition for v in found.values()):
        name = f"s{i}"
        bucket = found[zlib.crc32(name.encode()) % partitions]
        if len(bucket) < per_partition:
            bucket.append(name)
        i += 1
    return [name for p in range(partitions) for name in found[p]]


def touch(obj: Any, size: int) -> None:
    """Use an object as a consumer would: sum every byte of an array, or copy a small object's bytes."""
    import numpy as np

    if size >= ARRAY_MIN:
        np.asarray(obj).sum()
    else:
        bytes(obj)


class Child:
    """One child process with the ready/go handshake."""

    def __init__(self, target: Callable[..., None], *args: Any, go: Any = None) -> None:
        ctx: Any = context()
        self.ready = ctx.Event()
        self.go = go if go is not None else ctx.Event()
        self.proc = ctx.Process(target=target, args=(*args, self.ready, self.go), daemon=True)
        self.proc.start()
        self.deadline = time.monotonic() + 900

    def check(self) -> None:
        """Raise if the child died or ran out of time."""
        if self.proc.exitcode not in (None, 0) or time.monotonic() > self.deadline:
            raise FreightError(
                f"benchmark process {self.proc.name} exited with {self.proc.exitcode} or timed out"
            )

    def wait_ready(self) -> None:
        while not self.ready.wait(0.1):
            self.check()

    def start(self) -> float:
        """Let the child begin its timed part; return the start time."""
        self.go.set()
        return time.perf_counter()

    def join(self) -> None:
        self.proc.join(60)
        if self.proc.is_alive():
            self.proc.kill()


# ------------------------------------------------------------------------------------------------------
# Consumer workers (fan-out and scaling): each one a StreamConsumer process, timed from `go` to its last
# object. Records are fetched while the workers wait for `go`; decoding and resolving are timed.


def consume_worker(
    settings: dict[str, Any],
    topic: str,
    group: str,
    size: int,
    results: Any,
    assigned: Any,
    ready: Any,
    go: Any,
) -> None:
    """Join `group`, serve rebalances until `go`, then resolve every object up to the high watermark."""
    from freight.schemas.serde import EventSerde
    from freight.stream import StreamConsumer

    conf = FreightSettings.model_validate(settings)
    serde = EventSerde.from_settings(conf)
    # Warm-up outside the timing: the schema (shared serde) and the store (process-wide resolver), through
    # one proxy read by a group-less consumer.
    with StreamConsumer(topic, None, settings=conf, serde=serde, idle_timeout=60) as warm:
        touch(warm.next_proxy(60), size)
    with StreamConsumer(
        topic, group, settings=conf, serde=serde, until_high_watermark=True, idle_timeout=120
    ) as consumer:
        while not go.is_set():
            consumer.wait_for_assignment(0.1)
            assigned.value = len(consumer.assignment())
            ready.set()
        t0 = time.perf_counter()
        count = 0
        for proxy in consumer:
            touch(proxy, size)
            count += 1
        results.put((count, time.perf_counter() - t0, len(consumer.assignment())))


class ConsumerFleet:
    """Consumer worker processes, one per (group) entry, started together once every one is assigned."""

    def __init__(self, settings: FreightSettings, topic: str, groups: list[str], size: int) -> None:
        ctx: Any = context()
        self.results: Any = ctx.Queue()
        self.go = ctx.Event()
        self.assigned = [ctx.Value("i", 0) for _ in groups]
        self.children = [
            Child(consume_worker, settings_dict(settings), topic, g, size, self.results, a, go=self.go)
            for g, a in zip(groups, self.assigned, strict=True)
        ]

    def wait_ready(self, partitions_per_worker: int | None, timeout: float = 120) -> None:
        """Every worker ready, and (one group) the partitions spread: `partitions_per_worker` each, stably."""
        end = time.monotonic() + timeout
        stable_since: float | None = None
        while True:
            for child in self.children:
                child.check()
            ok = all(c.ready.is_set() for c in self.children) and (
                partitions_per_worker is None or all(a.value == partitions_per_worker for a in self.assigned)
            )
            now = time.monotonic()
            if ok:
                stable_since = stable_since or now
                if now - stable_since >= 0.5:
                    return
            else:
                stable_since = None
            if now > end:
                shares = [a.value for a in self.assigned]
                raise FreightError(f"consumer workers not ready after {timeout:g}s (partitions: {shares})")
            time.sleep(0.05)

    def run(self) -> list[tuple[int, float, int]]:
        """Go; return (objects, seconds, partitions) of every worker."""
        self.go.set()
        out: list[tuple[int, float, int]] = []
        while len(out) < len(self.children):
            try:
                out.append(self.results.get(timeout=0.2))
            except queue.Empty:
                for child in self.children:
                    child.check()
        for child in self.children:
            child.join()
        return out
