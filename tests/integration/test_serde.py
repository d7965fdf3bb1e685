"""EventSerde against the real registry and broker: wire format, interop, caching, errors, evolution."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from tests.registry_cases import object_event_v2

from freight.config import FreightSettings
from freight.dev.procs import free_port
from freight.errors import EventDecodeError, SchemaError, ServiceUnavailableError
from freight.kafka import consumer_config, producer_config
from freight.schemas import (
    ArrayDescriptor,
    EventKind,
    InlinePayload,
    ObjectEvent,
    ObjectRef,
    schema_dict,
    schema_text,
)
from freight.schemas.serde import EventSerde

EVENTS = [
    ObjectEvent(
        stream="s1",
        sequence=0,
        producer_id="p1",
        object=ObjectRef("files", "s1/0", 1 << 20, "numpy", "xxh3_64:0123456789abcdef"),
        descriptor=ArrayDescriptor("<f8", (128, 1024)),
        metadata={"run": "7"},
        created_at=1_700_000_000_123,
    ),
    ObjectEvent(stream="s1", sequence=1, producer_id="p1", inline=InlinePayload(b"\x00tiny", "bytes")),
    ObjectEvent(stream="s1", sequence=2, producer_id="p1", kind=EventKind.END_OF_STREAM),
]


@pytest.fixture
def serde(registry_url: str) -> Iterator[EventSerde]:
    with EventSerde(registry_url) as s:
        yield s


@pytest.fixture
def value_topic(request: pytest.FixtureRequest) -> str:
    return f"serde-{request.node.name[:40]}-{time.monotonic_ns()}"


def ctx(topic: str) -> SerializationContext:
    return SerializationContext(topic, MessageField.VALUE)


def test_bytes_are_identical_to_confluents_serializer_and_read_both_ways(
    serde: EventSerde, registry_url: str, value_topic: str
) -> None:
    client = SchemaRegistryClient({"url": registry_url})
    confluent_ser = AvroSerializer(client, schema_text("object_event"))
    confluent_de = AvroDeserializer(client)
    reference = EventSerde(registry_url, fast=False)
    for event in EVENTS:
        ours = serde.encode(value_topic, event)
        theirs = confluent_ser(event.to_avro(), ctx(value_topic))
        assert ours == theirs
        assert reference.encode(value_topic, event) == ours
        assert ours[0] == 0 and int.from_bytes(ours[1:5], "big") == serde.schema_id(value_topic)
        assert ObjectEvent.from_avro(confluent_de(ours, ctx(value_topic))) == event
        assert serde.decode(value_topic, theirs) == event
        assert reference.decode(value_topic, ours) == event


def test_store_config_records_round_trip(serde: EventSerde, value_topic: str) -> None:
    record = {"name": "files", "connector": "file", "options": '{"root": "/data"}', "checksum": None}
    value = serde.encode_record(value_topic, "store_config", {**record, "updated_at": 1_700_000_000_000})
    decoded = serde.decode_record(value_topic, value)
    assert {k: decoded[k] for k in record} == record
    assert decoded["updated_at"].timestamp() == 1_700_000_000


def test_schema_ids_are_cached_no_registry_call_per_event(serde: EventSerde, value_topic: str) -> None:
    requests: list[str] = []
    for s in (serde, fresh := EventSerde(serde.registry_url)):
        s.client._rest_client.session.event_hooks["request"].append(lambda r: requests.append(str(r.url)))
    value = serde.encode(value_topic, EVENTS[0])  # registers the schema
    fresh.decode(value_topic, value)  # fetches the writer schema by id
    warm = len(requests)
    assert 1 <= warm <= 2
    for _ in range(500):
        assert serde.decode(value_topic, serde.encode(value_topic, EVENTS[0])) == EVENTS[0]
        assert fresh.decode(value_topic, value) == EVENTS[0]
    # At most one more call (a first decode may fetch the writer schema by id); never one per event.
    assert len(requests) <= warm + 1, requests


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda good: b"", "too short"),
        (lambda good: good[:3], "too short"),
        (lambda good: b'{"stream": "s1"}', "magic byte"),
        (lambda good: b"\x01" + good[1:], "magic byte"),
        (lambda good: b"\x00\x7f\xff\xff\xf0" + good[5:], "does not know"),
        (lambda good: good[:-7], "truncated or corrupt"),
        (lambda good: good + b"\x00\x01", "after its Avro body"),
    ],
)
def test_bad_values_raise_event_decode_errors_that_say_why(
    serde: EventSerde, value_topic: str, make: Callable[[bytes], bytes], expected: str
) -> None:
    good = serde.encode(value_topic, EVENTS[0])
    with pytest.raises(EventDecodeError, match=expected) as info:
        serde.decode(value_topic, make(good))
    assert value_topic in str(info.value)


def test_a_record_of_another_schema_is_not_an_event(serde: EventSerde, value_topic: str) -> None:
    other = serde.encode_with_schema(value_topic, '{"type":"record","name":"Other","fields":[]}', {})
    with pytest.raises(EventDecodeError, match=r"not a freight\.v1\.ObjectEvent"):
        serde.decode(value_topic, other)


def test_an_unreachable_registry_is_a_service_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    client = SchemaRegistryClient({"url": url, "max.retries": 0})
    serde = EventSerde(url, client=client)
    with pytest.raises(ServiceUnavailableError, match="freight dev up"):
        serde.encode("t", EVENTS[0])
    with pytest.raises(ServiceUnavailableError, match=url):
        serde.decode("t", b"\x00\x00\x00\x00\x01\x02")


def _v2_record(event: ObjectEvent, trace: str) -> dict[str, Any]:
    return {**event.to_avro(), "trace_id": trace, "priority": 5}


def _consume_all(settings: FreightSettings, topic: str, n: int) -> list[bytes]:
    consumer = Consumer(consumer_config(settings, f"serde-{topic}", {"enable.auto.commit": False}))
    consumer.assign([TopicPartition(topic, 0, 0)])
    values: list[bytes] = []
    deadline = time.monotonic() + 30
    try:
        while len(values) < n and time.monotonic() < deadline:
            for msg in consumer.consume(n, timeout=0.5):
                assert msg.error() is None, msg.error()
                values.append(msg.value())
    finally:
        consumer.close()
    assert len(values) == n
    return values


def test_backward_evolution_end_to_end_through_kafka(
    serde: EventSerde, settings: FreightSettings, topic: str, registry_url: str
) -> None:
    """v1 and v2 producers share a topic; v1 and v2 consumers both read every record."""
    v1_events = [EVENTS[0], EVENTS[1]]
    values = [serde.encode(topic, e) for e in v1_events]
    v2_producer = EventSerde(registry_url)
    values += [
        v2_producer.encode_with_schema(topic, object_event_v2(), _v2_record(e, f"t{i}"))
        for i, e in enumerate(EVENTS)
    ]
    producer = Producer(producer_config(settings))
    for value in values:
        producer.produce(topic, key=b"s1", value=value)
    assert producer.flush(30) == 0

    consumed = _consume_all(settings, topic, len(values))
    reader = EventSerde(registry_url)
    v1_text, v2_text = schema_text("object_event"), object_event_v2()
    v1_fields = {f["name"] for f in schema_dict("object_event")["fields"]}
    # The platform's event decoder reads both versions.
    assert [reader.decode(topic, v) for v in consumed] == [*v1_events, *EVENTS]
    # A v1 reader sees v2 data without the new fields.
    assert all(set(reader.decode_record(topic, v, reader_schema=v1_text)) == v1_fields for v in consumed)
    # A v2 reader sees v1 data with the new fields' defaults.
    as_v2 = [reader.decode_record(topic, v, reader_schema=v2_text) for v in consumed]
    assert [(r["trace_id"], r["priority"]) for r in as_v2] == [
        (None, 0),
        (None, 0),
        ("t0", 5),
        ("t1", 5),
        ("t2", 5),
    ]

    versions = httpx.get(f"{registry_url}/subjects/{topic}-value/versions").json()
    assert versions == [1, 2]
    broken = json.loads(v2_text)
    broken["fields"].append({"name": "tenant", "type": "string"})
    with pytest.raises(SchemaError, match="incompatible"):
        v2_producer.encode_with_schema(
            topic, json.dumps(broken), {**_v2_record(EVENTS[0], "x"), "tenant": "a"}
        )
