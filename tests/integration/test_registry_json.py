"""JSON Schema (`schemaType: JSON`) on the real registry and broker.

Registration, lookup and ids through confluent-kafka's own client; compatibility verdicts and errors through
REST; references by name; and confluent-kafka's `JSONSerializer` / `JSONDeserializer` producing and
consuming real records against Freight's registry, unchanged.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import Schema, SchemaReference, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
from confluent_kafka.serialization import MessageField, SerializationContext, SerializationError

from freight.config import FreightSettings
from freight.kafka import consumer_config, producer_config

ORDER_V1 = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "Order",
    "type": "object",
    "properties": {"id": {"type": "integer"}, "item": {"type": "string"}},
    "required": ["id", "item"],
    "additionalProperties": False,
}
# v2 adds an optional property to the closed model: BACKWARD compatible, not FORWARD.
ORDER_V2 = {**ORDER_V1, "properties": {**ORDER_V1["properties"], "note": {"type": "string"}}}
# Breaks BACKWARD: a property the old data never had becomes required.
ORDER_BAD = {**ORDER_V2, "required": ["id", "item", "note"]}


def js(doc: Any, refs: list[SchemaReference] | None = None) -> Schema:
    return Schema(json.dumps(doc), "JSON", refs or [])


def test_register_lookup_evolve_and_reject(
    registry_client: SchemaRegistryClient, registry_url: str, subject: str
) -> None:
    client = registry_client
    id1 = client.register_schema(subject, js(ORDER_V1))
    # Key order and whitespace do not make a new schema.
    assert (
        client.register_schema(subject, Schema(json.dumps(ORDER_V1, indent=4, sort_keys=True), "JSON")) == id1
    )
    latest = client.get_latest_version(subject)
    assert latest.schema.schema_type == "JSON" and json.loads(latest.schema.schema_str) == ORDER_V1
    assert client.lookup_schema(subject, js(ORDER_V1)).schema_id == id1

    id2 = client.register_schema(subject, js(ORDER_V2))
    assert id2 != id1 and client.get_versions(subject) == [1, 2]
    with pytest.raises(SchemaRegistryError) as info:
        client.register_schema(subject, js(ORDER_BAD))
    assert (info.value.http_status_code, info.value.error_code) == (409, 409)
    assert "note" in info.value.error_message and "required" in info.value.error_message

    checks = {
        level: httpx.post(
            f"{registry_url}/compatibility/subjects/{subject}/versions/1?verbose=true",
            json={"schemaType": "JSON", "schema": json.dumps(ORDER_V2)},
            timeout=30,
        ).json()["is_compatible"]
        for level in ("BACKWARD", "FORWARD", "FULL")
        if httpx.put(f"{registry_url}/config/{subject}", json={"compatibility": level}, timeout=30).is_success
    }
    assert checks == {"BACKWARD": True, "FORWARD": False, "FULL": False}

    types = httpx.get(f"{registry_url}/schemas/types", timeout=30).json()
    assert "JSON" in types and "AVRO" in types
    by_id = httpx.get(f"{registry_url}/schemas/ids/{id2}", timeout=30).json()
    assert by_id["schemaType"] == "JSON"


def test_invalid_json_schemas_and_type_changes_are_clear_errors(registry_url: str, subject: str) -> None:
    bad = httpx.post(
        f"{registry_url}/subjects/{subject}/versions",
        json={"schemaType": "JSON", "schema": json.dumps({"type": "strin"})},
        timeout=30,
    )
    assert bad.status_code == 422 and bad.json()["error_code"] == 42201
    assert "not a valid JSON Schema" in bad.json()["message"]
    ok = httpx.post(
        f"{registry_url}/subjects/{subject}/versions",
        json={"schemaType": "JSON", "schema": json.dumps(ORDER_V1)},
        timeout=30,
    )
    assert ok.status_code == 200, ok.text
    avro = httpx.post(
        f"{registry_url}/subjects/{subject}/versions",
        json={"schema": json.dumps({"type": "record", "name": "R", "fields": []})},
        timeout=30,
    )
    assert avro.status_code == 409 and "schema type cannot change" in avro.json()["message"]
    unknown = httpx.post(
        f"{registry_url}/subjects/{subject}/versions",
        json={"schemaType": "XML", "schema": "<a/>"},
        timeout=30,
    )
    assert unknown.status_code == 422 and "AVRO, JSON" in unknown.json()["message"]


def test_references_by_name(registry_client: SchemaRegistryClient, subject: str) -> None:
    address = {"type": "object", "properties": {"street": {"type": "string"}}, "required": ["street"]}
    address_subject = subject.replace("-value", "-address")
    registry_client.register_schema(address_subject, js(address))
    customer = {"type": "object", "properties": {"home": {"$ref": "address.json"}}}
    ref = SchemaReference("address.json", address_subject, 1)
    schema_id = registry_client.register_schema(subject, js(customer, [ref]))
    fetched = registry_client.get_schema(schema_id)
    assert [r.name for r in fetched.references] == ["address.json"]
    with pytest.raises(SchemaRegistryError) as info:
        registry_client.register_schema(
            subject + "-x", js(customer, [SchemaReference("address.json", "nope", 1)])
        )
    assert info.value.error_code == 42201


def test_confluent_json_serializer_and_deserializer_round_trip(
    registry_client: SchemaRegistryClient, settings: FreightSettings, make_topic: Any, group_id: str
) -> None:
    topic = make_topic(partitions=1)
    serializer = JSONSerializer(json.dumps(ORDER_V1), registry_client)
    deserializer = JSONDeserializer(json.dumps(ORDER_V1), schema_registry_client=registry_client)
    ctx = SerializationContext(topic, MessageField.VALUE)
    orders = [{"id": i, "item": f"widget-{i}"} for i in range(5)]
    producer = Producer(producer_config(settings))
    for order in orders:
        producer.produce(topic, value=serializer(order, ctx))
    assert producer.flush(30) == 0
    with pytest.raises(SerializationError):  # the serializer validates against the registered schema
        serializer({"id": "not an int", "item": "x"}, ctx)

    consumer = Consumer(consumer_config(settings, group_id, {"auto.offset.reset": "earliest"}))
    consumer.subscribe([topic])
    got = []
    try:
        while len(got) < len(orders):
            msg = consumer.poll(10)
            assert msg is not None, f"only {len(got)} records arrived"
            if msg.error() is None:
                got.append(deserializer(msg.value(), ctx))
    finally:
        consumer.close()
    assert got == orders
    # The serializer registered the schema under the topic's value subject, as JSON.
    latest = registry_client.get_latest_version(f"{topic}-value")
    assert latest.schema.schema_type == "JSON"
