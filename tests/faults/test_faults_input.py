"""Bad input: malformed and truncated records on a topic, oversized objects, wrong types, hostile store keys,
and a fuzz test of the event decoder. Each is a clear error, or a dead-letter record with its reason, and
the consumer goes on; the decoder raises nothing but `EventDecodeError` whatever bytes it is given.
"""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from fastavro import parse_schema, schemaless_reader
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.fixtures.faults import FULL
from tests.registry_cases import object_event_v2

from freight.config import FreightSettings
from freight.connectors.file import FileConnector
from freight.connectors.memory import MemoryConnector
from freight.errors import (
    ConfigError,
    DeliveryError,
    EventDecodeError,
    InvalidKeyError,
    PickleDisabledError,
    SerializationError,
)
from freight.kafka import KafkaAdmin, consumer_config, producer_config
from freight.schemas import STORE_CONFIG, schema_dict
from freight.schemas.events import InlinePayload, ObjectEvent, ObjectRef
from freight.schemas.serde import EventSerde, header
from freight.stores import Store
from freight.stream import StreamConsumer, StreamProducer

EXAMPLES = 2000 if FULL else 200


def _event(i: int, **extra: Any) -> ObjectEvent:
    return ObjectEvent(stream="s0", sequence=i, producer_id="bad-input", **extra)


