"""`freight bench stream`: end-to-end streaming against its baselines, on the same broker, in one run.

Scenarios (each states its setup with its results):
- small: 128-byte objects end to end, objects/s. Baselines: raw confluent-kafka produce+consume of the same
  bytes, and ProxyStore 1.1.0 (its Kafka publisher/subscriber shim; it keeps every object in a store, here its
  FileConnector).
- bulk: numpy arrays (1, 16, 64 MiB) through a file store, produce -> consume -> resolve -> read every byte,
  MB/s. Baselines: ProxyStore 1.1.0 (Kafka shim + FileConnector) and the raw file write + read of the same
  bytes in one process (the bound this machine's page cache and memory bandwidth set).
- latency: send -> proxy available at the consumer, p50/p99/p999 at a light steady rate, against raw
  confluent-kafka records carrying the send time.

The producer runs in its own process and the consumer in this one, joined and assigned first; both sides
pass one warm-up object before the clock starts (see `_procs`). Medians over repetitions, with min and max.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from freight.bench._common import Measurement, with_ratios
from freight.bench._procs import (
    ARRAY_MIN,
    Child,
    allow_store_roots,
    drop_topics,
    new_topic,
    settings_dict,
    touch,
)
from freight.config import FreightSettings
from freight.errors import FreightError
from freight.kafka import produce_when_room

MiB = 2**20

# ProxyStore 1.1.0 warns on import that its streaming API is experimental; that is known and not news here.
warnings.filterwarnings("ignore", message="Streaming is an experimental feature")

# ------------------------------------------------------------------------------------------------------
# Producer side (child processes; module-level functions so the forkserver can start them).


def _payload(size: int) -> Any:
    """The object every subject sends: a uint8 array, or its bytes below ARRAY_MIN."""
    import numpy as np

    array = np.random.default_rng(0).integers(0, 255, size, dtype=np.uint8)
    return array if size >= ARRAY_MIN else array.tobytes()


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
    from freight.connectors.file import FileConnector
    from freight.stores import Store
    from freight.stream import StreamProducer

    store = Store(f"bench-{topic}", FileConnector(Path(store_dir)))
    obj = _payload(size)
    with StreamProducer({None: store}, settings=FreightSettings.model_validate(settings)) as producer:
        producer.send(topic, obj, stream="warmup")
        producer.flush()
        ready.set()
        go.wait(300)
        interval = None if rate is None else 1.0 / rate
        for i in range(count):
            meta = {"t": str(time.perf_counter_ns())} if interval else None
            producer.send(topic, obj, stream=f"s{i % 4}", metadata=meta)
            if interval:
                time.sleep(interval)
        producer.flush()


def _produce_raw(
    settings: dict[str, Any], topic: str, count: int, size: int, rate: float | None, ready: Any, go: Any
) -> None:
    from confluent_kafka import Producer

    from freight.kafka import producer_config

    payload = os.urandom(size)
    conf = producer_config(FreightSettings.model_validate(settings))
    producer = Producer(conf)
    producer.produce(topic, payload, key=b"warmup")
    producer.flush()
    ready.set()
    go.wait(300)
    interval = None if rate is None else 1.0 / rate
    for i in range(count):
        if interval:  # the send time travels in the first 8 bytes
            payload = time.perf_counter_ns().to_bytes(8, "big") + payload[8:]
        produce_when_room(producer, topic, payload, wait_s=0.01, key=f"s{i % 4}".encode())
        producer.poll(0)
        if interval:
            time.sleep(interval)
    producer.flush()


#: The record a Kafka user would define for a small object sent with confluent-kafka's Avro serializer.
_CONFLUENT_AVRO_SCHEMA = (
    '{"type": "record", "name": "SmallObject", "namespace": "bench.freight", '
    '"fields": [{"name": "stream", "type": "string"}, {"name": "payload", "type": "bytes"}]}'
)


def _produce_confluent_avro(
    settings: dict[str, Any], topic: str, count: int, size: int, ready: Any, go: Any
) -> None:
    """confluent-kafka's own AvroSerializer (Confluent wire format, schema in the same registry)."""
    from confluent_kafka import Producer
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroSerializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    from freight.kafka import producer_config

    conf = FreightSettings.model_validate(settings)
    registry = SchemaRegistryClient({"url": conf.schema_registry_url})
    serialize = AvroSerializer(registry, _CONFLUENT_AVRO_SCHEMA)
    context = SerializationContext(topic, MessageField.VALUE)
    payload = os.urandom(size)
    producer = Producer(producer_config(conf))
    producer.produce(topic, serialize({"stream": "warmup", "payload": payload}, context), key=b"warmup")
    producer.flush()
    ready.set()
    go.wait(300)
    for i in range(count):
        value = serialize({"stream": f"s{i % 4}", "payload": payload}, context)
        produce_when_room(producer, topic, value, wait_s=0.01, key=f"s{i % 4}".encode())
        producer.poll(0)
    producer.flush()


