"""Protobuf (`schemaType: PROTOBUF`) on the real registry and broker.

confluent-kafka's `ProtobufSerializer` / `ProtobufDeserializer`, unchanged, produce and consume real records
through Freight's registry: the serializer registers a message whose .proto imports another one (it
registers the import first, under a subject named by its import path, which holds '/') and a well-known
type; the deserializer fetches the writer's schema and its references as base64 descriptors
(`format=serialized`). The 7 compatibility levels and the errors are checked through REST. The message
classes are generated at test time by protoc (grpcio-tools) from .proto files in tmp_path.
"""

from __future__ import annotations

import base64
import importlib
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import quote

import grpc_tools
import httpx
import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from google.protobuf import descriptor_pb2
from grpc_tools import protoc

from freight.config import FreightSettings
from freight.kafka import consumer_config, producer_config

ADDRESS = """syntax = "proto3";
package {pkg}.common;
message Address {{
  string street = 1;
  string city = 2;
}}
"""
ORDER = """syntax = "proto3";
package {pkg}.shop;
import "{root}/common/address.proto";
import "google/protobuf/timestamp.proto";
message Order {{
  int64 id = 1;
  string item = 2;
  {pkg}.common.Address ship_to = 3;
  google.protobuf.Timestamp at = 4;
  map<string, string> labels = 5;
}}
"""


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, ModuleType]]:
    """(the import root, the generated order module): order.proto imports common/address.proto, both
    compiled by protoc into _pb2 modules under a root unique to this run."""
    root = f"freighttest{uuid.uuid4().hex[:8]}"
    base = tmp_path_factory.mktemp("protos")
    (base / root / "common").mkdir(parents=True)
    (base / root / "shop").mkdir(parents=True)
    (base / root / "common" / "address.proto").write_text(ADDRESS.format(pkg=root))
    (base / root / "shop" / "order.proto").write_text(ORDER.format(pkg=root, root=root))
    wkt = Path(grpc_tools.__file__).parent / "_proto"
    code = protoc.main(
        [
            "protoc",
            f"-I{base}",
            f"-I{wkt}",
            f"--python_out={base}",
            f"{root}/common/address.proto",
            f"{root}/shop/order.proto",
        ]
    )
    assert code == 0
    sys.path.insert(0, str(base))
    try:
        yield root, importlib.import_module(f"{root}.shop.order_pb2")
    finally:
        sys.path.remove(str(base))


def proto(text: str) -> dict[str, Any]:
    return {"schemaType": "PROTOBUF", "schema": text}


def test_confluent_protobuf_serde_round_trip_with_an_import(
    registry_client: SchemaRegistryClient,
    registry_url: str,
    settings: FreightSettings,
    make_topic: Any,
    group_id: str,
    generated: tuple[str, ModuleType],
) -> None:
    root, order_pb2 = generated
    topic = make_topic(partitions=1)
    serializer = ProtobufSerializer(order_pb2.Order, registry_client)
    deserializer = ProtobufDeserializer(order_pb2.Order, {}, schema_registry_client=registry_client)
    ctx = SerializationContext(topic, MessageField.VALUE)
    orders = []
    for i in range(5):
        order = order_pb2.Order(id=i, item=f"widget-{i}", labels={"n": str(i)})
        order.ship_to.street, order.ship_to.city = f"{i} Main St", "Springfield"
        order.at.seconds = 1_700_000_000 + i
        orders.append(order)
    producer = Producer(producer_config(settings))
    for order in orders:
        producer.produce(topic, value=serializer(order, ctx))
    assert producer.flush(30) == 0

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
    # Pinned to the latest registered version (both sides fetch it with format=serialized).
    latest_serializer = ProtobufSerializer(
        order_pb2.Order, registry_client, {"auto.register.schemas": False, "use.latest.version": True}
    )
    latest_deserializer = ProtobufDeserializer(
        order_pb2.Order, {"use.latest.version": True}, schema_registry_client=registry_client
    )
    assert latest_deserializer(latest_serializer(orders[1], ctx), ctx) == orders[1]

    # The import was registered first, under a subject named by its import path ('/' in it), and the
    # order's version references it by that path; the well-known import needs no reference.
    dep_subject = f"{root}/common/address.proto"
    latest = registry_client.get_latest_version(f"{topic}-value")
    assert latest.schema.schema_type == "PROTOBUF"
    assert [(r.name, r.subject, r.version) for r in latest.schema.references] == [
        (dep_subject, dep_subject, 1)
    ]
    # Served as .proto text by default (the serializer sent base64), as base64 on format=serialized.
    by_id = httpx.get(f"{registry_url}/schemas/ids/{latest.schema_id}", timeout=30).json()
    assert by_id["schemaType"] == "PROTOBUF"
    assert by_id["schema"].startswith('syntax = "proto3";') and "message Order {" in by_id["schema"]
    serialized = httpx.get(
        f"{registry_url}/schemas/ids/{latest.schema_id}", params={"format": "serialized"}, timeout=30
    ).json()["schema"]
    file = descriptor_pb2.FileDescriptorProto.FromString(base64.b64decode(serialized))
    assert [m.name for m in file.message_type] == ["Order"]
    assert list(file.dependency) == [dep_subject, "google/protobuf/timestamp.proto"]
    dep = httpx.get(
        f"{registry_url}/subjects/{quote(dep_subject, safe='')}/versions/1",
        params={"format": "serialized"},
        timeout=30,
    ).json()
    dep_file = descriptor_pb2.FileDescriptorProto.FromString(base64.b64decode(dep["schema"]))
    assert [m.name for m in dep_file.message_type] == ["Address"]
    # The same schema written as .proto text is the same schema: same id.
    text = ORDER.format(pkg=root, root=root)
    again = httpx.post(
        f"{registry_url}/subjects/{topic}-value",
        json={**proto(text), "references": [{"name": dep_subject, "subject": dep_subject, "version": 1}]},
        timeout=30,
    )
    assert again.status_code == 200, again.text
    assert again.json()["id"] == latest.schema_id


