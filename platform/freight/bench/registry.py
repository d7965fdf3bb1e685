"""`freight bench registry`: registrations/s, GET /schemas/ids/{id} latency, cached serializer calls.

A registry process is started on a private topic of the broker (the configured one, or a local one that the
bench starts), so the figures include HTTP, the Kafka transaction and the read-back of each write. Baselines
are measured in the same run: registering an already registered schema (no write), the registry's health
endpoint (HTTP floor), and fastavro's schemaless writer/reader on the same record (Avro floor). Ratios are
median / baseline median.
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer

from freight.bench._common import Measurement, report, with_ratios
from freight.config import FreightSettings, load_settings


@contextlib.contextmanager
def registry_process(settings: FreightSettings, workdir: Path) -> Iterator[str]:
    """A `freight registry serve` process on a fresh topic; yields its URL."""
    import httpx

    from freight.dev.procs import free_port, stop_process
    from freight.kafka import KafkaAdmin

    port = free_port()
    topic = f"_schemas-bench-{uuid.uuid4().hex[:8]}"
    cmd = [sys.executable, "-m", "freight.cli", "registry", "serve", "--bootstrap", settings.kafka_bootstrap]
    cmd += ["--port", str(port), "--topic", topic, "--log-level", "warning"]
    log = workdir / "registry.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/freight/health", timeout=1).status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the bench registry did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.05)
        yield url
    finally:
        stop_process(proc.pid, grace_s=10)
        with contextlib.suppress(Exception):
            KafkaAdmin(settings, quiet=True).delete_topics([topic])


def _schema(i: int, tag: str) -> str:
    return json.dumps(
        {
            "type": "record",
            "name": f"Bench{tag}{i}",
            "namespace": "freight.bench",
            "fields": [{"name": "x", "type": "long"}],
        }
    )


def _rate(count: int, fn: Callable[[], None]) -> float:
    t0 = time.perf_counter()
    fn()
    return count / (time.perf_counter() - t0)


def _register_all(http: Any, tag: str, count: int, pool: ThreadPoolExecutor | None = None) -> None:
    def post(i: int) -> None:
        http.post(
            f"/subjects/bench-{tag}-{i}-value/versions", json={"schema": _schema(i, tag)}
        ).raise_for_status()

    if pool is None:
        for i in range(count):
            post(i)
    else:
        list(pool.map(post, range(count)))


def registrations(url: str, count: int, repetitions: int) -> list[Measurement]:
    """Sequential new registrations, re-registrations (baseline), and 4 concurrent clients."""
    import httpx

    scenario = f"register x{count}"
    new, existing, parallel = [], [], []
    with httpx.Client(base_url=url, timeout=60) as http, ThreadPoolExecutor(4) as pool:
        for rep in range(repetitions):
            tag = f"R{rep}x{uuid.uuid4().hex[:6]}"
            new.append(_rate(count, partial(_register_all, http, tag, count)))
            existing.append(_rate(count, partial(_register_all, http, tag, count)))
            ptag = f"P{rep}x{uuid.uuid4().hex[:6]}"
            parallel.append(_rate(count, partial(_register_all, http, ptag, count, pool)))
    return [
        Measurement.of(
            scenario,
            "new schema (Kafka transaction + read-back)",
            "registrations/s",
            new,
            "already registered",
        ),
        Measurement.of(scenario, "already registered", "registrations/s", existing),
        Measurement.of(
            scenario, "new schema, 4 concurrent clients", "registrations/s", parallel, "already registered"
        ),
    ]


def id_latency(url: str, count: int) -> list[Measurement]:
    """GET /schemas/ids/{id} p50/p99 over keep-alive HTTP, against GET /freight/health."""
    import httpx

    scenario = f"GET x{count}, keep-alive"
    with httpx.Client(base_url=url, timeout=30) as http:
        schema_id = http.post(
            "/subjects/bench-latency-value/versions", json={"schema": _schema(0, "L")}
        ).json()["id"]
        http.get(f"/schemas/ids/{schema_id}").raise_for_status()
        rows = []
        for subject, path in (
            ("/schemas/ids/{id}", f"/schemas/ids/{schema_id}"),
            ("/freight/health", "/freight/health"),
        ):
            samples = []
            for _ in range(count):
                t0 = time.perf_counter()
                http.get(path).raise_for_status()
                samples.append((time.perf_counter() - t0) * 1000)
            samples.sort()
            for q in ("p50", "p99"):
                value = samples[min(int((0.5 if q == "p50" else 0.99) * count), count - 1)]
                rows.append(
                    Measurement(
                        scenario,
                        f"{subject} {q}",
                        "ms",
                        value,
                        samples[0],
                        samples[-1],
                        1,
                        baseline=f"/freight/health {q}" if subject != "/freight/health" else None,
                        extra={"requests": count},
                    )
                )
    return rows


def serializer_calls(url: str, count: int, repetitions: int) -> list[Measurement]:
    """Per-call cost of cached encode/decode: Freight's serde, confluent-kafka's serde, raw fastavro."""
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
    from confluent_kafka.serialization import MessageField, SerializationContext
    from fastavro import parse_schema, schemaless_reader, schemaless_writer

    from freight.schemas import ObjectEvent, ObjectRef, schema_dict, schema_text
    from freight.schemas.serde import EventSerde

    topic = f"bench-serde-{uuid.uuid4().hex[:6]}"
    event = ObjectEvent(
        stream="stream-1",
        sequence=42,
        producer_id="producer-1",
        object=ObjectRef("files", "stream-1/42", 4 << 20, "numpy", "xxh3_64:0123456789abcdef"),
        metadata={"run": "7"},
    )
    record = event.to_avro()
    parsed = parse_schema(schema_dict("object_event"))
    serde = EventSerde(url)
    value = serde.encode(topic, event)
    client = SchemaRegistryClient({"url": url})
    ctx = SerializationContext(topic, MessageField.VALUE)
    confluent_ser = AvroSerializer(client, schema_text("object_event"))
    confluent_de = AvroDeserializer(client)

    def raw_write() -> bytes:
        buf = io.BytesIO()
        schemaless_writer(buf, parsed, record)
        return buf.getvalue()

    def raw_read() -> Any:
        buf = io.BytesIO(value)
        buf.seek(5)
        return schemaless_reader(buf, parsed, None)

    cases: list[tuple[str, str, Callable[[], Any], str | None]] = [
        ("encode ObjectEvent", "fastavro schemaless_writer (record)", raw_write, None),
        (
            "encode ObjectEvent",
            "EventSerde.encode_record (record)",
            lambda: serde.encode_record(topic, "object_event", record),
            "fastavro schemaless_writer (record)",
        ),
        (
            "encode ObjectEvent",
            "EventSerde.encode (event)",
            lambda: serde.encode(topic, event),
            "fastavro schemaless_writer (record)",
        ),
        (
            "encode ObjectEvent",
            "confluent AvroSerializer (record)",
            lambda: confluent_ser(record, ctx),
            "fastavro schemaless_writer (record)",
        ),
        ("decode ObjectEvent", "fastavro schemaless_reader (record)", raw_read, None),
        (
            "decode ObjectEvent",
            "EventSerde.decode_record (record)",
            lambda: serde.decode_record(topic, value),
            "fastavro schemaless_reader (record)",
        ),
        (
            "decode ObjectEvent",
            "EventSerde.decode (event)",
            lambda: serde.decode(topic, value),
            "fastavro schemaless_reader (record)",
        ),
        (
            "decode ObjectEvent",
            "confluent AvroDeserializer (record)",
            lambda: confluent_de(value, ctx),
            "fastavro schemaless_reader (record)",
        ),
    ]
    rows = []
    for scenario, subject, fn, baseline in cases:
        fn()
        samples = []
        for _ in range(repetitions):
            t0 = time.perf_counter()
            for _ in range(count):
                fn()
            samples.append((time.perf_counter() - t0) / count * 1e6)
        rows.append(Measurement.of(f"{scenario}, cached id, x{count}", subject, "µs/call", samples, baseline))
    serde.close()
    client.close()
    return rows


def run(settings: FreightSettings, *, quick: bool, repetitions: int) -> list[Measurement]:
    with (
        tempfile.TemporaryDirectory(prefix="freight-bench-registry-") as tmp,
        registry_process(settings, Path(tmp)) as url,
    ):
        rows = registrations(url, 30 if quick else 200, repetitions)
        rows += id_latency(url, 300 if quick else 3000)
        rows += serializer_calls(url, 2_000 if quick else 20_000, repetitions)
    return with_ratios(rows)


def register(app: typer.Typer) -> None:
    @app.command("registry")
    def registry_cmd(
        quick: Annotated[bool, typer.Option(help="Small counts (a smoke run).")] = False,
        repetitions: Annotated[int, typer.Option("--repetitions", "-r", help="Repetitions per figure.")] = 3,
        out: Annotated[Path | None, typer.Option(help="Write the JSON results here.")] = None,
        json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """Schema registry: registrations/s, GET /schemas/ids/{id} p50/p99, cached serializer calls."""
        from freight.bench.services import bench_services

        with bench_services(load_settings()) as settings:
            rows = run(settings, quick=quick, repetitions=1 if quick else repetitions)
        report("freight bench registry", rows, out, json_)
