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
#
# Handshake, the same for every subject: the producer sends one warm-up object and sets `ready`; the
# consumer receives and resolves it (first-use costs such as schema and store lookups happen here, outside
# the timing) and sets `go`; only then does the producer send the timed objects.


def _produce_freight(
    settings: dict[str, Any],
    topic: str,
    store_dir: str,
    count: int,
    size: int,
    rate: float | None,
    ready: Any,
    go: Any,
) -> None:
    import numpy as np

    from freight.connectors.file import FileConnector
    from freight.stores import Store
    from freight.stream import StreamProducer

    store = Store(f"bench-{topic}", FileConnector(Path(store_dir)))
    array = np.random.default_rng(0).integers(0, 255, size, dtype=np.uint8)
    obj: Any = array if size >= 64 * 1024 else array.tobytes()
    with StreamProducer({None: store}, settings=FreightSettings.model_validate(settings)) as producer:
        producer.send(topic, obj, stream="warmup")
        producer.flush()
        ready.set()
        go.wait(120)
        interval = None if rate is None else 1.0 / rate
        for i in range(count):
            meta = {"t": str(time.perf_counter_ns())} if interval else None
            producer.send(topic, obj, stream=f"s{i % 4}", metadata=meta)
            if interval:
                time.sleep(interval)
        producer.flush()


def _produce_raw(settings: dict[str, Any], topic: str, count: int, size: int, ready: Any, go: Any) -> None:
    from confluent_kafka import Producer

    from freight.kafka import producer_config

    payload = os.urandom(size)
    producer = Producer(producer_config(FreightSettings.model_validate(settings)))
    producer.produce(topic, payload, key=b"warmup")
    producer.flush()
    ready.set()
    go.wait(120)
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
    settings: dict[str, Any], topic: str, store_dir: str, count: int, size: int, ready: Any, go: Any
) -> None:
    import numpy as np
    from confluent_kafka import Producer
    from proxystore.connectors.file import FileConnector
    from proxystore.store import Store
    from proxystore.stream import StreamProducer
    from proxystore.stream.shims.kafka import KafkaPublisher

    from freight.kafka import producer_config

    conf = producer_config(FreightSettings.model_validate(settings))
    conf.pop("logger", None)
    array = np.random.default_rng(0).integers(0, 255, size, dtype=np.uint8)
    # clear=False: ProxyStore deletes the directory when the store closes, before the consumer resolves.
    with Store(f"ps-{topic}", FileConnector(store_dir, clear=False), register=True) as store:
        producer: Any = StreamProducer(KafkaPublisher(Producer(conf)), default_store=store)
        producer.send(topic, array, evict=False)
        producer.flush()
        ready.set()
        go.wait(120)
        for _ in range(count):
            producer.send(topic, array, evict=False)
        producer.flush()
        producer.close(stores=False)


class _Run:
    """A producer process and its handshake events."""

    def __init__(self, target: Callable[..., None], *args: Any) -> None:
        ctx = mp.get_context("spawn")
        self.ready = ctx.Event()
        self.go = ctx.Event()
        self.proc = ctx.Process(target=target, args=(*args, self.ready, self.go), daemon=True)
        self.proc.start()
        self.deadline = time.monotonic() + 600

    def wait_ready(self) -> None:
        """Wait for the warm-up send; a producer that dies is an error, not a hang."""
        while not self.ready.wait(0.2):
            self.check()

    def check(self) -> None:
        if self.proc.exitcode not in (None, 0) or time.monotonic() > self.deadline:
            raise FreightError(
                f"benchmark producer {self.proc.name} exited with {self.proc.exitcode} or timed out"
            )

    def start(self) -> float:
        """Let the producer send the timed objects; return the start time."""
        self.go.set()
        return time.perf_counter()

    def join(self) -> None:
        self.proc.join(60)


# ------------------------------------------------------------------------------------------------------
# Consumer side (this process).


def _topic(settings: FreightSettings, prefix: str) -> str:
    from freight.kafka import KafkaAdmin

    name = f"bench-{prefix}-{uuid.uuid4().hex[:8]}"
    KafkaAdmin(settings).create_topic(name, 1)
    return name