def _produce_proxystore(
    settings: dict[str, Any], topic: str, store_dir: str, count: int, size: int, ready: Any, go: Any
) -> None:
    from confluent_kafka import Producer
    from proxystore.connectors.file import FileConnector
    from proxystore.store import Store
    from proxystore.stream import StreamProducer
    from proxystore.stream.shims.kafka import KafkaPublisher

    from freight.kafka import producer_config

    conf = producer_config(FreightSettings.model_validate(settings))
    conf.pop("logger", None)
    obj = _payload(size)
    # clear=False: ProxyStore deletes the directory when the store closes, before the consumer resolves.
    with Store(f"ps-{topic}", FileConnector(store_dir, clear=False), register=True) as store:
        producer: Any = StreamProducer(KafkaPublisher(Producer(conf)), default_store=store)
        producer.send(topic, obj, evict=False)
        producer.flush()
        ready.set()
        go.wait(300)
        for _ in range(count):
            producer.send(topic, obj, evict=False)
        producer.flush()
        producer.close(stores=False)


def _produce_raw_files(
    settings: dict[str, Any], topic: str, directory: str, count: int, size: int, ready: Any, go: Any
) -> None:
    """The bound's producer: write each array to its own file (tofile), then send the file's name."""
    from confluent_kafka import Producer

    from freight.kafka import producer_config

    producer = Producer(producer_config(FreightSettings.model_validate(settings)))
    array = _payload(size)
    Path(directory).mkdir(parents=True, exist_ok=True)
    warm = f"{directory}/warmup.bin"
    array.tofile(warm)
    producer.produce(topic, warm.encode(), key=b"warmup")
    producer.flush()
    ready.set()
    go.wait(300)
    for i in range(count):
        path = f"{directory}/{i}.bin"
        array.tofile(path)
        producer.produce(topic, path.encode(), key=f"s{i % 4}".encode())
        producer.poll(0)
    producer.flush()


# ------------------------------------------------------------------------------------------------------
# Consumer side (this process). Each returns the seconds from `go` to the last object used.


def freight_e2e(settings: FreightSettings, count: int, size: int, workdir: Path) -> float:
    """Freight producer process -> Kafka (+ file store above the inline threshold) -> StreamConsumer."""
    from freight.stream import StreamConsumer

    topic = new_topic(settings, "freight")
    store_dir = workdir / topic
    try:
        with StreamConsumer(topic, f"g-{topic}", settings=settings, idle_timeout=120) as consumer:
            consumer.wait_for_assignment(30)
            run = Child(_produce_freight, settings_dict(settings), topic, str(store_dir), count, size, None)
            run.wait_ready()
            touch(consumer.next_proxy(120), size)  # the warm-up object
            t0 = run.start()
            got = 0
            for proxy in consumer:
                touch(proxy, size)
                got += 1
                if got == count:
                    break
            elapsed = time.perf_counter() - t0
        run.join()
    finally:
        shutil.rmtree(store_dir, ignore_errors=True)
        drop_topics(settings, topic)
    if got < count:
        raise FreightError(f"freight consumer got {got} of {count} objects")
    return elapsed