V1 = 'syntax = "proto3";\npackage lv;\nmessage M { int32 a = 1; }\nmessage N { string n = 1; }\n'
V2 = 'syntax = "proto3";\npackage lv;\nmessage M { int64 a = 1; }\nmessage P { string p = 1; }\n'
V3 = (
    'syntax = "proto3";\npackage lv;\nmessage M { int64 a = 1; string b = 2; }\nmessage P { string p = 1; }\n'
)
# Against v2 alone every level accepts V3; against v1 too, N missing breaks BACKWARD and P new breaks FORWARD.
EXPECTED = {
    "NONE": True,
    "BACKWARD": True,
    "BACKWARD_TRANSITIVE": False,
    "FORWARD": True,
    "FORWARD_TRANSITIVE": False,
    "FULL": True,
    "FULL_TRANSITIVE": False,
}


def test_the_seven_levels_through_rest(registry_url: str, subject: str) -> None:
    base = registry_url
    assert httpx.put(f"{base}/config/{subject}", json={"compatibility": "NONE"}, timeout=30).is_success
    for text in (V1, V2):
        registered = httpx.post(f"{base}/subjects/{subject}/versions", json=proto(text), timeout=30)
        assert registered.status_code == 200, registered.text
    verdicts = {}
    for level in EXPECTED:
        put = httpx.put(f"{base}/config/{subject}", json={"compatibility": level}, timeout=30)
        assert put.is_success, put.text
        answer = httpx.post(
            f"{base}/compatibility/subjects/{subject}/versions?verbose=true", json=proto(V3), timeout=30
        ).json()
        verdicts[level] = answer["is_compatible"]
        if level == "FULL_TRANSITIVE":
            reasons = " ".join(answer["messages"])
            assert "MESSAGE_REMOVED at #/N" in reasons and "MESSAGE_REMOVED at #/P" in reasons
    assert verdicts == EXPECTED

    # Registering follows the same verdicts: refused under FULL_TRANSITIVE, accepted under FULL.
    refused = httpx.post(f"{base}/subjects/{subject}/versions", json=proto(V3), timeout=30)
    assert refused.status_code == 409 and "MESSAGE_REMOVED" in refused.json()["message"]
    httpx.put(f"{base}/config/{subject}", json={"compatibility": "FULL"}, timeout=30)
    accepted = httpx.post(f"{base}/subjects/{subject}/versions", json=proto(V3), timeout=30)
    assert accepted.status_code == 200, accepted.text
    kind_change = V3.replace("int64 a = 1", "string a = 1")
    check = httpx.post(
        f"{base}/compatibility/subjects/{subject}/versions/latest?verbose=true",
        json=proto(kind_change),
        timeout=30,
    ).json()
    assert check["is_compatible"] is False
    assert (
        "FIELD_SCALAR_KIND_CHANGED at #/M/1: field 1 ('a') changed from int64 to string"
        in check["messages"][0]
    )


def test_invalid_protobuf_schemas_are_clear_errors(registry_url: str, subject: str) -> None:
    types = httpx.get(f"{registry_url}/schemas/types", timeout=30).json()
    assert types == ["AVRO", "JSON", "PROTOBUF"]
    bad = httpx.post(
        f"{registry_url}/subjects/{subject}/versions",
        json=proto('syntax = "proto3";\nmessage A { Missing m = 1; }'),
        timeout=30,
    )
    assert bad.status_code == 422 and bad.json()["error_code"] == 42201
    assert 'line 2, column 13: "Missing" is not defined' in bad.json()["message"]
    unresolved = httpx.post(
        f"{registry_url}/subjects/{subject}/versions",
        json=proto('syntax = "proto3";\nimport "not/registered.proto";\nmessage A { int32 a = 1; }'),
        timeout=30,
    )
    assert unresolved.status_code == 422 and "needs a reference" in unresolved.json()["message"]
    ok = httpx.post(f"{registry_url}/subjects/{subject}/versions", json=proto(V1), timeout=30)
    assert ok.status_code == 200, ok.text
    avro = httpx.post(
        f"{registry_url}/subjects/{subject}/versions",
        json={"schema": '{"type": "record", "name": "R", "fields": []}'},
        timeout=30,
    )
    assert avro.status_code == 409 and "schema type cannot change" in avro.json()["message"]
    # format=serialized leaves other types alone and gives Protobuf as base64.
    version = httpx.get(
        f"{registry_url}/subjects/{subject}/versions/1", params={"format": "serialized"}, timeout=30
    ).json()
    file = descriptor_pb2.FileDescriptorProto.FromString(base64.b64decode(version["schema"]))
    assert [m.name for m in file.message_type] == ["M", "N"] and file.package == "lv"
