"""Prometheus metrics: store instrumentation, the lag statistics callback, the exporter, ASGI counting."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from freight import metrics
from freight.connectors.file import FileConnector
from freight.errors import ObjectNotFoundError
from freight.stores import Store


def value(name: str, **labels: str) -> float:
    got = REGISTRY.get_sample_value(name, labels)
    return 0.0 if got is None else got


def test_store_counts_bytes_hits_misses_evictions_and_resolve_time(tmp_path: Path) -> None:
    name = f"m-{uuid.uuid4().hex[:8]}"
    store = Store(name, FileConnector(tmp_path))
    ref = store.put(b"x" * 1000)
    store.get(ref.key)
    store.get_batch([ref.key])
    with pytest.raises(ObjectNotFoundError):
        store.get("missing")
    store.evict(ref.key)

    assert value("freight_store_bytes_written_total", store=name) == ref.size
    assert value("freight_store_objects_written_total", store=name) == 1
    assert value("freight_store_bytes_read_total", store=name) == 2 * ref.size
    assert value("freight_store_reads_total", store=name, result="hit") == 2
    assert value("freight_store_reads_total", store=name, result="miss") == 1
    assert value("freight_resolve_seconds_count", store=name) == 2
    assert value("freight_evictions_total", store=name) == 1
    assert store.stats.bytes_read == 2 * ref.size  # the per-object stats are unchanged


def test_stream_metrics_are_cached_children() -> None:
    topic = f"t-{uuid.uuid4().hex[:8]}"
    assert metrics.producer_metrics(topic) is metrics.producer_metrics(topic)
    metrics.producer_metrics(topic).events.inc()
    consumed = metrics.consumer_metrics(topic, "g1")
    consumed.events.inc(3)
    consumed.set_lag(2, 7)
    assert value("freight_events_produced_total", topic=topic) == 1
    assert value("freight_events_consumed_total", topic=topic, group="g1") == 3
    assert value("freight_consumer_lag", topic=topic, partition="2", group="g1") == 7


def test_stats_callback_sets_lag_from_librdkafka_statistics() -> None:
    topic = f"t-{uuid.uuid4().hex[:8]}"
    stats = {
        "client_id": "rdkafka",
        "topics": {
            topic: {
                "partitions": {
                    "0": {"consumer_lag": 5},
                    "1": {"consumer_lag": -1},  # unknown yet: left alone
                    "-1": {"consumer_lag": 0},  # librdkafka's internal UA partition
                }
            }
        },
    }
    metrics.kafka_stats_callback("grp")(json.dumps(stats))
    assert value("freight_consumer_lag", topic=topic, partition="0", group="grp") == 5
    assert (
        REGISTRY.get_sample_value("freight_consumer_lag", {"topic": topic, "partition": "1", "group": "grp"})
        is None
    )
    metrics.kafka_stats_callback("grp")("not json")  # ignored
    assert set(metrics.lag_config("grp")) == {"statistics.interval.ms", "stats_cb"}


def test_serve_exports_the_text_format() -> None:
    metrics.producer_metrics("served-topic").events.inc()
    with metrics.serve(0) as server:
        assert server.host == "127.0.0.1"
        body = httpx.get(server.url, timeout=5).text
    assert 'freight_events_produced_total{topic="served-topic"}' in body


def test_instrument_asgi_counts_requests_by_method_and_code() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    service = f"svc-{uuid.uuid4().hex[:6]}"
    wrapped = metrics.instrument_asgi(app, service)

    async def call() -> None:
        sent: list[Any] = []

        async def receive() -> Any:
            return {"type": "http.request", "body": b""}

        async def send(message: Any) -> None:
            sent.append(message)

        await wrapped({"type": "http", "method": "GET", "path": "/x"}, receive, send)
        assert sent[0]["status"] == 404

    asyncio.run(call())
    asyncio.run(call())
    assert value("freight_http_requests_total", service=service, method="GET", code="404") == 2
    assert value("freight_http_request_seconds_count", service=service) == 2
