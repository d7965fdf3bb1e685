"""The local broker behaves as Kafka: groups commit and resume, replay by offset and timestamp, compaction."""

from __future__ import annotations

import time
from collections.abc import Callable

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from freight.config import FreightSettings
from freight.kafka import KafkaAdmin, consumer_config, producer_config


def _produce(settings: FreightSettings, topic: str, records: list[tuple[str, str]]) -> None:
    producer = Producer(producer_config(settings))
    for key, value in records:
        producer.produce(topic, key=key.encode(), value=value.encode())
    assert producer.flush(30) == 0


def _consume(consumer: Consumer, n: int, timeout: float = 30.0) -> list[tuple[int, str, str]]:
    out: list[tuple[int, str, str]] = []
    end = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < end:
        for msg in consumer.consume(n - len(out), timeout=1.0):
            assert msg.error() is None, msg.error()
            out.append((msg.offset(), msg.key().decode(), msg.value().decode()))
    return out


def test_group_commits_and_restarted_consumer_resumes(
    settings: FreightSettings, topic: str, group_id: str
) -> None:
    _produce(settings, topic, [(f"k{i}", f"v{i}") for i in range(20)])
    conf = consumer_config(settings, group_id, {"enable.auto.commit": False})

    first = Consumer(conf)
    first.subscribe([topic])
    got = _consume(first, 8)
    assert [v for _, _, v in got] == [f"v{i}" for i in range(8)]
    first.commit(offsets=[TopicPartition(topic, 0, got[-1][0] + 1)], asynchronous=False)
    first.close()

    assert KafkaAdmin(settings).committed(group_id, topic) == {(topic, 0): 8}

    second = Consumer(conf)
    second.subscribe([topic])
    rest = _consume(second, 12)
    second.close()
    assert [o for o, _, _ in rest] == list(range(8, 20))


def test_replay_from_beginning_and_from_timestamp_match(settings: FreightSettings, topic: str) -> None:
    _produce(settings, topic, [(f"k{i}", f"early{i}") for i in range(5)])
    time.sleep(0.05)
    boundary_ms = int(time.time() * 1000)
    time.sleep(0.05)
    _produce(settings, topic, [(f"k{i}", f"late{i}") for i in range(5)])

    admin = KafkaAdmin(settings)
    assert admin.offsets_for_time(topic, boundary_ms) == {0: 5}

    def read_from(offset: int) -> list[tuple[int, str, str]]:
        c = Consumer(consumer_config(settings, "unused", {"enable.auto.commit": False}))
        c.assign([TopicPartition(topic, 0, offset)])
        try:
            return _consume(c, 10 - (offset if offset >= 0 else 0))
        finally:
            c.close()

    everything = read_from(OFFSET_BEGINNING)
    again = read_from(OFFSET_BEGINNING)
    assert everything == again
    assert [v for _, _, v in everything] == [f"early{i}" for i in range(5)] + [f"late{i}" for i in range(5)]
    by_time = read_from(admin.offsets_for_time(topic, boundary_ms)[0])
    assert by_time == everything[5:]


def test_compacted_topic_keeps_last_value_per_key(
    settings: FreightSettings, make_topic: Callable[..., str]
) -> None:
    topic = make_topic(
        config={
            "cleanup.policy": "compact",
            "segment.ms": "100",
            "min.cleanable.dirty.ratio": "0.001",
            "min.compaction.lag.ms": "0",
            "delete.retention.ms": "100",
        }
    )
    for round_ in range(3):
        _produce(settings, topic, [(f"key{k}", f"r{round_}-{k}") for k in range(5)])
        time.sleep(0.2)
    expected = {f"key{k}": f"r2-{k}" for k in range(5)}

    deadline = time.monotonic() + 60
    latest: list[tuple[int, str, str]] = []
    while time.monotonic() < deadline:
        # A later record rolls the segment holding the rounds, so the cleaner may compact it.
        _produce(settings, topic, [("roll", str(time.time()))])
        c = Consumer(consumer_config(settings, "unused", {"enable.auto.commit": False}))
        high = KafkaAdmin(settings).watermarks(topic)[0][1]
        c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        latest = []
        while not latest or latest[-1][0] < high - 1:
            batch = _consume(c, 1, timeout=5)
            if not batch:
                break
            latest += batch
        c.close()
        rounds = [(k, v) for _, k, v in latest if k != "roll"]
        if len(rounds) == 5:
            assert dict(rounds) == expected
            return
        time.sleep(1.0)
    raise AssertionError(f"topic was not compacted within 60s; still holds {latest}")