def _raw_consumer(
    settings: FreightSettings, topic: str, extra: dict[str, Any] | None = None, *, python_logger: bool = True
) -> Any:
    """A subscribed, assigned confluent-kafka consumer (ProxyStore's gets no Freight logger)."""
    from confluent_kafka import Consumer

    from freight.kafka import consumer_config

    conf = consumer_config(settings, f"g-{topic}", {"enable.auto.offset.store": True, **(extra or {})})
    if not python_logger:
        conf.pop("logger", None)
    consumer = Consumer(conf)
    consumer.subscribe([topic])
    while not consumer.assignment():
        consumer.poll(0.1)
    return consumer


def _raw_batches(consumer: Any, run: Child) -> list[Any]:
    """The fetch pattern of Freight's consumer: take what is there, block only for the first record."""
    msgs = consumer.consume(1000, timeout=0)
    if not msgs:
        run.check()
        one = consumer.poll(0.2)
        msgs = [] if one is None else [one, *consumer.consume(999, timeout=0)]
    return [m for m in msgs if m.error() is None]


def raw_e2e(settings: FreightSettings, count: int, size: int) -> float:
    """confluent-kafka Producer process -> Kafka -> confluent-kafka Consumer, the bytes inline."""
    import numpy as np

    topic = new_topic(settings, "raw")
    consumer = _raw_consumer(settings, topic)
    try:
        run = Child(_produce_raw, settings_dict(settings), topic, count, size, None)
        run.wait_ready()
        while (first := consumer.poll(0.5)) is None or first.error() is not None:
            run.check()
        t0 = run.start()
        got = 0
        while got < count:
            for msg in _raw_batches(consumer, run):
                if size >= ARRAY_MIN:
                    np.frombuffer(msg.value() or b"", np.uint8).sum()
                else:
                    bytes(msg.value() or b"")
                got += 1
        elapsed = time.perf_counter() - t0
        run.join()
    finally:
        consumer.close()
        drop_topics(settings, topic)
    return elapsed


def confluent_avro_e2e(settings: FreightSettings, count: int, size: int) -> float:
    """confluent-kafka's AvroSerializer -> Kafka -> its AvroDeserializer, with the same schema registry."""
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroDeserializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    topic = new_topic(settings, "confluent-avro")
    consumer = _raw_consumer(settings, topic)
    deserialize = AvroDeserializer(SchemaRegistryClient({"url": settings.schema_registry_url}))
    context = SerializationContext(topic, MessageField.VALUE)
    try:
        run = Child(_produce_confluent_avro, settings_dict(settings), topic, count, size)
        run.wait_ready()
        while (first := consumer.poll(0.5)) is None or first.error() is not None:
            run.check()
        deserialize(first.value(), context)  # the warm-up record: the schema is fetched here
        t0 = run.start()
        got = 0
        while got < count:
            for msg in _raw_batches(consumer, run):
                record: Any = deserialize(msg.value(), context)
                bytes(record["payload"])
                got += 1
        elapsed = time.perf_counter() - t0
        run.join()
    finally:
        consumer.close()
        drop_topics(settings, topic)
    return elapsed


def proxystore_e2e(settings: FreightSettings, count: int, size: int, workdir: Path) -> float:
    """ProxyStore 1.1.0: StreamProducer, KafkaPublisher, FileConnector -> StreamConsumer, KafkaSubscriber."""
    from proxystore.stream import StreamConsumer as PSConsumer
    from proxystore.stream.shims.kafka import KafkaSubscriber

    topic = new_topic(settings, "proxystore")
    store_dir = workdir / topic
    client = _raw_consumer(settings, topic, python_logger=False)
    run = Child(_produce_proxystore, settings_dict(settings), topic, str(store_dir), count, size)

    class _Subscriber(KafkaSubscriber):
        """ProxyStore's shim polls without a timeout; this one gives up if the producer died."""

        def next_message(self) -> bytes:
            while True:
                message = self.client.poll(0.5)
                if message is not None and message.error() is None:
                    return bytes(message.value() or b"")
                run.check()

    consumer: Any = PSConsumer(_Subscriber(client))
    try:
        run.wait_ready()
        touch(next(consumer), size)  # the warm-up object
        t0 = run.start()
        for _ in range(count):
            touch(next(consumer), size)
        elapsed = time.perf_counter() - t0
        run.join()
    finally:
        consumer.close(stores=True)
        shutil.rmtree(store_dir, ignore_errors=True)
        drop_topics(settings, topic)
    return elapsed


