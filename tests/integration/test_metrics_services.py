"""Prometheus metrics on the real services: stream counters, consumer lag, the registry's /metrics."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from freight import metrics
from freight.config import FreightSettings


def value(name: str, **labels: str) -> float:
    got = REGISTRY.get_sample_value(name, labels)
    return 0.0 if got is None else got


def test_stream_counters_and_lag_gauge(
    stream_settings: FreightSettings, topic: str, group_id: str, make_producer: Any, file_store: Any
) -> None:
    from freight.stream import StreamConsumer

    producer = make_producer({None: file_store})
    for _ in range(4):
        producer.send(topic, bytes(10), stream="s")  # inline
    producer.send(topic, bytes(100_000), stream="s")  # stored
    producer.close()
    assert value("freight_events_produced_total", topic=topic) == 5
    assert value("freight_bulk_bytes_produced_total", topic=topic) > 100_000
    assert value("freight_store_bytes_written_total", store=file_store.name) > 100_000

    fast_lag = metrics.lag_config(group_id, interval_ms=200)
    with StreamConsumer(topic, group_id, settings=stream_settings, kafka_config=fast_lag) as consumer:
        for _ in range(3):
            consumer.next_proxy(30)
        consumer.commit()
        consumer.pause()
        deadline = time.monotonic() + 20
        while value("freight_consumer_lag", topic=topic, partition="0", group=group_id) != 2:
            assert time.monotonic() < deadline, "the lag gauge never showed 5 - 3"
            consumer.wait_for_assignment(0.2)  # serves librdkafka's statistics callback
    assert value("freight_events_consumed_total", topic=topic, group=group_id) >= 3


def test_registry_serves_metrics(registry_url: str) -> None:
    if httpx.get(f"{registry_url}/freight/health", timeout=5).status_code == 404:
        pytest.skip("FREIGHT_SCHEMA_REGISTRY_URL is not a Freight registry")
    httpx.get(f"{registry_url}/subjects", timeout=5)
    response = httpx.get(f"{registry_url}/metrics", timeout=5)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert 'freight_http_requests_total{code="200",method="GET",service="registry"}' in response.text
    assert "freight_http_request_seconds_bucket" in response.text
    assert "/metrics" not in httpx.get(f"{registry_url}/openapi.json", timeout=5).text  # not fuzzed, not API
