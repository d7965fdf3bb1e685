"""`freight bench buffer-kafka`: `consumer.chunks()` on a real broker against plain consumption.

Setup: a one-partition topic holds four interleaved streams of numpy items (128 B, travelling inline in the
events, or 1 MiB, in a file store), each ended by END_OF_STREAM. Every subject is a fresh consumer group
reading that backlog to the high watermark with the same `StreamConsumer` settings (manual commits, one
shared serde, the group joined before the clock starts):

- baseline "plain": iterate the proxies (`for proxy in consumer`), or resolve each one (`extract`);
- "chunks ...": `consumer.chunks(policy)` with the proxies, resolved, or resolved and stacked, committing
  every second (the default) or before every chunk.

Figures: chunks per second, and the time each chunk adds over plain consumption of the same items,
(t_chunks - t_plain) / chunks, in microseconds. Medians of the repetitions with min and max; printed and
written to JSON, never asserted.
"""

from __future__ import annotations

import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from freight.bench._common import Measurement, report, with_ratios
from freight.config import FreightSettings, load_settings

STREAMS = 4


def _produce(settings: FreightSettings, store_dir: Path, n_items: int, item_bytes: int) -> str:
    """A fresh one-partition topic with `n_items` items over STREAMS streams, each ended; returns it."""
    import numpy as np

    from freight.connectors.file import FileConnector
    from freight.kafka import KafkaAdmin
    from freight.stores import Store
    from freight.stream import StreamProducer

    topic = f"bench-buffer-{uuid.uuid4().hex[:8]}"
    KafkaAdmin(settings).create_topic(topic, 1)
    store = Store(f"bench-{topic}", FileConnector(store_dir / topic))
    array = np.random.default_rng(0).integers(0, 255, item_bytes, dtype=np.uint8)
    with StreamProducer({None: store}, settings=settings) as producer:
        for i in range(n_items):
            producer.send(topic, array, stream=f"s{i % STREAMS}")
        for s in range(STREAMS):
            producer.end_stream(topic, f"s{s}")
        producer.flush()
    return topic


def _timed_run(
    settings: FreightSettings, topic: str, serde: Any, body: Callable[[Any], int]
) -> tuple[float, int]:
    """Seconds `body(consumer)` takes on a fresh group (joined before timing), and what it counted."""
    from freight.stream import StreamConsumer

    with StreamConsumer(
        topic,
        f"bench-buffer-{uuid.uuid4().hex[:8]}",
        settings=settings,
        auto_commit=False,
        until_high_watermark=True,
        serde=serde,
    ) as consumer:
        consumer.wait_for_assignment(30)
        t0 = time.perf_counter()
        count = body(consumer)
        return time.perf_counter() - t0, count


def _plain(resolve: bool) -> Callable[[Any], int]:
    from freight.stream import extract

    def run(consumer: Any) -> int:
        n = 0
        for proxy in consumer:
            if resolve:
                extract(proxy)
            n += 1
        return n

    return run


def _chunked(policy: Any, **options: Any) -> Callable[[Any], int]:
    def run(consumer: Any) -> int:
        return sum(1 for _ in consumer.chunks(policy, **options))

    return run


def _subjects() -> list[tuple[str, Any, dict[str, Any]]]:
    from freight.buffer import Count, SlidingWindow

    window, count = SlidingWindow(16, 4), Count(16)
    return [
        ("chunks SlidingWindow(16,4)", window, {}),
        ("chunks SlidingWindow(16,4), commit every chunk", window, {"commit_interval": 0}),
        ("chunks Count(16)", count, {}),
        ("chunks SlidingWindow(16,4) resolved", window, {"resolve": True}),
        ("chunks SlidingWindow(16,4) resolved+stacked", window, {"stack": True}),
    ]


def run_bench(
    settings: FreightSettings, sizes: dict[str, tuple[int, int]], repetitions: int, workdir: Path
) -> list[Measurement]:
    """Every subject for every (label: (items, bytes)) size; returns the measurements."""
    from freight.schemas.serde import EventSerde

    serde = EventSerde.from_settings(settings)
    rows: list[Measurement] = []
    for label, (n_items, item_bytes) in sizes.items():
        topic = _produce(settings, workdir, n_items, item_bytes)
        _timed_run(settings, topic, serde, _plain(True))  # warm-up: schema ids, page cache
        for subject, policy, options in _subjects():
            resolved = bool(options.get("resolve") or options.get("stack"))
            scenario = f"{label} x{n_items}, {subject}"
            base_t: list[float] = []
            sub_t: list[float] = []
            n_chunks = 0
            for _ in range(repetitions):  # interleaved, so that load drifts hit both alike
                t, n = _timed_run(settings, topic, serde, _plain(resolved))
                if n != n_items:
                    raise AssertionError(f"plain consumption read {n} of {n_items} items")
                base_t.append(t)
                t, n_chunks = _timed_run(settings, topic, serde, _chunked(policy, **options))
                sub_t.append(t)
            base_name = "plain proxies, resolved" if resolved else "plain proxies"
            extra = {"chunks": n_chunks, "items": n_items, "item_bytes": item_bytes, "streams": STREAMS}
            base_rates = sorted(n_chunks / t for t in base_t)
            sub_rates = sorted(n_chunks / t for t in sub_t)
            rows.append(
                Measurement(
                    scenario,
                    base_name,
                    "chunks/s",
                    statistics.median(base_rates),
                    base_rates[0],
                    base_rates[-1],
                    repetitions,
                    extra={**extra, "items/s": n_items / statistics.median(base_t)},
                )
            )
            rows.append(
                Measurement(
                    scenario,
                    "freight chunks()",
                    "chunks/s",
                    statistics.median(sub_rates),
                    sub_rates[0],
                    sub_rates[-1],
                    repetitions,
                    baseline=base_name,
                    extra=extra,
                )
            )
            added = sorted((s - b) / n_chunks * 1e6 for s, b in zip(sub_t, base_t, strict=True))
            rows.append(
                Measurement(
                    scenario,
                    "added per chunk",
                    "us",
                    (statistics.median(sub_t) - statistics.median(base_t)) / n_chunks * 1e6,
                    added[0],
                    added[-1],
                    repetitions,
                    extra=extra,
                )
            )
    return rows


def register(app: typer.Typer) -> None:
    @app.command("buffer-kafka")
    def buffer_kafka_bench(
        quick: Annotated[bool, typer.Option(help="Small counts (a smoke run).")] = False,
        repetitions: Annotated[int, typer.Option("--repetitions", "-r", min=1, help="Repetitions.")] = 3,
        small_items: Annotated[int, typer.Option(help="Number of 128-byte items.", min=64)] = 40_000,
        large_items: Annotated[int, typer.Option(help="Number of 1 MiB items.", min=64)] = 400,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
        out: Annotated[Path | None, typer.Option(help="Also write the JSON document here.")] = None,
    ) -> None:
        """consumer.chunks() on the broker vs plain consumption: chunks/s and added time per chunk."""
        from freight.bench.services import bench_services

        if quick:
            small_items, large_items, repetitions = 4_000, 64, 1
        sizes = {"128 B": (small_items, 128), "1 MiB": (large_items, 1 << 20)}
        with (
            bench_services(load_settings()) as settings,
            tempfile.TemporaryDirectory(prefix="freight-bench-buffer-") as tmp,
        ):
            rows = with_ratios(run_bench(settings, sizes, repetitions, Path(tmp)))
        report("freight.buffer on Kafka: consumer.chunks() vs plain consumption", rows, out, as_json)