def raw_files_2p_e2e(settings: FreightSettings, count: int, size: int, workdir: Path) -> float:
    """The two-process bound, with the Freight subject's persistence: a producer process writes each array
    to its own file (page cache, no fsync) and sends the file's name in a raw Kafka record; this process
    reads each file (fromfile) and sums it. Files are kept until the run ends, as the Freight subject's are.
    """
    import numpy as np

    topic = new_topic(settings, "rawfiles")
    directory = workdir / topic
    consumer = _raw_consumer(settings, topic)
    try:
        run = Child(_produce_raw_files, settings_dict(settings), topic, str(directory), count, size)
        run.wait_ready()
        while (first := consumer.poll(0.5)) is None or first.error() is not None:
            run.check()
        np.fromfile((first.value() or b"").decode(), np.uint8).sum()
        t0 = run.start()
        got = 0
        while got < count:
            for msg in _raw_batches(consumer, run):
                np.fromfile((msg.value() or b"").decode(), np.uint8).sum()
                got += 1
        elapsed = time.perf_counter() - t0
        run.join()
    finally:
        consumer.close()
        shutil.rmtree(directory, ignore_errors=True)
        drop_topics(settings, topic)
    return elapsed


def raw_file_e2e(count: int, size: int, workdir: Path) -> float:
    """The one-process figure: write each array to its own file, then read it back and sum it.

    Files stay until the run ends, as the Freight subject's do. No Kafka, no second process, no handing
    over between cores: a reference point, not the bound the ratios are taken against.
    """
    import numpy as np

    array = _payload(size)
    directory = workdir / f"raw-file-{time.monotonic_ns()}"
    directory.mkdir(parents=True)
    try:
        t0 = time.perf_counter()
        for i in range(count):
            path = directory / f"{i}.bin"
            array.tofile(path)
            np.fromfile(path, np.uint8).sum()
        return time.perf_counter() - t0
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def freight_latency_ms(
    settings: FreightSettings, count: int, rate: float, size: int, workdir: Path
) -> list[float]:
    """Per event: send -> proxy available (ms), at `rate` events/s."""
    from freight.stream import StreamConsumer

    topic = new_topic(settings, "latency")
    store_dir = workdir / topic
    lat: list[float] = []
    try:
        with StreamConsumer(
            topic, f"g-{topic}", settings=settings, idle_timeout=120, kafka_config={"fetch.wait.max.ms": 5}
        ) as consumer:
            consumer.wait_for_assignment(30)
            run = Child(_produce_freight, settings_dict(settings), topic, str(store_dir), count, size, rate)
            run.wait_ready()
            consumer.next_proxy(120)
            run.start()
            for meta, _proxy in consumer.iter_with_metadata():
                lat.append((time.perf_counter_ns() - int(meta.metadata["t"])) / 1e6)
                if len(lat) == count:
                    break
        run.join()
    finally:
        shutil.rmtree(store_dir, ignore_errors=True)
        drop_topics(settings, topic)
    return lat


def raw_latency_ms(settings: FreightSettings, count: int, rate: float, size: int) -> list[float]:
    """Per record: produce -> record polled (ms), raw confluent-kafka at the same rate and size."""
    topic = new_topic(settings, "raw-latency")
    consumer = _raw_consumer(settings, topic, {"fetch.wait.max.ms": 5})
    lat: list[float] = []
    try:
        run = Child(_produce_raw, settings_dict(settings), topic, count, max(size, 8), rate)
        run.wait_ready()
        while (first := consumer.poll(0.5)) is None or first.error() is not None:
            run.check()
        run.start()
        while len(lat) < count:
            for msg in _raw_batches(consumer, run):
                sent = int.from_bytes((msg.value() or b"")[:8], "big")
                lat.append((time.perf_counter_ns() - sent) / 1e6)
        run.join()
    finally:
        consumer.close()
        drop_topics(settings, topic)
    return lat