def _garbage(serde: EventSerde, topic: str) -> list[tuple[str, bytes | None]]:
    """Records that are not Freight events, each with what is wrong with it."""
    good = serde.encode(topic, _event(99, object=ObjectRef("st", "k/1", 10, "bytes", None)))
    record = {"name": "x", "connector": "file", "options": "{}", "checksum": None, "updated_at": 0}
    other = serde.encode_record(f"{topic}-other", STORE_CONFIG, record)  # a valid record of another schema
    return [
        ("wrong magic byte", b"\x01" + os.urandom(30)),
        ("JSON text", b'{"stream": "s0", "sequence": 1}'),
        ("too short", b"\x00\x00"),
        ("unknown schema id", b"\x00" + (2**31 - 7).to_bytes(4, "big") + b"\x02s0"),
        ("truncated event", good[: len(good) // 2]),
        ("garbage body", good[:5] + os.urandom(40)),
        ("trailing bytes", good + b"\x00\x07"),
        ("another record type", other),
        ("no value (tombstone)", None),
    ]


def test_bad_records_raise_skip_or_go_to_the_dead_letter_topic_and_the_consumer_goes_on(
    stream_settings: FreightSettings,
    make_topic: Callable[..., str],
    make_producer: Callable[..., Any],
    group_id: str,
) -> None:
    topic = make_topic()
    producer = make_producer(inline_threshold=1 << 20)
    raw = Producer(producer_config(stream_settings))
    bad = _garbage(producer.serde, topic)
    for i, (_what, value) in enumerate(bad):  # a good event, a bad record, a good event, ...
        producer.send(topic, f"good-{i}".encode(), stream="s0").result(30)
        raw.produce(topic, key=b"s0", value=value)
        assert raw.flush(30) == 0
    producer.send(topic, f"good-{len(bad)}".encode(), stream="s0").result(30)
    goods = [f"good-{i}".encode() for i in range(len(bad) + 1)]
    bad_offsets = [2 * i + 1 for i in range(len(bad))]

    # raise: every bad record is an EventDecodeError naming where it is; the next call goes on past it.
    items: list[bytes] = []
    errors: list[str] = []
    with StreamConsumer(topic, None, settings=stream_settings, until_high_watermark=True) as consumer:
        it = consumer.iter_objects()
        while True:
            try:
                items.append(bytes(next(it)))
            except EventDecodeError as exc:
                errors.append(str(exc))
            except StopIteration:
                break
    assert items == goods
    assert len(errors) == len(bad)
    for message, offset in zip(errors, bad_offsets, strict=True):
        assert f"(topic '{topic}' partition 0 offset {offset})" in message, message
        assert "moves past it on the next call" in message

    # skip: counted, logged, and the group commits past them.
    with StreamConsumer(
        topic, group_id, settings=stream_settings, until_high_watermark=True, on_bad_event="skip"
    ) as consumer:
        assert [bytes(o) for o in consumer.iter_objects()] == goods
        assert consumer.stats.bad_events == len(bad)
        consumer.commit()
    assert KafkaAdmin(stream_settings).committed(group_id, topic) == {(topic, 0): 2 * len(bad) + 1}

    # dead-letter: each bad record goes, unchanged, to the dead-letter topic with the reason and its origin.
    dlq = f"{topic}.dlq"
    with StreamConsumer(
        topic,
        f"{group_id}-dlq",
        settings=stream_settings,
        until_high_watermark=True,
        on_bad_event="dead-letter",
        dead_letter_topic=dlq,
    ) as consumer:
        assert [bytes(o) for o in consumer.iter_objects()] == goods
        assert consumer.stats.dead_lettered == len(bad)
    letters = _read_raw(stream_settings, dlq, len(bad))
    for (what, value), offset, (got, headers) in zip(bad, bad_offsets, letters, strict=True):
        assert got == value, what
        assert headers["freight.source.topic"] == topic.encode()
        assert headers["freight.source.offset"] == str(offset).encode()
        assert headers["freight.error"], f"{what}: no reason"
    reasons = [h["freight.error"].decode() for _v, h in letters]
    assert "not the magic byte 0x00" in reasons[0] and "too short" in reasons[2]
    assert "which the registry" in reasons[3] and "does not know" in reasons[3]
    assert "truncated or corrupt" in reasons[4] and "after its Avro body" in reasons[6]
    assert "not a freight.v1.ObjectEvent" in reasons[7] and "tombstone" in reasons[8]


def _read_raw(settings: FreightSettings, topic: str, n: int) -> list[tuple[bytes | None, dict[str, bytes]]]:
    consumer = Consumer(
        consumer_config(settings, f"raw-{uuid.uuid4().hex[:8]}", {"enable.auto.commit": False})
    )
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    out: list[tuple[bytes | None, dict[str, bytes]]] = []
    try:
        for _ in range(120):
            for msg in consumer.consume(n, timeout=0.5):
                if msg.error() is None:
                    out.append((msg.value(), {k: v for k, v in msg.headers() or []}))
            if len(out) >= n:
                break
    finally:
        consumer.close()
    assert len(out) == n
    return out


def test_oversized_objects_and_wrong_types_are_clear_errors_that_leave_nothing_behind(
    stream_settings: FreightSettings, make_topic: Callable[..., str], file_store: Any
) -> None:
    topic = make_topic()
    tiny = make_topic(config={"max.message.bytes": "2000"})
    producer = StreamProducer({None: file_store}, settings=stream_settings, inline_threshold=1 << 30)
    try:
        # Above the producer's message.max.bytes: refused before anything is sent.
        with pytest.raises(DeliveryError, match=r"more than the producer's message\.max\.bytes") as caught:
            producer.send(topic, os.urandom(70 << 20))
        assert "lower the inline threshold" in str(caught.value)
        # Above the topic's limit: the broker refuses it, the send's result says so and why.
        refused = producer.send(tiny, os.urandom(3000))
        with pytest.raises(DeliveryError, match=r"the broker refused it .*MSG_SIZE_TOO_LARGE") as caught:
            refused.result(60)
        assert "raise the topic's max.message.bytes" in str(caught.value)
        with pytest.raises(DeliveryError, match=r"1 event\(s\) failed"):
            producer.flush(30)
        # Wrong types: refused before anything is stored or sent, saying what to do.
        with pytest.raises(PickleDisabledError, match="FREIGHT_ALLOW_PICKLE=1 or allow_pickle=True"):
            producer.send(topic, object())
        with pytest.raises(SerializationError, match="object"):
            producer.send(topic, np.array([object(), 1], dtype=object))
        with pytest.raises(ConfigError, match="stream id must be a string, got int"):
            producer.send(topic, b"x" * 10_000, stream=5)  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match="topic must be a non-empty string"):
            producer.send(None, b"x")  # type: ignore[arg-type]
        stored = StreamProducer({None: file_store}, settings=stream_settings, inline_threshold=0)
        with pytest.raises(SerializationError, match="does not fit its schema"):
            stored.send(topic, b"x" * 10_000, stream="\udc80")  # not encodable: caught after the store write
        stored.close()
    finally:
        producer.close()
    assert KafkaAdmin(stream_settings).watermarks(topic) == {0: (0, 0)}  # nothing produced
    assert list(file_store.connector.list()) == []  # and nothing left in the store


HOSTILE_KEYS: list[Any] = [
    "../escape",
    "a/../../escape",
    "/etc/passwd",
    "a\x00b",
    "a//b",
    ".",
    "..",
    "a/./b",
    "C:evil",
    "a\\..\\b",
    "x" * 600,
    "ü/ok",
    "a b",
    "tmp~1",
    "",
    5,
]


@pytest.fixture
def boxed(tmp_path: Path) -> Iterator[tuple[Path, Store]]:
    """A file store inside a box directory, and the box (to check that nothing appears outside the store)."""
    box = tmp_path / "box"
    store = Store(f"box-{uuid.uuid4().hex[:8]}", FileConnector(box / "store"))
    (box / "outside").mkdir()
    yield box, store
    store.close()


def _tree(path: Path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*")}


def test_hostile_store_keys_are_refused_and_nothing_is_written_outside(boxed: tuple[Path, Store]) -> None:
    box, store = boxed
    before = _tree(box)
    memory = Store(f"mem-{uuid.uuid4().hex[:8]}", MemoryConnector(f"m-{uuid.uuid4().hex[:8]}"))
    calls: list[Callable[[Store, Any], Any]] = [
        lambda s, k: s.put(b"payload" * 1000, key=k),
        lambda s, k: s.get(k),
        lambda s, k: s.evict(k),
        lambda s, k: s.exists(k),
        lambda s, k: s.connector.put(k, b"raw"),
        lambda s, k: s.connector.get(k),
    ]
    for key in HOSTILE_KEYS:
        for target in (store, memory):
            for call in calls:
                with pytest.raises(InvalidKeyError, match="store key"):
                    call(target, key)
    assert _tree(box) == before


def test_an_event_naming_a_hostile_key_never_reads_outside_the_store(
    stream_settings: FreightSettings, make_topic: Callable[..., str], boxed: tuple[Path, Store]
) -> None:
    box, store = boxed
    # A valid Freight object outside the store, where "../outside/secret" would lead.
    Store("elsewhere", FileConnector(box)).put(b"not yours" * 1000, key="outside/secret")
    topic = make_topic()
    serde = EventSerde(stream_settings.schema_registry_url)
    raw = Producer(producer_config(stream_settings))
    for key in ("../outside/secret", "/etc/passwd", "a/../../outside/secret"):
        ref = ObjectRef(store.name, key, 9000, "bytes", None)
        raw.produce(topic, key=b"s0", value=serde.encode(topic, _event(0, object=ref)))
    assert raw.flush(30) == 0
    with StreamConsumer(
        topic, None, settings=stream_settings, stores=[store], until_high_watermark=True
    ) as consumer:
        it = consumer.iter_objects()
        for _ in range(3):
            with pytest.raises(InvalidKeyError, match="store key"):
                next(it)
        with pytest.raises(StopIteration):
            next(it)


# -- fuzzing the event decoder ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_serde(registry_url: str) -> Iterator[tuple[EventSerde, str, int, int]]:
    """A serde with the v1 event schema (and an evolved v2 writer schema) registered on a fuzz topic."""
    serde = EventSerde(registry_url)
    topic = f"fuzz-{uuid.uuid4().hex[:8]}"
    v1 = serde.schema_id(topic)
    v2_record = {**_event(0, inline=None, object=ObjectRef("s", "k", 1, "bytes")).to_avro(), "priority": 1}
    v2_record["trace_id"] = None
    v2 = EventSerde.peek_schema_id(serde.encode_with_schema(topic, object_event_v2(), v2_record))
    assert v2 is not None and v2 != v1
    yield serde, topic, v1, v2
    serde.close()


V1_SCHEMA = parse_schema(schema_dict("object_event"))


def _decode(serde: EventSerde, topic: str, data: bytes) -> ObjectEvent | None:
    """The event, or None for the documented EventDecodeError; anything else fails the test."""
    try:
        event = serde.decode(topic, data)
    except EventDecodeError:
        return None
    assert isinstance(event, ObjectEvent)
    longs = [event.sequence, event.created_at, *(event.descriptor.shape if event.descriptor else ())]
    if event.object is not None:
        longs.append(event.object.size)
    assert all(-(2**63) <= n < 2**63 for n in longs), f"an Avro long out of range was accepted: {event}"
    return event


_fuzz = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))


