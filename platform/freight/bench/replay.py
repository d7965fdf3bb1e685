"""`freight bench replay`: re-read a stream from offset 0 with the proxies left unresolved.

Setup (not timed): a producer writes N objects of 64 bytes, each to a store (inline threshold 0, so every
event points at a stored object; a memory store, as no object is ever read), on one partition. Timed: a
consumer without a group, assigned at offset 0, reads every event up to the high watermark and gets its
proxy, never resolving it (the store is not touched), against raw confluent-kafka reading the same records
from offset 0. Events/s.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer

from freight.bench._procs import drop_topics, new_topic
from freight.bench.stream import Scenario, Tick, _measure, _no_tick
from freight.config import FreightSettings
from freight.errors import FreightError


def produce_events(settings: FreightSettings, topic: str, count: int) -> None:
    """`count` events, each pointing at its own 64-byte object in a memory store (never read back)."""
    from freight.connectors.memory import MemoryConnector
    from freight.stores import Store
    from freight.stream import StreamProducer

    store = Store(f"bench-{topic}", MemoryConnector(f"bench-{topic}"))
    payload = bytes(64)
    with StreamProducer({None: store}, settings=settings, inline_threshold=0) as producer:
        for i in range(count):
            producer.send(topic, payload, stream=f"s{i % 16}")
        producer.flush()
    store.evict_batch([info.key for info in store.connector.list()])  # the objects are not needed again


def freight_replay(settings: FreightSettings, topic: str, count: int) -> float:
    """Seconds to get every proxy from offset 0 (no group, nothing resolved)."""
    from freight.stream import StreamConsumer

    t0 = time.perf_counter()
    got = 0
    with StreamConsumer(
        topic, None, settings=settings, until_high_watermark=True, idle_timeout=60
    ) as consumer:
        for _proxy in consumer:
            got += 1
    elapsed = time.perf_counter() - t0
    if got != count:
        raise FreightError(f"replay read {got} of {count} events")
    return elapsed


def raw_replay(settings: FreightSettings, topic: str, count: int) -> float:
    """Seconds for a confluent-kafka consumer assigned at offset 0 to read `count` records."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    from freight.kafka import consumer_config

    t0 = time.perf_counter()
    consumer = Consumer(
        consumer_config(settings, f"bench-replay-{time.monotonic_ns()}", {"enable.auto.commit": False})
    )
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    got = 0
    deadline = time.monotonic() + 120
    try:
        while got < count and time.monotonic() < deadline:
            # Freight's fetch pattern: take what is there, block only for the first record.
            msgs = consumer.consume(1000, timeout=0)
            if not msgs:
                first = consumer.poll(0.5)
                msgs = [] if first is None else [first, *consumer.consume(999, timeout=0)]
            got += sum(1 for msg in msgs if msg.error() is None)
    finally:
        consumer.close()
    elapsed = time.perf_counter() - t0
    if got != count:
        raise FreightError(f"raw replay read {got} of {count} records")
    return elapsed


def replay(
    settings: FreightSettings, workdir: Path, *, count: int, repetitions: int, tick: Tick = _no_tick
) -> Scenario:
    """The replay scenario: Freight vs raw confluent-kafka, events/s."""
    name = "replay"
    sc = Scenario(
        name,
        f"replay {count:,} events from offset 0, proxies not resolved",
        f"{count:,} events on one partition, each pointing at its own 64 B object in a store (written "
        "before the clock starts; a memory store, since no proxy is resolved); a consumer without a group, "
        "assigned at offset 0, reads up to the high watermark and gets every proxy without resolving it; "
        "raw: confluent-kafka (the same fetch pattern) from offset 0 of the same records; events/s "
        "including the consumer's start",
        "events/s",
    )
    topic = new_topic(settings, "replay")
    try:
        tick(f"{name}: writing {count:,} events")
        produce_events(settings, topic, count)
        sc.rows.append(
            _measure(
                name,
                "freight",
                sc.unit,
                lambda: count / freight_replay(settings, topic, count),
                repetitions,
                tick,
                "raw-kafka",
            )
        )
        sc.rows.append(
            _measure(
                name,
                "raw-kafka",
                sc.unit,
                lambda: count / raw_replay(settings, topic, count),
                repetitions,
                tick,
            )
        )
    finally:
        drop_topics(settings, topic)
    from freight.bench._common import with_ratios

    with_ratios(sc.rows)
    return sc


def register(app: typer.Typer) -> None:
    @app.command("replay")
    def replay_cmd(
        count: Annotated[int, typer.Option("--count", "-n", help="Events to replay.")] = 100_000,
        repetitions: Annotated[int, typer.Option("--repetitions", "-r", help="Repetitions per figure.")] = 3,
        out: Annotated[Path | None, typer.Option(help="Write the JSON results here.")] = None,
        json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """Re-read N events from offset 0 (proxies unresolved) vs raw confluent-kafka."""
        from freight.bench._common import report
        from freight.bench.services import bench_services
        from freight.config import load_settings

        with (
            bench_services(load_settings()) as settings,
            tempfile.TemporaryDirectory(prefix="freight-bench-") as tmp,
        ):
            sc = replay(settings, Path(tmp), count=count, repetitions=repetitions)
        report("freight bench replay", sc.rows, out, json_)
