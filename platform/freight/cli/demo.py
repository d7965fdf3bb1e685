"""`freight demo` (the demonstration behind `make demo`), its command and its run in one CLI module.

With no configuration it starts the local services (Kafka broker and schema registry), streams numpy
arrays (tens of MiB) through a file store, consumes them with two consumer groups in two other processes,
replays one group from offset 0, verifies every checksum, prints what moved where (events, bulk bytes
written and read per process) with the throughput, and stops the services it started. Set
FREIGHT_KAFKA_BOOTSTRAP and FREIGHT_SCHEMA_REGISTRY_URL to run it against running services instead.
"""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from queue import Empty
from typing import Annotated, Any

import typer
from rich.console import Console

from freight.config import FreightSettings, load_settings
from freight.dev import DevOptions, down, up
from freight.errors import FreightError
from freight.output import print_table

console = Console()
STREAMS = ("sensor-a", "sensor-b", "sensor-c", "sensor-d")


@contextmanager
def local_services(state_dir: Path, keep: bool) -> Iterator[FreightSettings]:
    """Settings of running services: the configured ones, or local ones started here (and stopped)."""
    if os.environ.get("FREIGHT_KAFKA_BOOTSTRAP") and os.environ.get("FREIGHT_SCHEMA_REGISTRY_URL"):
        yield load_settings()
        return
    console.print(f"[dim]starting local Kafka and the schema registry in {state_dir} ...[/]")
    results = up(DevOptions(state_dir=state_dir, services=["kafka", "registry"]))
    env = {k: v for r in results for k, v in r.env.items()}
    try:
        yield load_settings(
            kafka_bootstrap=env["FREIGHT_KAFKA_BOOTSTRAP"],
            schema_registry_url=env["FREIGHT_SCHEMA_REGISTRY_URL"],
        )
    finally:
        if not keep:
            down(state_dir)
            console.print("[dim]stopped the local services[/]")


@dataclass
class ConsumerReport:
    """What one consumer process did."""

    role: str
    pid: int
    events: int
    objects: int
    bulk_bytes_read: int
    verified: int
    mismatches: int
    seconds: float


def _consume(settings: dict[str, str], topic: str, group: str, role: str, replay: bool, queue: Any) -> None:
    """Consumer process: read every stream to its END_OF_STREAM, verify each array's SHA-256."""
    import numpy as np

    from freight.stores.resolver import default_resolver
    from freight.stream import StreamConsumer

    t0 = time.perf_counter()
    verified = mismatches = 0
    with StreamConsumer(
        topic, group, settings=load_settings(**settings), until_end_of=STREAMS, idle_timeout=60
    ) as consumer:
        if replay:
            consumer.seek("beginning")
        for meta, array in consumer.iter_objects_with_metadata():
            digest = hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()
            if digest == meta.metadata["sha256"]:
                verified += 1
            else:
                mismatches += 1
        consumer.commit()
        stats = consumer.stats
    read = sum(s.stats.bytes_read for s in default_resolver().stores())
    queue.put(
        asdict(
            ConsumerReport(
                role,
                os.getpid(),
                stats.events,
                stats.objects,
                read,
                verified,
                mismatches,
                time.perf_counter() - t0,
            )
        )
    )


def _run_consumers(
    settings: FreightSettings, topic: str, jobs: list[tuple[str, str, bool]], store_root: Path
) -> list[ConsumerReport]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    conf = {
        "kafka_bootstrap": settings.kafka_bootstrap,
        "schema_registry_url": settings.schema_registry_url,
        # The consumers rebuild the demo's file store from the catalog: allow its directory (docs/security.md)
        "allowed_store_roots": ",".join(str(r) for r in [*settings.allowed_store_roots, store_root]),
    }
    procs = [
        ctx.Process(target=_consume, args=(conf, topic, group, role, replay, queue))
        for role, group, replay in jobs
    ]
    for p in procs:
        p.start()
    reports: list[ConsumerReport] = []
    deadline = time.monotonic() + 300
    while len(reports) < len(procs):
        try:
            reports.append(ConsumerReport(**queue.get(timeout=1)))
        except Empty:
            dead = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
            if dead or time.monotonic() > deadline:
                for p in procs:
                    p.terminate()
                raise FreightError(
                    f"a demo consumer process failed (exit codes {dead}); its error is printed above"
                    if dead
                    else "the demo consumers did not finish within 300 s"
                ) from None
    for p in procs:
        p.join(30)
        if p.exitcode != 0:
            raise FreightError(f"a demo consumer process exited with code {p.exitcode}")
    return sorted(reports, key=lambda r: r.role)


