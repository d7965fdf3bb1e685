"""`freight bench eviction`: evictions per second (file and S3 stores) and the evictor's lag under load.

Evictions per second: N stored objects on a fresh 2-partition topic, a retaining group committed at the end
of it, then one timed `Evictor.run_once` (read the events below the watermark, delete in batches, commit the
checkpoint after each). The baseline, measured in the same run on the same keys, is the connector's own
`evict_batch` in batches of the same size (the objects are written again first): what deleting costs with no
Kafka reading and no checkpointing.

Lag under load: a producer sends at a fixed rate, a consumer group reads and commits as it goes, the evictor
runs as a service; every 0.1 s the sampler reads the watermark (the group's committed offsets) and the
evictor's checkpoint: lag = the offsets below the watermark the evictor has not passed yet. Also sampled:
objects in the store. Runs against the configured broker and registry if they answer, else starts local ones;
S3 is FREIGHT_S3_ENDPOINT_URL or a moto server started for the run. Timings are printed, never asserted.
"""

from __future__ import annotations

import functools
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from freight.bench._common import Measurement, report, with_ratios

if TYPE_CHECKING:
    from freight.config import FreightSettings
    from freight.kafka import KafkaAdmin
    from freight.stores import Store

SCENARIOS = ("file", "s3", "lag")


@contextmanager
def _backend(kind: str) -> Iterator[Store]:
    """A fresh store of `kind` (file in a temp dir; S3 in a new bucket on the endpoint)."""
    from freight.stores import Store

    if kind == "file":
        from freight.connectors import FileConnector

        with tempfile.TemporaryDirectory(prefix="freight-bench-evict-") as tmp:
            store = Store(f"bench-evict-{uuid.uuid4().hex[:8]}", FileConnector(Path(tmp)))
            yield store
            store.close()
        return
    from freight.bench._stores_s3 import s3_endpoint
    from freight.connectors import S3Connector

    with s3_endpoint():
        bucket = f"freight-bench-evict-{uuid.uuid4().hex[:8]}"
        store = Store(f"bench-evict-s3-{uuid.uuid4().hex[:8]}", S3Connector(bucket, create_bucket=True))
        try:
            yield store
        finally:
            keys = [i.key for i in store.connector.list()]
            if keys:
                store.evict_batch(keys)
            store.close()


def _topic_with_objects(
    settings: FreightSettings, admin: KafkaAdmin, store: Store, n: int, size: int, group: str
) -> tuple[str, list[str]]:
    """A new topic holding `n` stored objects, `group` committed at its end, a policy naming `group`."""
    import numpy as np

    from freight.eviction import PolicyStore, RetentionPolicy
    from freight.stream import StreamProducer

    topic = f"bench-evict-{uuid.uuid4().hex[:10]}"
    admin.create_topic(topic, 2)
    keys: list[str] = []
    with StreamProducer(
        {None: store}, settings=settings, producer_id=f"bench{uuid.uuid4().hex[:6]}"
    ) as producer:
        blob = np.zeros(size // 8, dtype=np.int64)
        for i in range(n):
            producer.send(topic, blob, stream=f"s{i % 8}")
        producer.flush()
    prefix = f"{topic}/"
    keys = [info.key for info in store.connector.list(prefix)]
    highs = {(topic, p): hi for p, (_lo, hi) in admin.watermarks(topic).items()}
    admin.alter_group_offsets(group, highs)
    PolicyStore(settings, admin=admin).put(
        RetentionPolicy(topic=topic, groups=(group,), all_committed_groups=False)
    )
    return topic, keys


def _cleanup(settings: FreightSettings, admin: KafkaAdmin, topics: list[str]) -> None:
    from freight.eviction import PolicyStore

    with PolicyStore(settings, admin=admin) as policies:
        for topic in topics:
            policies.delete(topic)
    admin.delete_topics(topics)


def bench_rate(
    settings: FreightSettings, kind: str, n: int, size: int, reps: int, batch: int, tick: Callable[[], None]
) -> list[Measurement]:
    """Evictions/s of one evictor pass vs the connector's `evict_batch` of the same keys, per repetition."""
    from freight.eviction import Evictor
    from freight.kafka import KafkaAdmin

    admin = KafkaAdmin(settings)
    evictor_rates: list[float] = []
    raw_rates: list[float] = []
    topics: list[str] = []
    scenario = f"evict {n} x {size // 1024} KiB ({kind})"
    with _backend(kind) as store, Evictor(settings, stores=[store], batch_size=batch, admin=admin) as evictor:
        for rep in range(reps + 1):  # the first repetition warms up (connections, schema ids) and is dropped
            group = f"bench-evict-g-{uuid.uuid4().hex[:8]}"
            topic, keys = _topic_with_objects(settings, admin, store, n, size, group)
            topics.append(topic)
            t0 = time.perf_counter()
            result = evictor.run_once([topic])
            seconds = time.perf_counter() - t0
            if result.deleted != len(keys) or result.errors:
                raise RuntimeError(f"the evictor deleted {result.deleted} of {len(keys)}: {result.errors}")
            # The baseline: the same keys written again, then deleted by the connector in equal batches.
            payload = b"\0" * size
            store.connector.put_batch([(k, payload) for k in keys])
            t1 = time.perf_counter()
            for i in range(0, len(keys), batch):
                store.connector.evict_batch(keys[i : i + batch])
            raw_seconds = time.perf_counter() - t1
            if rep:
                evictor_rates.append(len(keys) / seconds)
                raw_rates.append(len(keys) / raw_seconds)
            tick()
    _cleanup(settings, admin, topics)
    extra = {"objects": n, "object_bytes": size, "batch_size": batch, "partitions": 2}
    return [
        Measurement(scenario, "connector evict_batch", "objects/s", *_stats(raw_rates), reps, extra=extra),
        Measurement(
            scenario,
            "evictor pass",
            "objects/s",
            *_stats(evictor_rates),
            reps,
            baseline="connector evict_batch",
            extra=extra,
        ),
    ]


def _stats(values: list[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


def _p95(values: list[int]) -> float:
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))])


