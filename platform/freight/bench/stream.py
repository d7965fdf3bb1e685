"""`freight bench stream`: end-to-end streaming against its baselines, on the same broker, in one run.

Scenarios (each states its setup in the printed table):
- bulk: numpy arrays through a file store, produce -> consume -> resolve, MB/s. Baselines: ProxyStore 1.1.0
  (its Kafka publisher/subscriber shim + FileConnector) and raw confluent-kafka with the bytes inline.
- small: 128-byte objects end to end, objects/s, against raw confluent-kafka produce+consume of the bytes.
- latency: send -> proxy available at the consumer, p50/p99/p999 at a light steady rate.

The producer runs in its own process and the consumer in this one, started first and assigned, so the
figure is what a pipeline of two processes sees. Medians over repetitions, with min and max.
"""

from __future__ import annotations

import multiprocessing as mp
import os
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
from freight.errors import FreightError

# ------------------------------------------------------------------------------------------------------
# Producer side (runs in a child process; module-level functions so 'spawn' can import them).


def _produce_freight(
    settings: dict[str, Any],
    topic: str,
    store_dir: str,
    count: int,
    size: int,
    rate: float | None,
    start: Any,
) -> None:
    import numpy as np

    from freight.connectors.file import FileConnector
    from freight.stores import Store
    from freight.stream import StreamProducer

    store = Store(f"bench-{topic}", FileConnector(Path(store_dir)))
    array = np.random.default_rng(0).integers(0, 255, size, dtype=np.uint8)
    with StreamProducer({None: store}, settings=FreightSettings(**settings)) as producer:
        producer.send(topic, np.zeros(1, np.uint8), stream="warmup")  # registers schema, publishes store
        producer.flush()
        start.set()
        interval = None if rate is None else 1.0 / rate
        for i in range(count):
            meta = {"t": str(time.perf_counter_ns())} if interval else None
            producer.send(topic, array if size >= 64 else array.tobytes(), stream=f"s{i % 4}", metadata=meta)
            if interval:
                time.sleep(interval)
        producer.flush()


def _produce_raw(settings: dict[str, Any], topic: str, count: int, size: int, start: Any) -> None:
    from confluent_kafka import Producer

    from freight.kafka import producer_config

    payload = os.urandom(size)
    producer = Producer(producer_config(FreightSettings(**settings)))
    producer.produce(topic, b"warmup", key=b"warmup")
    producer.flush()
    start.set()
    for i in range(count):
        while True:
            try:
                producer.produce(topic, payload, key=f"s{i % 4}".encode())
                break
            except BufferError:
                producer.poll(0.01)
        producer.poll(0)
    producer.flush()


def _produce_proxystore(
    settings: dict[str, Any], topic: str, store_dir: str, count: int, size: int, start: Any
) -> None:
    import numpy as np
    from confluent_kafka import Producer
    from proxystore.connectors.file import FileConnector
    from proxystore.store import Store
    from proxystore.stream import StreamProducer
    from proxystore.stream.shims.kafka import KafkaPublisher

    from freight.kafka import producer_config

    conf = producer_config(FreightSettings(**settings))
    conf.pop("logger", None)
    array = np.random.default_rng(0).integers(0, 255, size, dtype=np.uint8)
    # clear=False: ProxyStore deletes the directory when the store closes, before the consumer resolves.
    with Store(f"ps-{topic}", FileConnector(store_dir, clear=False), register=True) as store:
        producer = StreamProducer(KafkaPublisher(Producer(conf)), default_store=store)
        producer.send(topic, np.zeros(1, np.uint8), evict=False)
        producer.flush()
        start.set()
        for _ in range(count):
            producer.send(topic, array, evict=False)
        producer.flush()
        producer.close(stores=False)


def _spawn(target: Callable[..., None], *args: Any) -> tuple[Any, Any]:
    ctx = mp.get_context("spawn")
    start = ctx.Event()
    proc = ctx.Process(target=target, args=(*args, start), daemon=True)
    proc.start()
    return proc, start


def _wait_started(proc: Any, start: Any) -> None:
    """Wait for the producer's warm-up; a producer that dies is an error, not a hang."""
    deadline = time.monotonic() + 120
    while not start.wait(0.2):
        if proc.exitcode is not None or time.monotonic() > deadline:
            raise FreightError(f"benchmark producer {proc.name} failed to start (exit code {proc.exitcode})")