@_fuzz
@given(data=st.binary(max_size=400))
def test_fuzz_random_bytes_give_only_event_decode_errors(
    fuzz_serde: tuple[EventSerde, str, int, int], data: bytes
) -> None:
    serde, topic, _v1, _v2 = fuzz_serde
    _decode(serde, topic, data)


@_fuzz
@given(version=st.sampled_from(["v1", "v2"]), body=st.binary(max_size=400))
def test_fuzz_valid_header_and_random_body(
    fuzz_serde: tuple[EventSerde, str, int, int], version: str, body: bytes
) -> None:
    serde, topic, v1, v2 = fuzz_serde
    _decode(serde, topic, header(v1 if version == "v1" else v2) + body)


@_fuzz
@given(
    sequence=st.integers(min_value=0, max_value=2**40),
    payload=st.binary(max_size=64),
    meta=st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3),
    flips=st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), min_size=1, max_size=4),
    cut=st.integers(min_value=0),
)
def test_fuzz_mutated_events_decode_like_fastavro_or_raise_event_decode_error(
    fuzz_serde: tuple[EventSerde, str, int, int],
    sequence: int,
    payload: bytes,
    meta: dict[str, str],
    flips: list[tuple[int, int]],
    cut: int,
) -> None:

    serde, topic, _v1, _v2 = fuzz_serde
    value = bytearray(
        serde.encode(topic, _event(sequence, inline=InlinePayload(payload, "bytes"), metadata=meta))
    )
    for at, byte in flips:
        value[5 + at % (len(value) - 5)] = byte  # mutate the body, keep the header
    data = bytes(value[: max(5, len(value) - cut % 8)])
    event = _decode(serde, topic, data)
    if event is not None:  # accepted: then the reference decoder reads the same event from these bytes
        body = io.BytesIO(data[5:])
        reference = ObjectEvent.from_avro(schemaless_reader(body, V1_SCHEMA, None))
        assert body.tell() == len(data) - 5 and reference == event


