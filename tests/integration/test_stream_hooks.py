"""Producer hooks (filter, batching, aggregation), send results, and the asyncio variants."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from freight.config import FreightSettings
from freight.errors import ConfigError, DeliveryError
from freight.stream import AsyncStreamConsumer, AsyncStreamProducer, StreamConsumer, StreamProducer, extract


def _read(settings: FreightSettings, topic: str) -> list[tuple[dict[str, str], Any]]:
    with StreamConsumer(topic, None, settings=settings, until_high_watermark=True) as c:
        return [(m.metadata, o) for m, o in c.iter_objects_with_metadata()]


def test_filter_drops_and_counts_what_it_rejects(
    stream_settings: FreightSettings, topic: str, make_producer: Callable[..., Any], file_store: Any
) -> None:
    producer = make_producer({None: file_store}, filter_=lambda meta: meta.get("keep") == "no")
    results = [
        producer.send(topic, f"i{i}".encode(), metadata={"keep": "no" if i % 2 else "yes"}) for i in range(6)
    ]
    producer.flush()
    assert producer.stats.filtered == 3
    assert [r.filtered() for r in results] == [False, True] * 3
    assert [r.result() is None for r in results] == [False, True] * 3
    assert [bytes(o) for _, o in _read(stream_settings, topic)] == [b"i0", b"i2", b"i4"]


def test_batches_flush_on_size_end_of_stream_and_flush(
    stream_settings: FreightSettings, topic: str, make_producer: Callable[..., Any], file_store: Any
) -> None:
    producer = make_producer({None: file_store}, batch_size=4)
    results = [producer.send(topic, f"b{i}".encode(), stream="s") for i in range(6)]
    assert [r.done() for r in results[4:]] == [False, False]  # waiting for their batch
    producer.end_stream(topic, "s")  # flushes the partial batch first
    producer.flush()
    positions = [r.result() for r in results]
    assert [p.offset for p in positions if p] == list(range(6))
    items = _read(stream_settings, topic)
    assert [bytes(o) for _, o in items] == [f"b{i}".encode() for i in range(6)]


def test_aggregator_combines_a_batch_into_one_object(
    stream_settings: FreightSettings, topic: str, make_producer: Callable[..., Any], file_store: Any
) -> None:
    producer = make_producer({None: file_store}, batch_size=3, aggregator=np.concatenate)
    for i in range(7):
        producer.send(topic, np.full(1000, i), stream="agg", metadata={"i": str(i)})
    producer.flush()
    items = _read(stream_settings, topic)
    assert [meta["freight.batch_size"] for meta, _ in items] == ["3", "3", "1"]
    assert np.array_equal(np.concatenate([o for _, o in items]), np.repeat(np.arange(7), 1000))


def test_send_results_report_delivery_failures(
    stream_settings: FreightSettings, file_store: Any, topic: str
) -> None:
    # Messages above the broker's limit are refused: the result fails, the stored object is deleted again,
    # and flush() raises.
    producer = StreamProducer(
        {None: file_store},
        settings=stream_settings,
        inline_threshold=1 << 30,
        kafka_config={"message.max.bytes": 200_000_000},
    )
    try:
        result = producer.send(topic, os.urandom(80 * 2**20))  # incompressible: lz4 cannot shrink it
        with pytest.raises(DeliveryError, match=f"topic '{topic}'"):
            result.result(timeout=60)
        with pytest.raises(DeliveryError, match="1 event\\(s\\) failed"):
            producer.flush()
        assert producer.stats.failed == 1
    finally:
        producer.close()


def test_async_producer_and_consumer(stream_settings: FreightSettings, topic: str, file_store: Any) -> None:
    async def main() -> list[bytes]:
        async with AsyncStreamProducer({None: file_store}, settings=stream_settings) as producer:
            positions = [await producer.send(topic, np.arange(3000) + i, stream="a") for i in range(3)]
            assert [p.offset for p in positions if p] == [0, 1, 2]
            await producer.end_stream(topic, "a")
        got = []
        async with AsyncStreamConsumer(topic, None, settings=stream_settings, until_end_of=["a"]) as consumer:
            async for obj in consumer.iter_objects():
                got.append(int(np.asarray(obj)[0]))
        return got

    assert asyncio.run(main()) == [0, 1, 2]


def test_async_send_batch_serializer_and_next_object(
    stream_settings: FreightSettings, topic: str, file_store: Any
) -> None:
    async def main() -> tuple[list[Any], list[str]]:
        async with AsyncStreamProducer(
            {None: file_store}, settings=stream_settings, batch_size=2
        ) as producer:
            positions = await producer.send_batch(topic, [[1], [2], [3]], stream="a", serializer="json")
            assert [p.offset for p in positions if p] == [0, 1, 2]
            await producer.end_stream(topic, "a")
        async with AsyncStreamConsumer(topic, None, settings=stream_settings, until_end_of=["a"]) as consumer:
            got = [await consumer.next_object(), await consumer.next_object()]
            serializers = [meta.metadata.get("s", "") async for meta, _ in consumer.iter_with_metadata()]
            with pytest.raises(StopAsyncIteration):
                await consumer.next_object(timeout=1)
        return got, serializers

    got, rest = asyncio.run(main())
    assert got == [[1], [2]]
    assert rest == [""]


def test_sync_iteration_helpers(
    stream_settings: FreightSettings, topic: str, make_producer: Callable[..., Any], file_store: Any
) -> None:
    producer = make_producer({None: file_store})
    for i in range(3):
        producer.send(topic, f"n{i}".encode(), stream="x")
    producer.flush()
    with StreamConsumer(topic, None, settings=stream_settings, until_high_watermark=True) as c:
        assert bytes(c.next_object()) == b"n0"
        assert bytes(extract(c.next_proxy())) == b"n1"
        proxy = c.poll(5)
        assert proxy is not None and bytes(proxy) == b"n2"
        assert c.poll(0.2) is None
        with pytest.raises(StopIteration):
            c.next_object()


def test_a_refused_event_deletes_its_stored_object_again(
    stream_settings: FreightSettings, make_topic: Callable[..., str], file_store: Any
) -> None:
    tiny = make_topic(config={"max.message.bytes": "64"})  # every event is larger: the broker refuses it
    producer = StreamProducer({None: file_store}, settings=stream_settings, inline_threshold=0)
    try:
        result = producer.send(tiny, b"payload" * 100)
        with pytest.raises(DeliveryError, match="stored object was deleted again"):
            result.result(timeout=60)
        assert list(file_store.connector.list()) == []  # no orphan left behind
        with pytest.raises(DeliveryError):
            producer.flush()
    finally:
        producer.close()  # the failure was already raised by flush(), so close() is clean


def test_prometheus_counters_follow_what_moved(
    stream_settings: FreightSettings,
    topic: str,
    make_producer: Callable[..., Any],
    file_store: Any,
    group_id: str,
) -> None:
    from prometheus_client import REGISTRY

    def value(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    producer = make_producer({None: file_store}, inline_threshold=100)
    for i in range(300):
        producer.send(topic, b"z" * (50 if i % 2 else 500))
    producer.flush()
    assert value("freight_events_produced_total", topic=topic) == 300
    assert value("freight_bulk_bytes_produced_total", topic=topic) == producer.stats.bulk_bytes > 150 * 500
    with StreamConsumer(topic, group_id, settings=stream_settings, until_high_watermark=True) as c:
        assert len(list(c)) == 300
    assert value("freight_events_consumed_total", topic=topic, group=group_id) == 300


def test_a_closed_consumer_says_it_is_closed_and_what_to_do(
    stream_settings: FreightSettings, topic: str, group_id: str
) -> None:
    consumer = StreamConsumer(topic, group_id, settings=stream_settings, until_high_watermark=True)
    consumer.close()
    consumer.close()  # harmless
    for use in (lambda: list(consumer), consumer.next_record, consumer.commit):
        with pytest.raises(
            ConfigError, match=rf"closed; to read on, create a new one \(StreamConsumer\('{topic}'"
        ):
            use()