# ------------------------------------------------------------------------------------------------------
# Scenarios.


@dataclass
class Scenario:
    """One scenario's results: what was measured, how (`setup`), and the figures."""

    name: str
    title: str
    setup: str
    unit: str
    higher_is_better: bool = True
    rows: list[Measurement] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


Tick = Callable[[str], None]


def _no_tick(_label: str) -> None:
    return None


def _measure(
    scenario: str,
    subject: str,
    unit: str,
    fn: Callable[[], float],
    repetitions: int,
    tick: Tick,
    baseline: str | None = None,
    **extra: Any,
) -> Measurement:
    values = []
    load_start = os.getloadavg()[0]
    for i in range(repetitions):
        tick(f"{scenario}: {subject} ({i + 1}/{repetitions})")
        values.append(fn())
    extra["load_average"] = [round(load_start, 2), round(os.getloadavg()[0], 2)]
    return Measurement(
        scenario,
        subject,
        unit,
        statistics.median(values),
        min(values),
        max(values),
        len(values),
        baseline=baseline,
        extra={"values": values, **extra},
    )


def small(
    settings: FreightSettings,
    workdir: Path,
    *,
    count: int,
    proxystore_count: int,
    repetitions: int,
    size: int = 128,
    tick: Tick = _no_tick,
) -> Scenario:
    """128 B objects end to end: Freight (inline in the event) vs raw confluent-kafka vs ProxyStore."""
    name = "small"
    sc = Scenario(
        name,
        f"small objects ({size} B) end to end",
        f"{count:,} objects of {size} B (ProxyStore: {proxystore_count:,}; its shim flushes every message) "
        "sent by a producer process, consumed and read by a consumer process, one partition; Freight carries "
        "them inline in the event, ProxyStore keeps each in its FileConnector; 'confluent-avro': "
        "confluent-kafka's own AvroSerializer / AvroDeserializer (Confluent wire format) with the same "
        "schema registry, a record {stream: string, payload: bytes} per object; objects/s from the start "
        "signal to the last object read",
        "objects/s",
    )
    sc.rows.append(
        _measure(
            name,
            "freight",
            sc.unit,
            lambda: count / freight_e2e(settings, count, size, workdir),
            repetitions,
            tick,
            "raw-kafka",
        )
    )
    sc.rows.append(
        _measure(
            name, "raw-kafka", sc.unit, lambda: count / raw_e2e(settings, count, size), repetitions, tick
        )
    )
    sc.rows.append(
        _measure(
            name,
            "proxystore-1.1.0",
            sc.unit,
            lambda: proxystore_count / proxystore_e2e(settings, proxystore_count, size, workdir),
            repetitions,
            tick,
        )
    )
    sc.rows.append(
        _measure(
            name,
            "confluent-avro",
            sc.unit,
            lambda: count / confluent_avro_e2e(settings, count, size),
            repetitions,
            tick,
        )
    )
    sc.rows.append(_vs(sc.rows[0], "freight vs proxystore", "proxystore-1.1.0"))
    sc.rows.append(_vs(sc.rows[0], "freight vs confluent-avro", "confluent-avro"))
    with_ratios(sc.rows)
    return sc


def _vs(row: Measurement, subject: str, baseline: str) -> Measurement:
    """The same figure again, compared with a second baseline."""
    return Measurement(
        row.scenario,
        subject,
        row.unit,
        row.median,
        row.minimum,
        row.maximum,
        row.repetitions,
        baseline=baseline,
    )


#: tmpfs, where a file store keeps its objects in memory (its pages are never written back).
SHM_DIR = Path("/dev/shm")  # noqa: S108 (a fresh mkdtemp directory under it is used)


def shm_workdir() -> Path | None:
    """A fresh directory on /dev/shm for the in-memory subjects, or None where there is no /dev/shm."""
    if not SHM_DIR.is_dir() or not os.access(SHM_DIR, os.W_OK):
        return None
    return Path(tempfile.mkdtemp(prefix="freight-bench-", dir=SHM_DIR))