def run_demo(*, state_dir: Path, keep_services: bool = False, arrays: int = 48, mib_each: int = 1) -> None:
    import numpy as np

    from freight.connectors.file import FileConnector
    from freight.kafka import KafkaAdmin
    from freight.stores import Store
    from freight.stream import StreamProducer

    state_dir = state_dir.resolve()
    with local_services(state_dir, keep_services) as settings:
        topic = f"freight-demo-{uuid.uuid4().hex[:8]}"
        KafkaAdmin(settings).create_topic(topic, partitions=3)
        store = Store("demo-files", FileConnector(state_dir / "store"))
        rng = np.random.default_rng(7)
        elements = mib_each * 2**20 // 8

        data = [rng.standard_normal(elements).reshape(-1, 1024) for _ in range(arrays)]
        digests = [hashlib.sha256(a.tobytes()).hexdigest() for a in data]
        with StreamProducer({None: store}, settings=settings) as producer:
            producer.send(topic, data[0], stream=STREAMS[0], metadata={"sha256": digests[0]})
            producer.flush()  # first send registers the schema and publishes the store config
            t0 = time.perf_counter()
            for i in range(1, arrays):
                producer.send(
                    topic, data[i], stream=STREAMS[i % len(STREAMS)], metadata={"sha256": digests[i]}
                )
            for stream in STREAMS:
                producer.end_stream(topic, stream)
            producer.flush()
            produced = producer.stats
        produce_s = time.perf_counter() - t0
        del data

        console.print(f"[dim]produced {arrays} arrays; consuming with two groups in two processes ...[/]")
        groups = _run_consumers(
            settings,
            topic,
            [("group analytics", "demo-analytics", False), ("group archive", "demo-archive", False)],
            state_dir / "store",
        )
        console.print("[dim]replaying group analytics from offset 0 ...[/]")
        replays = _run_consumers(
            settings, topic, [("replay analytics @0", "demo-analytics", True)], state_dir / "store"
        )

        total_mib = produced.bulk_bytes / 2**20
        rows: list[list[Any]] = [
            [
                "producer",
                os.getpid(),
                produced.events,
                produced.objects,
                f"{total_mib:.1f}",
                "0.0",
                "-",
                f"{produce_s:.2f}",
                f"{total_mib / produce_s:.0f}",
            ]
        ]
        for r in [*groups, *replays]:
            mib_read = r.bulk_bytes_read / 2**20
            rows.append(
                [
                    r.role,
                    r.pid,
                    r.events,
                    r.objects,
                    "0.0",
                    f"{mib_read:.1f}",
                    f"{r.verified}/{r.objects}",
                    f"{r.seconds:.2f}",
                    f"{mib_read / r.seconds:.0f}",
                ]
            )
        print_table(
            f"Freight demo: {arrays} numpy arrays ({total_mib:.0f} MiB), topic {topic}, file store",
            [
                "process",
                "pid",
                "events",
                "objects",
                "MiB written",
                "MiB read",
                "checksums ok",
                "seconds",
                "MiB/s",
            ],
            rows,
            caption="events: Kafka records (objects + END_OF_STREAM); bulk bytes: store <-> resolver",
        )
        store.evict_batch([k.key for k in store.connector.list()])
        KafkaAdmin(settings).delete_topics([topic])
        bad = sum(r.mismatches for r in [*groups, *replays])
        missing = sum(arrays - r.verified for r in [*groups, *replays])
        if bad or missing:
            raise FreightError(f"demo failed: {bad} checksum mismatch(es), {missing} array(s) not verified")
        console.print(
            "[bold green]demo ok[/]: every array verified by SHA-256 in both groups and in the replay"
        )


GROUP = None
app = typer.Typer()


@app.command("demo")
def demo_cmd(
    state_dir: Annotated[Path, typer.Option(help="Where the demo's services keep their data.")] = Path(
        ".freight/demo"
    ),
    keep_services: Annotated[bool, typer.Option(help="Leave the services it started running.")] = False,
) -> None:
    """Stream numpy arrays through local Kafka + a file store, two groups, a replay, verified; then stop."""
    run_demo(state_dir=state_dir, keep_services=keep_services)
