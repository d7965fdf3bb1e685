"""Broker faults on a private broker: SIGTERM and SIGKILL mid-stream with a restart on the same data
directory, a broker that stays down past the delivery deadline, and a network cut that loses the broker's
answers.

Nothing acknowledged may be lost, nothing may be duplicated by the producer's retries (idempotence), every
object's bytes must verify, and an error must say what happened and what to do.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from tests.faults.procs import STREAMS, check, payload
from tests.fixtures.faults import FULL, PrivateKafka, wait_until

from freight.connectors.file import FileConnector
from freight.errors import BrokerUnavailableError, DeliveryError
from freight.eviction import Evictor, PolicyStore, RetentionPolicy
from freight.kafka import KafkaAdmin
from freight.stores import Store
from freight.stream import SendResult, StreamConsumer, StreamProducer, extract


def _object(i: int) -> Any:
    """Every third item is tiny (inline in its event), the others go through the store."""
    return f"inline-{i}".encode() if i % 3 == 0 else payload(i)


def _verify(obj: Any, stream: str, sequence: int) -> int:
    """The item index of a resolved object, checking its bytes (inline or stored)."""
    if isinstance(obj, bytes | bytearray | memoryview) and bytes(obj).startswith(b"inline-"):
        i = int(bytes(obj)[7:])
        assert i == sequence * STREAMS + int(stream[1:]), f"{stream}#{sequence} resolved to item {i}"
        return i
    return check(obj, stream, sequence)


def _read_all(settings: Any, topic: str, group: str) -> list[tuple[int, int, str, int, int]]:
    """(partition, offset, stream, sequence, item) of every event up to the current end, resolved."""
    out = []
    with StreamConsumer(topic, group, settings=settings, until_high_watermark=True) as consumer:
        for meta, proxy in consumer.iter_with_metadata():
            item = _verify(extract(proxy), meta.stream, meta.sequence)
            out.append((meta.partition, meta.offset, meta.stream, meta.sequence, item))
    return out


def _store(tmp_path: Path, name: str) -> Store:
    return Store(f"{name}-{uuid.uuid4().hex[:8]}", FileConnector(tmp_path / name))


@pytest.mark.long
def test_broker_sigterm_and_sigkill_mid_stream_lose_and_duplicate_nothing(
    private_kafka: PrivateKafka, tmp_path: Path
) -> None:
    kafka = private_kafka
    kafka.ensure_up()
    settings = kafka.settings()
    topic = f"faults-restart-{uuid.uuid4().hex[:8]}"
    KafkaAdmin(settings).create_topic(topic, 3)
    store = _store(tmp_path, "restart")
    cycles = ["term", "kill"] * (3 if FULL else 1)
    producer = StreamProducer({None: store}, settings=settings)  # delivery.timeout.ms: 120 s (default)
    sent: list[tuple[int, SendResult]] = []
    stop = threading.Event()
    errors: list[BaseException] = []

    def produce() -> None:
        i = 0
        try:
            while not stop.is_set():
                sent.append((i, producer.send(topic, _object(i), stream=f"s{i % STREAMS}")))
                i += 1
                producer._producer.poll(0)
                time.sleep(0.004)
        except BaseException as exc:
            errors.append(exc)

    # A consumer group reads all along, through the restarts (at least once: the union covers everything).
    seen: list[tuple[int, int]] = []
    group = f"g-restart-{uuid.uuid4().hex[:8]}"

    def consume() -> None:
        try:
            with StreamConsumer(topic, group, settings=settings, poll_timeout=0.2) as consumer:
                while not consumer_done.is_set():
                    record = consumer.next_record(timeout=0.5, include_end=False)
                    if record is not None:
                        assert record.proxy is not None
                        _verify(extract(record.proxy), record.event.stream, record.event.sequence)
                        seen.append((record.partition, record.offset))
        except BaseException as exc:
            errors.append(exc)

    consumer_done = threading.Event()
    threads = [threading.Thread(target=produce), threading.Thread(target=consume)]
    for t in threads:
        t.start()
    try:
        for how in cycles:
            acked = sum(1 for _, r in sent if r.done())
            wait_until(lambda a=acked: sum(1 for _, r in sent if r.done()) >= a + 40, 60, "acknowledgements")
            kafka.stop(how)  # sends go on while the broker is down: librdkafka queues and retries them
            time.sleep(1.0)
            kafka.restart()
        acked = sum(1 for _, r in sent if r.done())
        wait_until(lambda: sum(1 for _, r in sent if r.done()) >= acked + 40, 60, "acks after the restarts")
    finally:
        stop.set()
    threads[0].join(60)
    producer.flush(180)
    producer.close()
    assert not errors, errors
    positions = {}
    for i, result in sent:
        position = result.result(0)  # every send was acknowledged: the restarts stayed inside the deadline
        assert position is not None
        positions[(position.partition, position.offset)] = i

    everything = _read_all(settings, topic, f"g-verify-{uuid.uuid4().hex[:8]}")
    logged = {(p, o): item for p, o, _s, _q, item in everything}
    assert len(everything) == len(sent), "events in the log differ from the acknowledged sends"
    assert logged == positions, "an acknowledged event is missing, moved or names another object"
    ids = Counter((s, q) for _p, _o, s, q, _i in everything)
    assert max(ids.values()) == 1, "the producer's retries duplicated an event (idempotence broken)"

    wait_until(lambda: set(seen) >= set(positions), 120, "the group reading along to catch up")
    consumer_done.set()
    threads[1].join(30)
    assert not errors, errors
    assert set(seen) == set(positions)  # the group that read through the restarts missed nothing
    assert kafka.restarts[-len(cycles) :] == [
        f"{h}:{'terminated' if h == 'term' else 'killed'}" for h in cycles
    ]


@pytest.mark.long
def test_a_broker_that_stays_down_is_a_clear_error_and_loses_nothing(
    private_kafka: PrivateKafka, tmp_path: Path
) -> None:
    kafka = private_kafka
    kafka.ensure_up()
    settings = kafka.settings()
    topic = f"faults-down-{uuid.uuid4().hex[:8]}"
    store = _store(tmp_path, "down")
    producer = StreamProducer({None: store}, settings=settings, kafka_config={"delivery.timeout.ms": 3000})
    first = producer.send(topic, payload(0), stream="s0").result(60)
    assert first is not None
    kafka.stop("kill")
    try:
        stored = producer.send(topic, payload(4), stream="s0")
        inline = producer.send(topic, b"inline-8", stream="s0")
        with pytest.raises(DeliveryError) as caught:
            stored.result(timeout=60)  # a bounded wait: the deadline is 3 s
        message = str(caught.value)
        assert f"no acknowledgement from {kafka.bootstrap} within delivery.timeout.ms=3000" in message
        assert "freight dev status" in message and "send it again" in message
        kept = _keys(store)[1:]  # keys end in a counter: the first is the acknowledged object's
        assert len(kept) == 1 and f"stored object {kept[0]!r} in store {store.name!r} is kept" in message
        assert isinstance(inline.exception(0), DeliveryError)
        with pytest.raises(DeliveryError, match=r"2 event\(s\) failed"):
            producer.flush(30)
        # New clients while the broker is down: clear errors in bounded time, never a hang.
        other = StreamProducer({None: store}, settings=settings)
        with pytest.raises(BrokerUnavailableError, match=f"no Kafka broker answered at {kafka.bootstrap}"):
            other.send(f"{topic}-new", b"x")
        other._closed = True
        with pytest.raises(BrokerUnavailableError, match="freight dev up"):
            StreamConsumer(topic, "g-down", settings=settings)
    finally:
        kafka.restart()

    # After the restart the same producer sends again; the log holds exactly what was acknowledged.
    assert producer.send(topic, payload(12), stream="s0").result(60) is not None
    producer.close()
    items = [item for *_, item in _read_all(settings, topic, f"g-{uuid.uuid4().hex[:8]}")]
    assert items == [0, 12]
    # The object of the unacknowledged send was kept (its event might have been written); no event names
    # it, so the evictor's orphan sweep removes it after the grace period, and nothing else.
    referenced = _keys(store)
    assert len(referenced) == 3
    PolicyStore(settings).put(RetentionPolicy(topic=topic, orphan_grace_s=0.5))
    time.sleep(1.0)
    with Evictor(settings, stores=[store]) as evictor:
        (sweep,) = evictor.sweep_orphans([topic])
    assert sweep.deleted == 1 and not sweep.errors, sweep
    assert set(_keys(store)) == set(referenced) - set(kept)


def _keys(store: Store) -> list[str]:
    return sorted(i.key for i in store.connector.list())


def test_an_event_written_but_never_acknowledged_keeps_its_object(
    private_kafka: PrivateKafka, tmp_path: Path
) -> None:
    # The network loses the broker's answers (the broker is up and writes the event): the producer's
    # deadline passes, but the event is in the log, so its object must still be there to resolve.
    kafka = private_kafka
    kafka.ensure_up()
    topic = f"faults-cut-{uuid.uuid4().hex[:8]}"
    KafkaAdmin(kafka.settings()).create_topic(topic, 1)
    store = _store(tmp_path, "cut")
    producer = StreamProducer(
        {None: store}, settings=kafka.settings(proxied=True), kafka_config={"delivery.timeout.ms": 4000}
    )
    try:
        assert producer.send(topic, payload(0), stream="s0").result(60) is not None
        kafka.proxy.set_mode("drop_responses")
        lost = producer.send(topic, payload(4), stream="s0")
        with pytest.raises(DeliveryError, match="may still have written it"):
            lost.result(timeout=60)
        with pytest.raises(DeliveryError, match=r"1 event\(s\) failed"):
            producer.flush(30)
    finally:
        kafka.proxy.set_mode("pass")
        kafka.proxy.cut()
    # The broker did write it: a consumer sees the event, and its object resolves with the right bytes.
    items = [item for *_, item in _read_all(kafka.settings(), topic, f"g-{uuid.uuid4().hex[:8]}")]
    assert items == [0, 4]
    assert producer.send(topic, payload(8), stream="s0").result(60) is not None  # the producer recovers
    producer.close()
    everything = _read_all(kafka.settings(), topic, f"g-{uuid.uuid4().hex[:8]}")
    assert [item for *_, item in everything] == [0, 4, 8]