def bulk(
    settings: FreightSettings,
    workdir: Path,
    *,
    sizes_mib: list[float],
    total_mib: float,
    min_count: int,
    repetitions: int,
    tick: Tick = _no_tick,
) -> Scenario:
    """numpy arrays through the file store: Freight vs ProxyStore vs the two-process raw bound."""
    name = "bulk"
    sc = Scenario(
        name,
        "bulk objects (numpy) end to end through the file store",
        f"uint8 arrays of {', '.join(_mib(s) for s in sizes_mib)}; per size "
        f"max({min_count}, {total_mib:g} MiB / size) arrays sent by a producer process into a file store "
        "on local disk (page cache, no fsync; every file kept until the run ends), each consumed, resolved "
        "and summed (every byte read) by a consumer process; ProxyStore: Kafka shim + FileConnector, same "
        "directory; the bound ('raw files 2p'): a producer process writes each array with tofile and sends "
        "the file's name in a raw Kafka record, the consumer process reads it with fromfile and sums it, "
        "files kept (the Freight subject's persistence); Freight's ratios are against that bound; "
        "'raw file 1p' (tofile + fromfile + sum in one process, no Kafka) is shown for reference; "
        "'shm' rows: the same Freight subject and bound with the store directory on /dev/shm (tmpfs); "
        "the subjects take turns (each repetition runs every subject once, the first one rotating); "
        "MB/s of payload",
        "MB/s",
    )
    shm = shm_workdir()
    try:
        for size_mib in sizes_mib:
            count = max(min_count, int(total_mib / size_mib))
            sc.rows += _bulk_size(settings, workdir, shm, int(size_mib * MiB), count, repetitions, tick)
    finally:
        if shm is not None:
            shutil.rmtree(shm, ignore_errors=True)
    with_ratios(sc.rows)
    return sc


def _bulk_size(
    settings: FreightSettings,
    workdir: Path,
    shm: Path | None,
    size: int,
    count: int,
    repetitions: int,
    tick: Tick,
) -> list[Measurement]:
    """The subjects of `bulk` at one size, and Freight against each baseline."""
    label = _mib(size / MiB)
    common = {"size_bytes": size, "count": count}

    def mbs(fn: Callable[[], float]) -> Callable[[], float]:
        return lambda: count * size / 1e6 / fn()

    bound = f"raw files 2p {label}"
    subjects: list[tuple[str, Callable[[], float], str | None]] = [
        ("freight", lambda: freight_e2e(settings, count, size, workdir), bound),
        ("proxystore-1.1.0", lambda: proxystore_e2e(settings, count, size, workdir), None),
        ("raw files 2p", lambda: raw_files_2p_e2e(settings, count, size, workdir), None),
        ("raw file 1p", lambda: raw_file_e2e(count, size, workdir), None),
    ]
    if shm is not None:
        shm_bound = f"raw files 2p shm {label}"
        subjects.append(("freight shm", lambda: freight_e2e(settings, count, size, shm), shm_bound))
        subjects.append(("raw files 2p shm", lambda: raw_files_2p_e2e(settings, count, size, shm), None))
    rows = _measure_interleaved(
        "bulk",
        "MB/s",
        [(f"{name} {label}", mbs(fn), base) for name, fn, base in subjects],
        repetitions,
        tick,
        **common,
    )
    f = rows[0]
    rows.insert(4, _vs(f, f"freight vs proxystore {label}", f"proxystore-1.1.0 {label}"))
    rows.insert(5, _vs(f, f"freight vs raw file 1p {label}", f"raw file 1p {label}"))
    return rows


def _measure_interleaved(
    scenario: str,
    unit: str,
    subjects: list[tuple[str, Callable[[], float], str | None]],
    repetitions: int,
    tick: Tick,
    **extra: Any,
) -> list[Measurement]:
    """Like `_measure` for several subjects, taking turns: repetition i runs every subject once, starting
    with subject i (mod n), so that slow phases of a shared machine (and of its page reuse: freed pages are
    fast to reuse only until the host takes them back) fall on every subject alike."""
    values: dict[str, list[float]] = {name: [] for name, _fn, _base in subjects}
    load_start = os.getloadavg()[0]
    for i in range(repetitions):
        turn = subjects[i % len(subjects) :] + subjects[: i % len(subjects)]
        for name, fn, _base in turn:
            tick(f"{scenario}: {name} ({i + 1}/{repetitions})")
            values[name].append(fn())
    load = [round(load_start, 2), round(os.getloadavg()[0], 2)]
    return [
        Measurement(
            scenario,
            name,
            unit,
            statistics.median(values[name]),
            min(values[name]),
            max(values[name]),
            len(values[name]),
            baseline=base,
            extra={"values": values[name], "load_average": load, "interleaved": True, **extra},
        )
        for name, _fn, base in subjects
    ]


