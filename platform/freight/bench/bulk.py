"""`freight bench bulk --profile`: where the time of one large object goes, stage by stage.

One process, one array per size (1, 16, 64, 256 MiB by default), each stage timed on its own, medians of
repetitions with min and max, and the load average. The stages, in the order an object meets them:

- serialize: the array to buffers (`Store.serialize`; a view, no copy);
- checksum: xxh3_64 of the payload (what `Store.put` computes on another core while it writes);
- write: the header and payload written to a new file (`FileConnector.put`, one temporary file + rename,
  256 KiB per write call);
- write (one call): the same bytes to a new file with one `write` call, as the file connector did before
  issue 19 and as numpy's `tofile` does (the kernel then allocates its largest page-cache folios, which on a
  virtual machine that hands freed memory back to its host are several times slower to get when fresh);
- put: the whole `Store.put` (serialize + checksum overlapped with write), to compare with the parts;
- produce: one event-sized record (512 B) produced and acknowledged by the broker (raw confluent-kafka);
- fetch: that record polled by a consumer that was already assigned;
- map: the object file memory-mapped (`FileConnector.get_mapped`);
- verify: header parsed and payload hashed from the mapping (this is the first touch of its pages);
- touch: every byte summed after verification (the consumer's own use of the array);
- first touch: every byte summed from a fresh mapping, unverified (page-fault cost without the hash);
- get: the whole `Store.get(mmap=True)` plus the sum, to compare with the parts;
- tofile / fromfile+sum: numpy's own write and read of the same bytes (the raw reference).

Each write goes to a new file (fresh pages, as in the end-to-end run); files stay until the size is done.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from freight.bench._common import Measurement, report
from freight.config import FreightSettings

MiB = 2**20
DEFAULT_SIZES_MIB = (1, 16, 64, 256)
EVENT_BYTES = 512


def _ms(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1e3


class _KafkaRoundTrip:
    """A producer and an assigned consumer on a fresh topic: times produce (acked) and fetch separately."""

    def __init__(self, settings: FreightSettings) -> None:
        from confluent_kafka import Consumer, Producer

        from freight.bench._procs import new_topic
        from freight.kafka import consumer_config, producer_config

        self.settings = settings
        self.topic = new_topic(settings, "profile")
        self.producer = Producer(producer_config(settings, {"linger.ms": 0}))
        conf = consumer_config(settings, f"g-{self.topic}", {"fetch.wait.max.ms": 5})
        self.consumer = Consumer(conf)
        self.consumer.subscribe([self.topic])
        while not self.consumer.assignment():
            self.consumer.poll(0.1)
        self.payload = os.urandom(EVENT_BYTES)
        self.produce()
        self.fetch()

    def produce(self) -> None:
        self.producer.produce(self.topic, self.payload)
        self.producer.flush(30)

    def fetch(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            msg = self.consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                return
        raise TimeoutError("the profile's record did not arrive within 30 s")

    def close(self) -> None:
        from freight.bench._procs import drop_topics

        self.consumer.close()
        drop_topics(self.settings, self.topic)


def _write_one_call(path: Path, header: bytes, array: Any) -> None:
    """Header and payload to a new file, the payload with one `write` call (the pre-issue-19 way)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, header)
        view = memoryview(array).cast("B")
        pos = 0
        while pos < view.nbytes:
            pos += os.write(fd, view[pos:])
    finally:
        os.close(fd)


