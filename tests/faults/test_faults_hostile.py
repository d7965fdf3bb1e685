"""Hostile records (issue 13): what someone else writes into Freight's topics must not make a Freight process
read, write, delete or connect outside its own configuration, and one bad record must not stop the others.

Every hostile record here is written the way an attacker would: with a plain confluent-kafka producer (the
Avro encoding through the same registry, which anyone on the cluster can use). Victim processes are fresh
subprocesses configured only through their environment, as a deployment's workers are.
"""

from __future__ import annotations

import http.server
import json
import pickle
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from tests.fixtures.stream import child_env

from freight.config import FreightSettings
from freight.connectors.file import FileConnector
from freight.errors import StoreTrustError
from freight.eviction import Evictor, PolicyStore, RetentionPolicy
from freight.kafka import KafkaAdmin, consumer_config
from freight.schemas import STORE_CONFIG
from freight.schemas.events import ObjectEvent, ObjectRef
from freight.schemas.serde import EventSerde
from freight.stores import Store
from freight.stores.catalog import STORES_TOPIC, StoreCatalog
from freight.stores.config import StoreConfig
from freight.stream import StreamProducer
from freight.stream.proxy import Proxy, ProxyRef

pytestmark = pytest.mark.timeout(240)


def _write(settings: FreightSettings, topic: str, key: bytes, value: bytes | None) -> None:
    """Produce one raw record as an attacker would (no Freight code on the write path)."""
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    producer.produce(topic, key=key, value=value)
    assert producer.flush(30) == 0


def _hostile_store(settings: FreightSettings, name: str, connector: str, options: dict[str, Any]) -> None:
    """A store config in the catalog topic, written raw."""
    KafkaAdmin(settings).create_internal_topic(STORES_TOPIC, config={"cleanup.policy": "compact"})
    record = StoreConfig.model_construct(name=name, connector=connector, options=options, checksum=None)
    value = EventSerde.from_settings(settings).encode_record(STORES_TOPIC, STORE_CONFIG, record.to_avro())
    _write(settings, STORES_TOPIC, name.encode(), value)


def _hostile_event(settings: FreightSettings, topic: str, store: str, key: str, **ref: Any) -> None:
    event = ObjectEvent(
        stream="s", sequence=0, producer_id="attacker", object=ObjectRef(store, key, 10, "bytes", **ref)
    )
    _write(settings, topic, b"s", EventSerde.from_settings(settings).encode(topic, event))


def _commit_all(settings: FreightSettings, topic: str, group: str) -> None:
    """Make `group` commit past everything on `topic` (a group that has consumed it all)."""
    consumer = Consumer(consumer_config(settings, group, {"enable.auto.commit": False}))
    high = KafkaAdmin(settings).watermarks(topic)
    consumer.commit(
        offsets=[TopicPartition(topic, p, hi) for p, (_lo, hi) in high.items()], asynchronous=False
    )
    consumer.close()