def test_fuzz_the_confluent_codec_too(
    fuzz_serde: tuple[EventSerde, str, int, int], registry_url: str
) -> None:
    _serde, topic, v1, _v2 = fuzz_serde
    slow = EventSerde(registry_url, fast=False)

    @settings(max_examples=EXAMPLES // 4, deadline=None, suppress_health_check=list(HealthCheck))
    @given(body=st.binary(max_size=200))
    def check(body: bytes) -> None:
        _decode(slow, topic, header(v1) + body)

    check()
    slow.close()


def test_decoder_cases_the_fuzzing_found(fuzz_serde: tuple[EventSerde, str, int, int]) -> None:
    serde, topic, v1, _v2 = fuzz_serde
    good = serde.encode(topic, _event(1, inline=InlinePayload(b"x", "bytes")))
    body = good[5:]
    stream_end = 1 + body[0] // 2  # the length byte (zigzag) and the stream id "s0"
    sequence_end = stream_end + 1  # sequence 1: one byte
    branch_at = sequence_end + 1  # after the kind enum: the `object` union branch (0 = null)
    assert body[branch_at] == 0
    # A 10-byte varint whose bits run past 64 is not an Avro long: refused, never a sequence > 2**63.
    overflowing = b"\xc2\x80\xf0\x90\x80\x80\x80\x80\x80\x02"
    assert _decode(serde, topic, header(v1) + body[:stream_end] + overflowing + body[sequence_end:]) is None
    # A union branch written in two bytes (0x80 0x00 is a valid, non-canonical 0): read on after both
    # bytes, as fastavro does, instead of misreading the second byte as the next field.
    stretched = header(v1) + body[:branch_at] + b"\x80\x00" + body[branch_at + 1 :]
    event = _decode(serde, topic, stretched)
    reference = ObjectEvent.from_avro(schemaless_reader(io.BytesIO(stretched[5:]), V1_SCHEMA, None))
    assert event == reference == serde.decode(topic, good)