def _check_alive(proc: Any, deadline: float) -> None:
    if (proc.exitcode not in (None, 0)) or time.monotonic() > deadline:
        raise FreightError(f"benchmark producer {proc.name} exited with {proc.exitcode} or timed out")


# ------------------------------------------------------------------------------------------------------
# Consumer side (this process).


def _topic(settings: FreightSettings, prefix: str) -> str:
    from freight.kafka import KafkaAdmin

    name = f"bench-{prefix}-{uuid.uuid4().hex[:8]}"
    KafkaAdmin(settings).create_topic(name, 1)
    return name


def _settings_dict(settings: FreightSettings) -> dict[str, Any]:
    return {"kafka_bootstrap": settings.kafka_bootstrap, "schema_registry_url": settings.schema_registry_url}


def freight_e2e(settings: FreightSettings, count: int, size: int, workdir: Path) -> float:
    """Seconds from the producer's first send to the consumer's last resolved object."""
    import numpy as np

    from freight.stream import StreamConsumer

    topic = _topic(settings, "freight")
    with StreamConsumer(topic, f"g-{topic}", settings=settings, idle_timeout=60) as consumer:
        consumer.wait_for_assignment(30)
        proc, start = _spawn(
            _produce_freight, _settings_dict(settings), topic, str(workdir / topic), count, size, None
        )
        _wait_started(proc, start)
        t0 = time.perf_counter()
        got = 0
        for meta, proxy in consumer.iter_with_metadata():
            if meta.stream == "warmup":
                continue
            np.asarray(proxy).sum() if size >= 64 else bytes(proxy)
            got += 1
            if got == count:
                break
        elapsed = time.perf_counter() - t0
    proc.join(60)
    if got < count:
        raise FreightError(
            f"freight consumer got {got} of {count} objects (producer exit code {proc.exitcode})"
        )
    return elapsed


def raw_e2e(settings: FreightSettings, count: int, size: int) -> float:
    import numpy as np
    from confluent_kafka import Consumer

    from freight.kafka import consumer_config

    topic = _topic(settings, "raw")
    consumer = Consumer(consumer_config(settings, f"g-{topic}", {"enable.auto.offset.store": True}))
    consumer.subscribe([topic])
    while not consumer.assignment():
        consumer.poll(0.1)
    proc, start = _spawn(_produce_raw, _settings_dict(settings), topic, count, size)
    _wait_started(proc, start)
    t0 = time.perf_counter()
    got = 0
    deadline = time.monotonic() + 600
    while got < count:
        _check_alive(proc, deadline)
        # The same fetch pattern as Freight's consumer: take what is there, block only for the first record.
        msgs = consumer.consume(1000, timeout=0)
        if not msgs:
            first = consumer.poll(0.5)
            msgs = [] if first is None else [first, *consumer.consume(999, timeout=0)]
        for msg in msgs:
            if msg.error() is None and msg.key() != b"warmup":
                value = msg.value() or b""
                if size >= 64 * 1024:
                    np.frombuffer(value, np.uint8).sum()
                got += 1
    elapsed = time.perf_counter() - t0
    consumer.close()
    proc.join(60)
    return elapsed


def proxystore_e2e(settings: FreightSettings, count: int, size: int, workdir: Path) -> float:
    import numpy as np
    from confluent_kafka import Consumer
    from proxystore.stream import StreamConsumer as PSConsumer
    from proxystore.stream.shims.kafka import KafkaSubscriber

    from freight.kafka import consumer_config

    topic = _topic(settings, "proxystore")
    conf = consumer_config(settings, f"g-{topic}", {"enable.auto.offset.store": True})
    conf.pop("logger", None)
    client = Consumer(conf)
    client.subscribe([topic])
    while not client.assignment():
        client.poll(0.1)
    proc, start = _spawn(
        _produce_proxystore, _settings_dict(settings), topic, str(workdir / topic), count, size
    )
    consumer = PSConsumer(KafkaSubscriber(client))
    first = next(consumer)  # the warm-up object
    np.asarray(first)
    _wait_started(proc, start)
    t0 = time.perf_counter()
    for _ in range(count):
        np.asarray(next(consumer)).sum()
    elapsed = time.perf_counter() - t0
    consumer.close(stores=True)
    proc.join(60)
    return elapsed


