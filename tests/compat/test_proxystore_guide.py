"""ProxyStore's streaming guide (seeds/000), run on Freight through `freight.compat.proxystore`.

The guide's code is kept as written; only the imports change, `RedisPublisher(...)` / `RedisSubscriber(...)`
become `KafkaPublisher(...)` / `KafkaSubscriber(topic)`, and the topic and store names are made unique per
test (the guide's 'my-topic' / 'example'). Real broker and registry.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from freight.compat.proxystore import (
    FileConnector,
    KafkaPublisher,
    KafkaSubscriber,
    Proxy,
    Store,
    StreamConsumer,
    StreamProducer,
)
from freight.config import FreightSettings
from freight.errors import ObjectEvictedError
from freight.stream import ref_of


def _store(tmp_path: Path) -> Any:
    return Store(f"example-{uuid.uuid4().hex[:8]}", FileConnector(str(tmp_path / "store")))  # (1)!


def test_producer_and_consumer_example(stream_settings: FreightSettings, topic: str, tmp_path: Path) -> None:
    items = [np.full(5000, i) for i in range(5)]
    # --- the guide's producer ---
    store = _store(tmp_path)
    publisher = KafkaPublisher(settings=stream_settings)  # (2)!
    producer = StreamProducer(publisher, {topic: store})  # (3)!

    for item in items:
        producer.send(topic, item, evict=True)  # (4)!

    producer.close()  # (5)!

    # --- the guide's consumer ---
    subscriber = KafkaSubscriber(topic, settings=stream_settings)  # (1)!
    consumer = StreamConsumer(subscriber)  # (2)!

    got = []
    for item in consumer:  # (3)! iteration stops once the producer closed the topic
        assert isinstance(item, Proxy)  # (4)!
        got.append(int(np.asarray(item)[0]))

    consumer.close()  # (5)!
    assert got == [0, 1, 2, 3, 4]


def test_evict_true_is_one_time_use_and_false_keeps(
    stream_settings: FreightSettings, topic: str, tmp_path: Path
) -> None:
    store = _store(tmp_path)
    producer = StreamProducer(KafkaPublisher(settings=stream_settings), {None: store})  # None: the default
    producer.send(topic, np.arange(2000), evict=True)
    producer.send(topic, np.arange(2000), evict=False)
    producer.close(close_stores=False)
    consumer = StreamConsumer(KafkaSubscriber(topic, settings=stream_settings))
    once, kept = list(consumer)
    consumer.close()
    keys = ref_of(once).key, ref_of(kept).key
    assert np.asarray(once).sum() == np.asarray(kept).sum()
    assert not store.exists(keys[0]) and store.exists(keys[1])
    # A second consumer that receives the full stream: the one-time object is gone, the kept one is there.
    again = StreamConsumer(KafkaSubscriber(topic, settings=stream_settings))
    first, second = list(again)
    again.close()
    with pytest.raises(ObjectEvictedError):
        np.asarray(first)
    assert int(np.asarray(second).sum()) == sum(range(2000))


def test_iteration_variants_and_next_methods(
    stream_settings: FreightSettings, topic: str, tmp_path: Path
) -> None:
    producer = StreamProducer(KafkaPublisher(settings=stream_settings), {None: _store(tmp_path)})
    for i in range(8):
        producer.send(topic, f"item-{i}".encode(), evict=False, metadata={"i": i})
    producer.close()

    def consumer() -> StreamConsumer:
        return StreamConsumer(KafkaSubscriber(topic, settings=stream_settings))

    with consumer() as c:
        meta, proxy = next(c.iter_with_metadata())
        assert meta == {"i": "0"} and isinstance(proxy, Proxy) and bytes(proxy) == b"item-0"
        assert [bytes(o) for o in c.iter_objects()][:2] == [b"item-1", b"item-2"]
    with consumer() as c:
        assert [(m["i"], bytes(o)) for m, o in c.iter_objects_with_metadata()][-1] == ("7", b"item-7")
    with consumer() as c:
        assert isinstance(c.next(), Proxy)
        assert c.next_with_metadata()[0] == {"i": "1"}
        assert bytes(c.next_object()) == b"item-2"
        meta, obj = c.next_object_with_metadata()
        assert meta == {"i": "3"} and bytes(obj) == b"item-3"


def test_aggregation_batching_and_filtering_with_proxystore_names(
    stream_settings: FreightSettings, make_topic: Any, tmp_path: Path
) -> None:
    batched, filtered = make_topic(), make_topic()
    producer = StreamProducer(
        KafkaPublisher(settings=stream_settings),
        {None: _store(tmp_path)},
        aggregator=lambda objs: np.concatenate(objs),
        batch_size=3,
    )
    for i in range(6):
        producer.send(batched, np.full(10, i), evict=False)
    producer.close()
    with StreamConsumer(KafkaSubscriber(batched, settings=stream_settings)) as c:
        chunks = [np.asarray(o) for o in c.iter_objects()]
    assert [len(ch) for ch in chunks] == [30, 30]

    producer = StreamProducer(
        KafkaPublisher(settings=stream_settings),
        {None: _store(tmp_path)},
        filter_=lambda metadata: metadata.get("keep") == "no",
    )
    for i in range(4):
        producer.send(filtered, i.to_bytes(1, "big"), metadata={"keep": "no" if i % 2 else "yes"})
    producer.close()
    with StreamConsumer(
        KafkaSubscriber(filtered, settings=stream_settings), filter_=lambda m: m.get("keep") == "maybe"
    ) as c:
        assert [bytes(o) for o in c.iter_objects()] == [b"\x00", b"\x02"]


def test_close_topics_ends_one_topic_for_its_consumers(
    stream_settings: FreightSettings, make_topic: Any, tmp_path: Path
) -> None:
    a, b = make_topic(), make_topic()
    producer = StreamProducer(KafkaPublisher(settings=stream_settings), {None: _store(tmp_path)})
    producer.send(a, b"a0", evict=False)
    producer.send(b, b"b0", evict=False)
    producer.close_topics(a)
    with StreamConsumer(KafkaSubscriber(a, settings=stream_settings)) as c:
        assert [bytes(o) for o in c.iter_objects()] == [b"a0"]
    producer.send(b, b"b1", evict=False)
    producer.close()
    with StreamConsumer(KafkaSubscriber(b, settings=stream_settings)) as c:
        assert [bytes(o) for o in c.iter_objects()] == [b"b0", b"b1"]


def test_a_proxystore_publisher_is_a_clear_error() -> None:
    from freight.errors import ConfigError

    class RedisPublisher:
        pass

    with pytest.raises(ConfigError, match=r"use KafkaPublisher\(\.\.\.\)"):
        StreamProducer(RedisPublisher(), {})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"use KafkaSubscriber\(topic\)"):
        StreamConsumer(object())  # type: ignore[arg-type]


def test_multi_producer_and_multi_consumer(
    stream_settings: FreightSettings, topic: str, tmp_path: Path
) -> None:
    """The guide's multi-producer / multi-consumer notes: each producer just sends; consumers that each
    receive the whole stream need evict=False."""
    store = _store(tmp_path)
    first = StreamProducer(KafkaPublisher(settings=stream_settings), {None: store})
    second = StreamProducer(KafkaPublisher(settings=stream_settings), {None: store})
    for i in range(3):
        first.send(topic, f"a{i}".encode(), evict=False)
        second.send(topic, f"b{i}".encode(), evict=False)
    first.close(end_topics=False, close_stores=False)  # the other producer still sends
    second.close(close_stores=False)
    everything = {f"{p}{i}".encode() for p in "ab" for i in range(3)}
    for _ in range(2):  # every consumer receives the full stream: evict=False kept the objects for both
        with StreamConsumer(KafkaSubscriber(topic, settings=stream_settings)) as c:
            assert {bytes(o) for o in c.iter_objects()} == everything