def bench_lag(
    settings: FreightSettings,
    rate: float,
    seconds: float,
    interval: float,
    size: int,
    tick: Callable[[], None],
) -> list[Measurement]:
    """The evictor's lag behind the watermark (offsets), sampled while a producer and a group run."""
    import numpy as np

    from freight.eviction import EVICTOR_GROUP, Evictor, PolicyStore, RetentionPolicy
    from freight.kafka import KafkaAdmin
    from freight.stream import StreamConsumer, StreamProducer

    admin = KafkaAdmin(settings)
    topic = f"bench-evict-lag-{uuid.uuid4().hex[:8]}"
    group = f"bench-evict-lag-g-{uuid.uuid4().hex[:6]}"
    admin.create_topic(topic, 2)
    PolicyStore(settings, admin=admin).put(
        RetentionPolicy(topic=topic, groups=(group,), all_committed_groups=False)
    )
    stop = threading.Event()
    stop_evictor = threading.Event()
    lag: list[int] = []
    held: list[int] = []
    sent = [0]
    deleted = [0]
    with _backend("file") as store:

        def produce() -> None:
            blob = np.zeros(size // 8, dtype=np.int64)
            with StreamProducer({None: store}, settings=settings) as producer:
                start = time.perf_counter()
                while not stop.is_set():
                    producer.send(topic, blob, stream=f"s{sent[0] % 8}")
                    sent[0] += 1
                    ahead = sent[0] / rate - (time.perf_counter() - start)
                    if ahead > 0:
                        time.sleep(ahead)

        def consume() -> None:
            with StreamConsumer(topic, group, settings=settings, poll_timeout=0.1) as consumer:
                while not stop.is_set():
                    consumer.poll(0.1)

        with Evictor(settings, stores=[store], stop=stop_evictor, admin=KafkaAdmin(settings)) as evictor:
            workers = [
                threading.Thread(target=produce, daemon=True),
                threading.Thread(target=consume, daemon=True),
                threading.Thread(
                    target=lambda: evictor.serve(
                        interval,
                        topics=[topic],
                        orphan_interval_s=None,
                        on_pass=lambda r: deleted.__setitem__(0, deleted[0] + r.deleted),
                    ),
                    daemon=True,
                ),
            ]
            for w in workers:
                w.start()
            warm = time.monotonic() + min(3.0, seconds / 4)  # the group joins and commits first
            end = warm + seconds
            while time.monotonic() < end:
                now = time.monotonic()
                marks = admin.committed(group, topic)
                checkpoint = admin.committed(EVICTOR_GROUP, topic)
                if now >= warm and marks:
                    lag.append(sum(max(o - checkpoint.get(tp, 0), 0) for tp, o in marks.items()))
                    held.append(sum(1 for _ in store.connector.list(f"{topic}/")))
                    tick()
                time.sleep(0.1)
            stop.set()
            stop_evictor.set()
            for w in workers:
                w.join(30)
    _cleanup(settings, admin, [topic])
    extra: dict[str, Any] = {
        "rate_objects_per_s": rate,
        "evictor_interval_s": interval,
        "object_bytes": size,
        "sent": sent[0],
        "deleted": deleted[0],
        "samples": len(lag),
    }
    scenario = f"lag under load ({rate:g} objects/s, evictor every {interval:g}s, file)"
    return [
        Measurement(
            scenario,
            "evictor lag behind watermark",
            "offsets",
            float(statistics.median(lag)),
            float(min(lag)),
            float(max(lag)),
            len(lag),
            extra={**extra, "p95": _p95(lag)},
        ),
        Measurement(
            scenario,
            "objects in the store",
            "objects",
            float(statistics.median(held)),
            float(min(held)),
            float(max(held)),
            len(held),
            extra={**extra, "p95": _p95(held)},
        ),
    ]


def register(app: typer.Typer) -> None:
    @app.command("eviction")
    def eviction_bench(
        quick: Annotated[
            bool, typer.Option("--quick", help="Fewer objects, repetitions and seconds.")
        ] = False,
        only: Annotated[
            list[str] | None, typer.Option("--only", help=f"Scenarios: {', '.join(SCENARIOS)} (repeatable).")
        ] = None,
        objects: Annotated[int | None, typer.Option(min=10, help="Objects per eviction pass.")] = None,
        size: Annotated[int, typer.Option(min=8192, help="Bytes per object.")] = 16384,
        repetitions: Annotated[int | None, typer.Option("--repetitions", "-r", min=1)] = None,
        old_n: Annotated[int | None, typer.Option("-n", hidden=True, min=1, help="Old name of -r.")] = None,
        batch_size: Annotated[int, typer.Option(min=1, help="Evictor batch size.")] = 500,
        rate: Annotated[float, typer.Option(help="Lag scenario: objects sent per second.")] = 500.0,
        seconds: Annotated[float | None, typer.Option(help="Lag scenario: sampled seconds.")] = None,
        interval: Annotated[float, typer.Option(help="Lag scenario: evictor interval (s).")] = 0.5,
        json_: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
        out: Annotated[Path | None, typer.Option(help="Also write the JSON document here.")] = None,
    ) -> None:
        """Evictions/s (file, S3) vs the connector's own evict_batch, and the evictor's lag under load."""
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        from freight.bench.services import bench_services
        from freight.config import load_settings
        from freight.errors import ConfigError

        chosen = list(only or SCENARIOS)
        unknown = [s for s in chosen if s not in SCENARIOS]
        if unknown:
            raise ConfigError(f"unknown scenario(s) {unknown}; choose from {', '.join(SCENARIOS)}")
        n = objects or (300 if quick else 2000)
        reps = old_n or repetitions or (2 if quick else 3)  # -n: the old short name of -r
        lag_s = seconds or (5.0 if quick else 20.0)
        rows: list[Measurement] = []
        with (
            bench_services(load_settings()) as settings,
            Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TimeElapsedColumn(),
                transient=True,
                disable=json_,
            ) as progress,
        ):
            for kind in ("file", "s3"):
                if kind in chosen:
                    task = progress.add_task(f"evict {n} objects ({kind})", total=reps + 1)
                    tick = functools.partial(progress.advance, task)
                    rows += with_ratios(bench_rate(settings, kind, n, size, reps, batch_size, tick))
            if "lag" in chosen:
                task = progress.add_task(f"lag under load ({rate:g}/s)", total=int(lag_s * 10))
                rows += bench_lag(
                    settings, rate, lag_s, interval, size, functools.partial(progress.advance, task)
                )
        report("freight bench eviction", rows, out=out, as_json=json_)