def _resolve_in_fresh_process(
    settings: FreightSettings, ref: ProxyRef, env: dict[str, str]
) -> dict[str, Any]:
    """Unpickle a proxy in a new process configured by `env` only, resolve it, report what happened."""
    code = (
        "import json, pickle, sys\n"
        "proxy = pickle.loads(sys.stdin.buffer.read())\n"
        "try:\n"
        "    value = bytes(proxy)\n"
        "    print(json.dumps({'ok': True, 'value': value.decode('latin-1')}))\n"
        "except Exception as exc:\n"
        "    print(json.dumps({'ok': False, 'type': type(exc).__name__, 'text': str(exc)}))\n"
    )
    full = child_env(settings)
    full.update(env)
    done = subprocess.run(
        [sys.executable, "-c", code],
        input=pickle.dumps(Proxy(ref)),
        capture_output=True,
        env=full,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    result: dict[str, Any] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    result["stderr"] = done.stderr.decode()
    return result


def _ref(settings: FreightSettings, store: str, key: str) -> ProxyRef:
    return ProxyRef(
        topic="t", partition=0, offset=0, stream="s", sequence=0, serializer="bytes", store=store, key=key,
        bootstrap=settings.kafka_bootstrap,
    )  # fmt: skip


# Item 1: the evictor deletes only within its allowed roots, and only Freight's own objects --------------


def test_evictor_does_not_delete_a_file_a_hostile_store_config_names(
    stream_settings: FreightSettings, make_topic: Callable[..., str], tmp_path: Path
) -> None:
    victim = tmp_path / "outside" / "x.txt"
    victim.parent.mkdir()
    victim.write_text("not Freight's")
    mine = tmp_path / "mine"
    settings = stream_settings.model_copy(update={"allowed_store_roots": [mine]})
    topic = make_topic()
    name = f"evil-{uuid.uuid4().hex[:8]}"
    _hostile_store(stream_settings, name, "file", {"root": "/"})
    _hostile_event(stream_settings, topic, name, str(victim).lstrip("/"))
    group = f"g-{uuid.uuid4().hex[:8]}"
    PolicyStore(stream_settings).put(RetentionPolicy.build(topic=topic, groups=[group]))
    _commit_all(stream_settings, topic, group)

    with Evictor(settings, group=f"evictor-{uuid.uuid4().hex[:8]}") as evictor:
        report = evictor.run_once([topic])

    assert victim.read_text() == "not Freight's"
    (topic_report,) = report.topics
    assert topic_report.error is None  # the pass went on past the refused store
    assert name in topic_report.refused and "FREIGHT_ALLOWED_STORE_ROOTS" in topic_report.refused[name]
    assert all(p.checkpoint == p.watermark for p in topic_report.partitions)  # and the topic moved on


def test_evictor_deletes_only_objects_with_a_freight_header(
    stream_settings: FreightSettings, make_topic: Callable[..., str], tmp_path: Path
) -> None:
    root = tmp_path / "store"
    store = Store(f"files-{uuid.uuid4().hex[:8]}", FileConnector(root))
    topic = make_topic()
    with StreamProducer({None: store}, settings=stream_settings, inline_threshold=0) as producer:
        producer.send(topic, b"x" * 100, stream="s")  # publishes the (legitimate) store config
    notes = root / "notes.txt"
    notes.write_text("the operator's notes, not a Freight object")
    _hostile_event(stream_settings, topic, store.name, "notes.txt")
    group = f"g-{uuid.uuid4().hex[:8]}"
    PolicyStore(stream_settings).put(RetentionPolicy.build(topic=topic, groups=[group]))
    _commit_all(stream_settings, topic, group)

    with Evictor(stream_settings, group=f"evictor-{uuid.uuid4().hex[:8]}") as evictor:
        report = evictor.run_once([topic])

    assert notes.exists()  # named by a foreign event, but not framed: left alone
    assert report.deleted == 1  # the producer's own object went
    assert not [p for p in root.rglob("*") if p.is_file() and p != notes]


# Items 1 and 4: a resolving process stays within its allow-list -----------------------------------------


def test_resolving_a_hostile_file_store_reads_nothing_and_creates_nothing(
    stream_settings: FreightSettings, tmp_path: Path
) -> None:
    secret = tmp_path / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("TOPSECRET-CONTENT")
    env = {"FREIGHT_ALLOWED_STORE_ROOTS": str(tmp_path / "mine")}

    reader = f"evil-{uuid.uuid4().hex[:8]}"
    _hostile_store(stream_settings, reader, "file", {"root": str(secret.parent)})
    got = _resolve_in_fresh_process(stream_settings, _ref(stream_settings, reader, "secret.txt"), env)
    assert not got["ok"] and got["type"] == "StoreTrustError", got
    assert "FREIGHT_ALLOWED_STORE_ROOTS" in got["text"]
    assert "TOPSECRET" not in json.dumps(got)

    maker = f"evil-{uuid.uuid4().hex[:8]}"
    _hostile_store(stream_settings, maker, "file", {"root": str(tmp_path / "made-by-a-record")})
    got = _resolve_in_fresh_process(stream_settings, _ref(stream_settings, maker, "k"), env)
    assert got["type"] == "StoreTrustError"
    assert not (tmp_path / "made-by-a-record").exists()


class _Recorder(http.server.BaseHTTPRequestHandler):
    requests: list[str] = []

    def _any(self) -> None:
        type(self).requests.append(f"{self.command} {self.path} {self.headers.get('Authorization')}")
        self.send_response(404)
        self.end_headers()

    do_GET = do_HEAD = do_PUT = do_POST = _any  # noqa: N815 (http.server's names)

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def attacker_http() -> Iterator[tuple[str, list[str]]]:
    _Recorder.requests = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Recorder.requests
    server.shutdown()


def test_a_hostile_s3_endpoint_receives_no_signed_request(
    stream_settings: FreightSettings, attacker_http: tuple[str, list[str]]
) -> None:
    url, requests = attacker_http
    name = f"evil-s3-{uuid.uuid4().hex[:8]}"
    _hostile_store(stream_settings, name, "s3", {"bucket": "loot", "endpoint_url": url})
    env = {"AWS_ACCESS_KEY_ID": "AKIDVICTIM", "AWS_SECRET_ACCESS_KEY": "victim-secret"}
    got = _resolve_in_fresh_process(stream_settings, _ref(stream_settings, name, "k"), env)
    assert got["type"] == "StoreTrustError" and "FREIGHT_ALLOWED_S3_ENDPOINTS" in got["text"], got
    assert requests == []


# Item 2: garbage in the internal topics is skipped and reported, never fatal -------------------------------


def test_garbage_and_tombstones_in_the_catalog_do_not_stop_resolution(
    stream_settings: FreightSettings, make_topic: Callable[..., str], tmp_path: Path
) -> None:
    store = Store(f"files-{uuid.uuid4().hex[:8]}", FileConnector(tmp_path / "store"))
    topic = make_topic()
    with StreamProducer({None: store}, settings=stream_settings, inline_threshold=0) as producer:
        producer.send(topic, b"payload" * 100, stream="s").result(30)
        key = next(iter(store.connector.list())).key
    _write(stream_settings, STORES_TOPIC, b"junk", b"\x00\x00\x00\x00\x01 not avro at all")
    _write(stream_settings, STORES_TOPIC, b"\xff\xfe", b"garbage key")
    _write(stream_settings, STORES_TOPIC, store.name.encode(), None)  # a tombstone for a live store
    _hostile_store(stream_settings, store.name, "file", {"root": str(tmp_path / "elsewhere")})  # a takeover

    got = _resolve_in_fresh_process(stream_settings, _ref(stream_settings, store.name, key), {})
    assert got["ok"], got
    assert got["value"].encode("latin-1") == b"payload" * 100

    catalog = StoreCatalog(stream_settings)
    try:
        assert catalog.lookup(store.name).options["root"] == str(tmp_path / "store")
        reasons = {r.reason.split(" (")[0] for r in catalog.rejected}
        assert {
            "key is not UTF-8",
            "unauthenticated tombstone ignored",
            "not a valid store config",
        } <= reasons
        assert any(r.key == store.name and "first one kept" in r.reason for r in catalog.rejected)
    finally:
        catalog.close()


def test_a_garbage_retention_record_does_not_stop_eviction(
    stream_settings: FreightSettings, make_topic: Callable[..., str], tmp_path: Path
) -> None:
    store = Store(f"files-{uuid.uuid4().hex[:8]}", FileConnector(tmp_path / "store"))
    topic = make_topic()
    with StreamProducer({None: store}, settings=stream_settings, inline_threshold=0) as producer:
        producer.send(topic, np.zeros(1000), stream="s")
    group = f"g-{uuid.uuid4().hex[:8]}"
    policies = PolicyStore(stream_settings)
    policies.put(RetentionPolicy.build(topic=topic, groups=[group]))
    _write(stream_settings, policies.topic, b"junk-topic", b"\x00\x00\x00\x00\x07garbage")
    _commit_all(stream_settings, topic, group)

    with Evictor(stream_settings, group=f"evictor-{uuid.uuid4().hex[:8]}") as evictor:
        report = evictor.run_once([topic])
        assert any(r.key == "junk-topic" for r in evictor.policies.rejected)
    assert report.errors == [] and report.deleted == 1


# Item 3: a pickled proxy never makes a worker connect where the pickle says -------------------------------


def test_a_proxy_naming_another_cluster_is_refused_without_connecting(
    stream_settings: FreightSettings,
) -> None:
    fake = socket.socket()
    fake.bind(("127.0.0.1", 0))
    fake.listen(8)
    fake.settimeout(0.2)
    accepted: list[bytes] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = fake.accept()
            except OSError:
                continue
            conn.settimeout(1)
            try:
                accepted.append(conn.recv(4096))
            except OSError:
                accepted.append(b"")
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    ref = _ref(stream_settings, "some-store", "k")
    ref.bootstrap = f"127.0.0.1:{fake.getsockname()[1]}"
    env = {
        "FREIGHT_KAFKA_PROPERTIES": json.dumps(
            {
                "security.protocol": "SASL_PLAINTEXT",
                "sasl.mechanism": "PLAIN",
                "sasl.username": "worker",
                "sasl.password": "HUNTER2",
            }
        )
    }
    try:
        got = _resolve_in_fresh_process(stream_settings, ref, env)
    finally:
        stop.set()
        thread.join(5)
        fake.close()
    assert got["type"] == "StoreTrustError" and "FREIGHT_ALLOWED_CLUSTERS" in got["text"], got
    assert accepted == []  # no connection at all, so no SASL handshake and no password


def test_an_allowed_cluster_is_resolved(
    stream_settings: FreightSettings, make_topic: Callable[..., str], tmp_path: Path
) -> None:
    store = Store(f"files-{uuid.uuid4().hex[:8]}", FileConnector(tmp_path / "store"))
    with StreamProducer({None: store}, settings=stream_settings, inline_threshold=0) as producer:
        producer.send(make_topic(), b"kept" * 300, stream="s").result(30)
    key = next(iter(store.connector.list())).key
    elsewhere = {"FREIGHT_KAFKA_BOOTSTRAP": "127.0.0.1:1"}  # this worker's own cluster is another one
    refused = _resolve_in_fresh_process(stream_settings, _ref(stream_settings, store.name, key), elsewhere)
    assert refused["type"] == "StoreTrustError"
    allowed = dict(elsewhere, FREIGHT_ALLOWED_CLUSTERS=f"{stream_settings.kafka_bootstrap};10.0.0.1:9092")
    got = _resolve_in_fresh_process(stream_settings, _ref(stream_settings, store.name, key), allowed)
    assert got["ok"] and got["value"].encode("latin-1") == b"kept" * 300, got


def test_store_trust_error_is_a_config_error() -> None:
    assert issubclass(StoreTrustError, ValueError)
    assert StoreTrustError("x").exit_code == 2


def test_internal_topics_are_created_through_the_replication_rule(stream_settings: FreightSettings) -> None:
    name = f"_freight_test_{uuid.uuid4().hex[:8]}"
    admin = KafkaAdmin(stream_settings)
    assert admin.create_internal_topic(name, config={"cleanup.policy": "compact"})
    md = admin._metadata(name).topics[name]
    assert len(md.partitions) == 1
    assert all(len(p.replicas) == min(3, admin.ping()) for p in md.partitions.values())
    admin.delete_topics([name])


def test_status_warns_about_an_under_replicated_internal_topic(stream_settings: FreightSettings) -> None:
    name = f"_freight_test_{uuid.uuid4().hex[:8]}"
    admin = KafkaAdmin(stream_settings)
    admin.create_topic(name, 1, replication_factor=1)
    try:
        warnings = admin.replication_warnings()
        if admin.ping() == 1:  # one broker: one replica is all there can be
            assert not [w for w in warnings if name in w]
        else:
            assert [w for w in warnings if name in w]
    finally:
        admin.delete_topics([name])