def _settings_dict(settings: FreightSettings) -> dict[str, Any]:
    return {"kafka_bootstrap": settings.kafka_bootstrap, "schema_registry_url": settings.schema_registry_url}


def _touch(obj: Any, size: int) -> None:
    """Use the object as a consumer would: read every byte of an array, or the bytes of a small object."""
    import numpy as np

    if size >= 64 * 1024:
        np.asarray(obj).sum()
    else:
        bytes(obj)


def freight_e2e(settings: FreightSettings, count: int, size: int, workdir: Path) -> float:
    """Seconds from the producer's go to the consumer's last resolved object."""
    from freight.stream import StreamConsumer

    topic = _topic(settings, "freight")
    with StreamConsumer(topic, f"g-{topic}", settings=settings, idle_timeout=60) as consumer:
        consumer.wait_for_assignment(30)
        run = _Run(_produce_freight, _settings_dict(settings), topic, str(workdir / topic), count, size, None)
        run.wait_ready()
        _touch(consumer.next_proxy(60), size)  # the warm-up object
        t0 = run.start()
        got = 0
        for proxy in consumer:
            _touch(proxy, size)
            got += 1
            if got == count:
                break
        elapsed = time.perf_counter() - t0
    run.join()
    if got < count:
        raise FreightError(f"freight consumer got {got} of {count} objects")
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
    run = _Run(_produce_raw, _settings_dict(settings), topic, count, size)
    run.wait_ready()
    while (first := consumer.poll(0.5)) is None or first.error() is not None:
        run.check()
    t0 = run.start()
    got = 0
    while got < count:
        run.check()
        # The same fetch pattern as Freight's consumer: take what is there, block only for the first record.
        msgs = consumer.consume(1000, timeout=0)
        if not msgs:
            one = consumer.poll(0.5)
            msgs = [] if one is None else [one, *consumer.consume(999, timeout=0)]
        for msg in msgs:
            if msg.error() is None:
                if size >= 64 * 1024:
                    np.frombuffer(msg.value() or b"", np.uint8).sum()
                got += 1
    elapsed = time.perf_counter() - t0
    consumer.close()
    run.join()
    return elapsed


def proxystore_e2e(settings: FreightSettings, count: int, size: int, workdir: Path) -> float:
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
    run = _Run(_produce_proxystore, _settings_dict(settings), topic, str(workdir / topic), count, size)

    class _Subscriber(KafkaSubscriber):  # type: ignore[misc]
        """ProxyStore's shim polls without a timeout; this one gives up if the producer died."""

        def next_message(self) -> bytes:
            while True:
                message = self.client.poll(0.5)
                if message is not None and message.error() is None:
                    return bytes(message.value())
                run.check()

    consumer: Any = PSConsumer(_Subscriber(client))
    run.wait_ready()
    _touch(next(consumer), size)  # the warm-up object
    t0 = run.start()
    for _ in range(count):
        _touch(next(consumer), size)
    elapsed = time.perf_counter() - t0
    consumer.close(stores=True)
    run.join()
    return elapsed


def latency_ms(settings: FreightSettings, count: int, rate: float, workdir: Path) -> list[float]:
    """Per event: send -> proxy available (ms), at `rate` events/s of 1 KiB objects (inline)."""
    from freight.stream import StreamConsumer

    topic = _topic(settings, "latency")
    lat: list[float] = []
    with StreamConsumer(
        topic, f"g-{topic}", settings=settings, idle_timeout=60, kafka_config={"fetch.wait.max.ms": 5}
    ) as consumer:
        consumer.wait_for_assignment(30)
        run = _Run(_produce_freight, _settings_dict(settings), topic, str(workdir / topic), count, 1024, rate)
        run.wait_ready()
        consumer.next_proxy(60)
        run.start()
        for meta, _proxy in consumer.iter_with_metadata():
            lat.append((time.perf_counter_ns() - int(meta.metadata["t"])) / 1e6)
            if len(lat) == count:
                break
    run.join()
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
