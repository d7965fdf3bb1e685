"""OpenTelemetry tracing on the real broker: one trace from send through consume to resolve, across processes.

The spans are collected with the SDK's in-memory exporter. The producer and the consumer run in this process
(instrumented by `freight.tracing.instrument`); the proxies are pickled to a worker process that turns
tracing on only through `FREIGHT_TRACING=1`, and its resolve spans must join the same traces.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from tests.fixtures.stream import child_env

from freight import tracing
from freight.config import FreightSettings
from freight.kafka import producer_config
from freight.schemas.serde import EventSerde
from freight.stream import StreamConsumer, extract

WORKER = Path(__file__).with_name("tracing_worker.py")


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.instrument(provider)
    yield exporter
    tracing.uninstrument()


def _hex(value: int, width: int) -> str:
    return format(value, f"0{width}x")


def _by_name(finished: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [s for s in finished if s.name == name]


def test_one_trace_links_send_store_receive_and_resolve_in_another_process(
    spans: InMemorySpanExporter,
    stream_settings: FreightSettings,
    make_topic: Callable[..., str],
    make_producer: Callable[..., Any],
    file_store: Any,
    group_id: str,
    tmp_path: Path,
) -> None:
    topic = make_topic(partitions=1)
    producer = make_producer({None: file_store}, inline_threshold=64)
    producer.send(topic, b"stored object " * 100, stream="s")
    producer.send(topic, b"tiny", stream="s")
    producer.flush()

    with StreamConsumer(topic, group_id, settings=stream_settings, until_high_watermark=True) as consumer:
        proxies = list(consumer)
    assert len(proxies) == 2

    finished = spans.get_finished_spans()
    publish = _by_name(finished, f"{topic} publish")
    receive = _by_name(finished, f"{topic} receive")
    puts = _by_name(finished, "freight.store.put")
    assert len(publish) == 2 and len(receive) == 2 and len(puts) == 1
    assert all(s.kind is SpanKind.PRODUCER for s in publish)
    assert all(s.kind is SpanKind.CONSUMER for s in receive)
    # The store write happens inside the first send; each receive continues its send's trace.
    assert puts[0].parent is not None and puts[0].parent.span_id == publish[0].context.span_id
    for sent, got in zip(publish, receive, strict=True):
        assert got.context.trace_id == sent.context.trace_id
        assert got.parent is not None and got.parent.span_id == sent.context.span_id
        assert got.attributes is not None and got.attributes["messaging.destination.name"] == topic
    assert publish[0].context.trace_id != publish[1].context.trace_id  # one trace per object

    # A worker process resolves the pickled proxies; its spans join the producer's traces.
    pickled = tmp_path / "proxies.pkl"
    pickled.write_bytes(pickle.dumps(proxies))
    env = child_env(stream_settings) | {"FREIGHT_TRACING": "1", "FREIGHT_ALLOWED_STORE_ROOTS": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, str(WORKER), str(pickled)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    worker = [json.loads(line) for line in done.stdout.splitlines()]
    resolves = [s for s in worker if s["name"] == "freight.resolve"]
    gets = [s for s in worker if s["name"] == "freight.store.get"]
    assert len(resolves) == 2 and len(gets) == 1
    for span, got in zip(resolves, receive, strict=True):
        assert span["trace"] == _hex(got.context.trace_id, 32)
        assert span["parent"] == _hex(got.context.span_id, 16)
    assert gets[0]["parent"] == resolves[0]["span"] and gets[0]["trace"] == resolves[0]["trace"]


def test_garbage_trace_headers_start_a_new_trace(
    spans: InMemorySpanExporter,
    stream_settings: FreightSettings,
    make_topic: Callable[..., str],
    make_producer: Callable[..., Any],
    group_id: str,
) -> None:
    """Trace headers are input from the topic: malformed ones are ignored, the record is still consumed."""
    topic = make_topic(partitions=1)
    clean = make_producer(inline_threshold=1024)
    clean.send(topic, b"one", stream="s")
    clean.flush()
    # Copy the valid event, with hostile trace headers, through a plain client.
    with StreamConsumer(topic, None, settings=stream_settings, until_high_watermark=True) as reader:
        record = reader.next_record(10)
        assert record is not None
    raw = Producer(producer_config(stream_settings))
    serde = EventSerde.from_settings(stream_settings)
    payload = serde.encode(topic, record.event)
    for headers in (
        [("traceparent", b"\xff\xfe not ascii")],
        [("traceparent", b"00-" + b"f" * 600)],
        [("traceparent", b"garbage"), ("tracestate", b"x" * 10_000)],
    ):
        raw.produce(topic, payload, key=b"s", headers=headers)
    assert raw.flush(30) == 0
    spans.clear()
    with StreamConsumer(topic, group_id, settings=stream_settings, until_high_watermark=True) as consumer:
        objects = [bytes(extract(p)) for p in consumer]
    assert objects == [b"one"] * 4
    receive = _by_name(spans.get_finished_spans(), f"{topic} receive")
    assert len(receive) == 4
    assert all(s.parent is None for s in receive[1:])  # the hostile headers: a fresh trace each