def latency_ms(settings: FreightSettings, count: int, rate: float, workdir: Path) -> list[float]:
    """Per event: send -> proxy available (ms), at `rate` events/s of 1 KiB objects."""
    from freight.stream import StreamConsumer

    topic = _topic(settings, "latency")
    lat: list[float] = []
    with StreamConsumer(
        topic, f"g-{topic}", settings=settings, idle_timeout=60, kafka_config={"fetch.wait.max.ms": 5}
    ) as consumer:
        consumer.wait_for_assignment(30)
        proc, start = _spawn(
            _produce_freight, _settings_dict(settings), topic, str(workdir / topic), count, 1024, rate
        )
        _wait_started(proc, start)
        for meta, _proxy in consumer.iter_with_metadata():
            if meta.stream == "warmup":
                continue
            lat.append((time.perf_counter_ns() - int(meta.metadata["t"])) / 1e6)
            if len(lat) == count:
                break
    proc.join(60)
    return lat


# ------------------------------------------------------------------------------------------------------


def run(settings: FreightSettings, *, quick: bool, repetitions: int) -> list[Measurement]:
    """Every scenario of this module; returns the measurements (with ratios)."""
    rows: list[Measurement] = []
    bulk_count = 20 if quick else 200
    small_count = 2_000 if quick else 50_000
    with tempfile.TemporaryDirectory(prefix="freight-bench-") as tmp:
        workdir = Path(tmp)

        def mbs(fn: Callable[[], float], count: int, size: int) -> list[float]:
            return [count * size / 2**20 / fn() for _ in range(repetitions)]

        size = 2**20
        scenario = f"bulk 1 MiB numpy x{bulk_count}, file store, e2e"
        for subject, fn in (
            ("freight", lambda: freight_e2e(settings, bulk_count, size, workdir)),
            ("proxystore-1.1.0", lambda: proxystore_e2e(settings, bulk_count, size, workdir)),
            ("raw-kafka-inline", lambda: raw_e2e(settings, bulk_count, size)),
        ):
            v = mbs(fn, bulk_count, size)
            rows.append(
                Measurement(
                    scenario,
                    subject,
                    "MB/s",
                    statistics.median(v),
                    min(v),
                    max(v),
                    len(v),
                    baseline="proxystore-1.1.0" if subject == "freight" else None,
                )
            )
        rows.append(
            Measurement(
                scenario,
                "freight vs raw",
                "MB/s",
                rows[-3].median,
                rows[-3].minimum,
                rows[-3].maximum,
                repetitions,
                baseline="raw-kafka-inline",
            )
        )

        scenario = f"small 128 B x{small_count}, e2e"
        for subject, fn in (
            ("freight", lambda: freight_e2e(settings, small_count, 128, workdir)),
            ("raw-kafka", lambda: raw_e2e(settings, small_count, 128)),
        ):
            v = [small_count / fn() for _ in range(repetitions)]
            rows.append(
                Measurement(
                    scenario,
                    subject,
                    "objects/s",
                    statistics.median(v),
                    min(v),
                    max(v),
                    len(v),
                    baseline="raw-kafka" if subject == "freight" else None,
                )
            )

        lat = latency_ms(settings, 200 if quick else 2000, 200.0, workdir)
        lat.sort()
        scenario = "latency send->proxy, 1 KiB at 200/s"
        for name, q in (("p50", 0.50), ("p99", 0.99), ("p999", 0.999)):
            value = lat[min(int(q * len(lat)), len(lat) - 1)]
            rows.append(
                Measurement(scenario, name, "ms", value, lat[0], lat[-1], 1, extra={"events": len(lat)})
            )
    return with_ratios(rows)


def register(app: typer.Typer) -> None:
    @app.command("stream")
    def stream_cmd(
        quick: Annotated[bool, typer.Option(help="Small counts (a smoke run).")] = False,
        repetitions: Annotated[int, typer.Option("--repetitions", "-r", help="Repetitions per figure.")] = 3,
        out: Annotated[Path | None, typer.Option(help="Write the JSON results here.")] = None,
        json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """Freight vs ProxyStore 1.1.0 vs raw confluent-kafka, end to end on the same broker."""
        from freight.bench.services import bench_services

        with bench_services(load_settings()) as settings:
            rows = run(settings, quick=quick, repetitions=1 if quick else repetitions)
        report("freight bench stream", rows, out, json_)