def _profile_size(
    root: Path, size: int, repetitions: int, kafka: _KafkaRoundTrip | None, tick: Callable[[str], None]
) -> dict[str, list[float]]:
    """Each stage's milliseconds, per repetition, for one array of `size` bytes."""
    import numpy as np

    from freight.connectors.file import FileConnector
    from freight.stores import Store, checksums
    from freight.stores.framing import decode_header, encode_header, payload_view

    connector = FileConnector(root)
    store = Store(f"profile-{root.name}", connector)
    array = np.random.default_rng(0).integers(0, 255, size, dtype=np.uint8)
    stages: dict[str, list[float]] = {}

    def add(stage: str, ms: float) -> None:
        stages.setdefault(stage, []).append(ms)

    for rep in range(repetitions):
        tick(f"profile {size / MiB:g} MiB ({rep + 1}/{repetitions})")
        add("serialize", _ms(lambda: store.serialize(array)))
        ser = store.serialize(array)
        t0 = time.perf_counter()
        digest = checksums.compute("xxh3_64", ser.buffers)
        add("checksum", (time.perf_counter() - t0) * 1e3)
        header = encode_header(ser.serializer, ser.nbytes, digest, ser.descriptor)
        key = f"w{rep}"
        add("write", _ms(lambda: connector.put(key, [header, *ser.buffers])))  # noqa: B023
        add("write (one call)", _ms(lambda: _write_one_call(root / f"one{rep}.bin", header, array)))  # noqa: B023
        t0 = time.perf_counter()
        stored = store.put(array)
        add("put", (time.perf_counter() - t0) * 1e3)
        if kafka is not None:
            add("produce (512 B event)", _ms(kafka.produce))
            add("fetch (512 B event)", _ms(kafka.fetch))
        t0 = time.perf_counter()
        view = connector.get_mapped(key)
        add("map", (time.perf_counter() - t0) * 1e3)
        t0 = time.perf_counter()
        frame = decode_header(view, "profile")
        if checksums.compute("xxh3_64", [payload_view(view, frame)]) != digest:
            raise AssertionError("checksum mismatch in the profile")
        add("verify (first touch)", (time.perf_counter() - t0) * 1e3)
        add("touch (sum)", _ms(np.frombuffer(payload_view(view, frame), np.uint8).sum))
        fresh = np.frombuffer(payload_view(connector.get_mapped(stored.key), frame), np.uint8)
        add("first touch (sum, unverified)", _ms(fresh.sum))
        add(
            "get (mmap, verified) + sum",
            _ms(lambda: np.asarray(store.get(stored.key, mmap=True)).sum()),  # noqa: B023
        )
        raw = str(root / f"raw{rep}.bin")
        add("raw tofile", _ms(lambda: array.tofile(raw)))  # noqa: B023
        add("raw fromfile + sum", _ms(lambda: np.fromfile(raw, np.uint8).sum()))  # noqa: B023
    return stages


def profile(
    workdir: Path,
    sizes_mib: list[float],
    repetitions: int,
    kafka: _KafkaRoundTrip | None,
    tick: Callable[[str], None] = lambda _s: None,
) -> list[Measurement]:
    """Per-stage milliseconds at each size (median, min, max over `repetitions`)."""
    rows: list[Measurement] = []
    for size_mib in sizes_mib:
        size = int(size_mib * MiB)
        root = workdir / f"profile-{uuid.uuid4().hex[:8]}"
        load_start = os.getloadavg()[0]
        try:
            stages = _profile_size(root, size, repetitions, kafka, tick)
        finally:
            shutil.rmtree(root, ignore_errors=True)
        load = [round(load_start, 2), round(os.getloadavg()[0], 2)]
        for stage, values in stages.items():
            med = statistics.median(values)
            rows.append(
                Measurement(
                    "bulk-profile",
                    f"{size_mib:g} MiB {stage}",
                    "ms",
                    med,
                    min(values),
                    max(values),
                    len(values),
                    extra={
                        "values": values,
                        "GB/s": round(size / 1e6 / med, 2) if med and "event" not in stage else None,
                        "load_average": load,
                    },
                )
            )
    return rows


def register(app: typer.Typer) -> None:
    @app.command("bulk")
    def bulk_cmd(
        profile_: Annotated[
            bool,
            typer.Option(
                "--profile", help="Per-stage breakdown in one process instead of the end-to-end run."
            ),
        ] = False,
        sizes: Annotated[str, typer.Option(help="Sizes in MiB, comma-separated.")] = "1,16,64,256",
        repetitions: Annotated[int, typer.Option("--repetitions", "-r", help="Repetitions.")] = 5,
        total_mib: Annotated[float, typer.Option(help="End to end: MiB sent per size and run.")] = 512,
        workdir: Annotated[Path | None, typer.Option(help="Where the files go (default /tmp).")] = None,
        out: Annotated[Path | None, typer.Option(help="Write the JSON results here.")] = None,
        json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """Bulk objects: end to end against the two-process bound, or (--profile) stage by stage."""
        import sys

        from freight.bench import stream
        from freight.bench._procs import allow_store_roots
        from freight.bench.services import bench_services
        from freight.config import load_settings

        size_list = [float(s) for s in sizes.split(",") if s.strip()]

        def tick(label: str) -> None:
            print(label, file=sys.stderr)

        with (
            bench_services(load_settings()) as settings,
            tempfile.TemporaryDirectory(prefix="freight-bench-", dir=workdir) as tmp,
        ):
            if profile_:
                trip = _KafkaRoundTrip(settings)
                try:
                    rows = profile(Path(tmp), size_list, repetitions, trip, tick)
                finally:
                    trip.close()
                title = "freight bench bulk --profile"
            else:
                settings = allow_store_roots(settings, Path(tmp), stream.SHM_DIR)
                sc = stream.bulk(
                    settings,
                    Path(tmp),
                    sizes_mib=size_list,
                    total_mib=total_mib,
                    min_count=4,
                    repetitions=repetitions,
                    tick=tick,
                )
                rows = sc.rows
                title = "freight bench bulk"
        load = [round(x, 2) for x in os.getloadavg()]
        report(f"{title} (load average at the end {load})", rows, out, json_)