def _mib(size_mib: float) -> str:
    return f"{size_mib:g} MiB" if size_mib >= 1 else f"{size_mib * 1024:g} KiB"


def latency(
    settings: FreightSettings,
    workdir: Path,
    *,
    count: int,
    rate: float,
    size: int,
    repetitions: int,
    tick: Tick = _no_tick,
) -> Scenario:
    """Send -> proxy available, p50/p99/p999, Freight vs raw confluent-kafka."""
    name = "latency"
    sc = Scenario(
        name,
        "latency from send to proxy available",
        f"{count:,} objects of {size:,} B at {rate:g}/s (a sleep between sends) from a producer process; the "
        "consumer process notes when each proxy (raw: each record) is handed to it, unresolved; "
        "fetch.wait.max.ms=5 on both; percentiles per run, then median/min/max over runs",
        "ms",
        higher_is_better=False,
    )
    samples: dict[str, list[list[float]]] = {"freight": [], "raw-kafka": []}
    for i in range(repetitions):
        tick(f"{name}: freight ({i + 1}/{repetitions})")
        samples["freight"].append(sorted(freight_latency_ms(settings, count, rate, size, workdir)))
        tick(f"{name}: raw-kafka ({i + 1}/{repetitions})")
        samples["raw-kafka"].append(sorted(raw_latency_ms(settings, count, rate, size)))
    for q_name, q in (("p50", 0.50), ("p99", 0.99), ("p999", 0.999)):
        for subject, runs in samples.items():
            values = [run[min(int(q * len(run)), len(run) - 1)] for run in runs]
            sc.rows.append(
                Measurement(
                    name,
                    f"{subject} {q_name}",
                    "ms",
                    statistics.median(values),
                    min(values),
                    max(values),
                    len(values),
                    baseline=f"raw-kafka {q_name}" if subject == "freight" else None,
                    extra={"values": values, "events": count},
                )
            )
    with_ratios(sc.rows, higher_is_better=False)
    return sc


# ------------------------------------------------------------------------------------------------------


def register(app: typer.Typer) -> None:
    @app.command("stream")
    def stream_cmd(
        quick: Annotated[bool, typer.Option(help="Small counts (a smoke run).")] = False,
        repetitions: Annotated[int, typer.Option("--repetitions", "-r", help="Repetitions per figure.")] = 3,
        out: Annotated[Path | None, typer.Option(help="Write the JSON results here.")] = None,
        json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """Freight vs ProxyStore 1.1.0 vs raw confluent-kafka, end to end on the same broker."""
        from freight.bench._common import report
        from freight.bench.services import bench_services
        from freight.config import load_settings

        reps = 1 if quick else repetitions
        with (
            bench_services(load_settings()) as settings,
            tempfile.TemporaryDirectory(prefix="freight-bench-") as tmp,
        ):
            workdir = Path(tmp)
            settings = allow_store_roots(settings, workdir, SHM_DIR)
            scenarios = [
                small(
                    settings,
                    workdir,
                    count=2_000 if quick else 20_000,
                    proxystore_count=200 if quick else 2_000,
                    repetitions=reps,
                ),
                bulk(
                    settings,
                    workdir,
                    sizes_mib=[1] if quick else [1, 16, 64],
                    total_mib=32 if quick else 256,
                    min_count=4,
                    repetitions=reps,
                ),
                latency(
                    settings, workdir, count=200 if quick else 3_000, rate=200, size=1024, repetitions=reps
                ),
            ]
        report("freight bench stream", [r for s in scenarios for r in s.rows], out, json_)
