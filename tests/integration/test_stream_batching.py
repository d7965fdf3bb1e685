"""Batching (`batch_size=N`) keeps every per-send option, and a batched send's result never hangs (issue 14).

Each test failed on the code before the fix: a batch took the eviction mode of its first send (an object
sent with `evict="never"` was deleted on first resolve), dropped `serializer=`, and `result()` on a send
waiting for its batch blocked forever (or, with a timeout, claimed "no acknowledgement").
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from freight.config import FreightSettings
from freight.connectors.file import FileConnector
from freight.stores import Store
from freight.stream import StreamConsumer, extract, ref_of


def _records(settings: FreightSettings, topic: str) -> list[Any]:
    with StreamConsumer(topic, None, settings=settings, until_high_watermark=True) as consumer:
        return list(consumer.iter_records())


def test_each_batched_send_keeps_its_own_eviction_mode(
    stream_settings: FreightSettings, topic: str, make_producer: Callable[..., Any], file_store: Any
) -> None:
    producer = make_producer({None: file_store}, batch_size=2, inline_threshold=0)
    producer.send(topic, b"one-time", evict="on-resolve")  # leads the batch
    producer.send(topic, b"keep me", evict="never")
    producer.flush()
    records = _records(stream_settings, topic)
    modes = [ref_of(r.proxy).eviction.value for r in records if r.proxy is not None]
    assert modes == ["ON_RESOLVE", "NEVER"]
    kept = ref_of(records[1].proxy).key
    assert bytes(extract(records[0].proxy)) == b"one-time"
    assert bytes(extract(records[1].proxy)) == b"keep me"
    assert file_store.exists(kept), "an evict='never' object was deleted by its first resolve"


def test_each_batched_send_keeps_its_serializer(
    stream_settings: FreightSettings, topic: str, make_producer: Callable[..., Any], tmp_path: Path
) -> None:
    store = Store(f"files-{uuid.uuid4().hex[:8]}", FileConnector(tmp_path / "s"), allow_pickle=True)
    producer = make_producer({None: store}, batch_size=3, inline_threshold=0)
    producer.send(topic, [1, 2], serializer="pickle")  # without it: json
    producer.send(topic, np.arange(4))
    producer.send(topic, [3], serializer="json")
    producer.flush()
    records = _records(stream_settings, topic)
    assert [ref_of(r.proxy).serializer for r in records] == ["pickle", "numpy", "json"]
    assert extract(records[0].proxy) == [1, 2]


def test_aggregated_batches_never_mix_eviction_modes_or_serializers(
    stream_settings: FreightSettings, topic: str, make_producer: Callable[..., Any], tmp_path: Path
) -> None:
    store = Store(f"files-{uuid.uuid4().hex[:8]}", FileConnector(tmp_path / "s"), allow_pickle=True)
    producer = make_producer({None: store}, batch_size=3, aggregator=np.concatenate, inline_threshold=0)
    producer.send(topic, np.full(10, 0), evict="on-resolve", metadata={"i": "0"})
    producer.send(topic, np.full(10, 1), evict="never", metadata={"i": "1"})
    producer.send(topic, np.full(10, 2), evict="never", metadata={"i": "2"})
    producer.send(topic, np.full(10, 3), evict="never", serializer="pickle", metadata={"i": "3"})
    producer.flush()
    records = _records(stream_settings, topic)
    refs = [ref_of(r.proxy) for r in records]
    assert [(r.eviction.value, r.serializer) for r in refs] == [
        ("ON_RESOLVE", "numpy"),
        ("NEVER", "numpy"),
        ("NEVER", "pickle"),
    ]
    assert [r.metadata.metadata["freight.batch_size"] for r in records] == ["1", "2", "1"]
    # Every item's metadata survives aggregation (the merged keys keep the last value, as before).
    per_item = json.loads(records[1].metadata.metadata["freight.batch_metadata"])
    assert per_item == [{"i": "1"}, {"i": "2"}]
    assert records[1].metadata.metadata["i"] == "2"
    assert np.array_equal(extract(records[1].proxy), np.repeat([1, 2], 10))


def test_result_of_a_batched_send_flushes_its_batch(
    stream_settings: FreightSettings, topic: str, make_producer: Callable[..., Any], file_store: Any
) -> None:
    producer = make_producer({None: file_store}, batch_size=10)
    first = producer.send(topic, b"a", stream="s")
    second = producer.send(topic, b"b", stream="s")
    assert not second.done()
    outcome: list[Any] = []
    waiter = threading.Thread(target=lambda: outcome.append(second.result()), daemon=True)
    waiter.start()
    waiter.join(30)
    assert not waiter.is_alive(), "result() of a batched send blocked: nothing flushed its batch"
    assert outcome[0].offset == 1
    assert first.done() and first.result().offset == 0
    assert [bytes(extract(r.proxy)) for r in _records(stream_settings, topic)] == [b"a", b"b"]


def test_result_with_timeout_of_a_batched_send_is_not_a_false_no_acknowledgement(
    topic: str, make_producer: Callable[..., Any], file_store: Any
) -> None:
    producer = make_producer({None: file_store}, batch_size=10)
    result = producer.send(topic, b"x")
    position = result.result(timeout=30)  # before: "no acknowledgement ... within 30s", nothing produced
    assert position is not None and position.offset == 0


@pytest.mark.parametrize("aggregate", [False, True])
def test_batched_send_result_is_final_once_flushed(
    topic: str, make_producer: Callable[..., Any], file_store: Any, aggregate: bool
) -> None:
    producer = make_producer(
        {None: file_store}, batch_size=4, aggregator=np.concatenate if aggregate else None
    )
    results = [producer.send(topic, np.arange(3)) for _ in range(3)]
    assert results[2].result(timeout=30) is not None
    assert all(r.done() for r in results)
