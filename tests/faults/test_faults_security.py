"""Security: no pickle unless enabled (and unpickling never runs when disabled), secrets never written to a
topic or a log, the registry's basic auth refuses wrong credentials, the file store never writes outside its
directory.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from tests.fixtures.registry import SpawnRegistry

from freight.config import FreightSettings, load_settings
from freight.connectors.file import FileConnector
from freight.errors import PickleDisabledError, SchemaError
from freight.kafka import KafkaAdmin, consumer_config, producer_config
from freight.schemas.events import InlinePayload, ObjectEvent
from freight.schemas.serde import EventSerde
from freight.stores import Store
from freight.stores.catalog import STORES_TOPIC
from freight.stream import StreamConsumer, StreamProducer, extract


class _RunsCodeOnLoad:
    """Unpickling this creates `path`: the proof that pickle ran code."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.path), "w"))


def test_pickle_is_refused_unless_enabled_and_never_runs_on_load(
    stream_settings: FreightSettings, make_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = make_topic()
    marker = tmp_path / "pickle-ran"
    evil = _RunsCodeOnLoad(marker)
    root = tmp_path / "store"
    name = f"pickles-{uuid.uuid4().hex[:8]}"
    safe = Store(name, FileConnector(root))  # pickle off: the default
    producer = StreamProducer({None: safe}, settings=stream_settings)
    with pytest.raises(PickleDisabledError, match="FREIGHT_ALLOW_PICKLE=1 or allow_pickle=True"):
        producer.send(topic, evil)
    producer.close()
    assert list(safe.connector.list()) == []

    # A producer that enabled pickle writes one stored and one inline pickled object...
    trusting = Store(name, FileConnector(root), allow_pickle=True)
    unsafe = StreamProducer({None: trusting}, settings=stream_settings, inline_threshold=64)
    unsafe.send(topic, evil, serializer="pickle").result(30)
    unsafe.close()
    serde = EventSerde(stream_settings.schema_registry_url)
    raw = Producer(producer_config(stream_settings))
    inline = ObjectEvent("s", 1, "evil", inline=InlinePayload(pickle.dumps(evil), "pickle"))
    raw.produce(topic, key=b"s", value=serde.encode(topic, inline))
    assert raw.flush(30) == 0
    assert not marker.exists()

    # ...and a consumer that did not enable it refuses both, saying why, without running anything.
    with StreamConsumer(
        topic, None, settings=stream_settings, stores=[safe], until_high_watermark=True
    ) as consumer:
        proxies = list(consumer)
        for proxy in proxies:
            with pytest.raises(PickleDisabledError, match="unpickling runs"):
                extract(proxy)
    assert len(proxies) == 2 and not marker.exists()
    # The control: where pickle is enabled on purpose, the same object does run code on load.
    trusting.get(next(iter(trusting.connector.list())).key)
    assert marker.exists()


def _records(settings: FreightSettings, topic: str) -> list[bytes]:
    """Every record of every partition of `topic`, as the bytes of its key, value and headers (read up to
    the high watermarks; transactional topics hold control markers that no consumer sees, hence positions)."""
    marks = {p: m for p, m in KafkaAdmin(settings).watermarks(topic).items() if m[1] > m[0]}
    group = f"grep-{uuid.uuid4().hex[:8]}"
    consumer = Consumer(consumer_config(settings, group, {"enable.auto.commit": False}))
    parts = [TopicPartition(topic, p, lo) for p, (lo, _hi) in marks.items()]
    consumer.assign(parts)
    out: list[bytes] = []
    try:
        for _ in range(240):
            positions = {tp.partition: tp.offset for tp in consumer.position(parts)}
            if all(positions[p] >= hi for p, (_lo, hi) in marks.items()):
                return out
            for msg in consumer.consume(1000, timeout=0.5):
                if msg.error() is None:
                    fields = [msg.key() or b"", msg.value() or b""]
                    fields += [k.encode() + (v or b"") for k, v in msg.headers() or []]
                    out.append(b"\0".join(fields))
    finally:
        consumer.close()
    raise AssertionError(f"could not read {topic} to its end")


def test_secrets_are_never_written_to_a_topic_or_a_log(
    kafka_bootstrap: str,
    dev_state_dir: Path,
    spawn_registry: SpawnRegistry,
    make_topic: Callable[..., str],
    s3_bucket: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    group_id: str,
) -> None:
    from freight.connectors import S3Connector

    tag = uuid.uuid4().hex[:10]
    secrets = {
        "S3 secret key": f"s3-secret-{tag}",
        "S3 session token": f"s3-token-{tag}",
        "SASL password": f"sasl-password-{tag}",
        "registry password": f"registry-password-{tag}",
    }
    # Secrets come from the environment of each process, as they should (the registry takes its --auth from
    # FREIGHT_SCHEMA_REGISTRY_AUTH too, so the password is not on a command line for `ps` to show).
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secrets["S3 secret key"])
    monkeypatch.setenv("AWS_SESSION_TOKEN", secrets["S3 session token"])
    monkeypatch.setenv("FREIGHT_SCHEMA_REGISTRY_AUTH", f"freight:{secrets['registry password']}")
    registry = spawn_registry()
    assert httpx.get(f"{registry.url}/subjects").status_code == 401  # the registry does require it
    cmdline = Path(f"/proc/{registry.proc.pid}/cmdline").read_bytes()
    assert secrets["registry password"].encode() not in cmdline
    props = {"sasl.username": "freight", "sasl.password": secrets["SASL password"]}
    monkeypatch.setenv("FREIGHT_KAFKA_PROPERTIES", json.dumps(props))
    caplog.set_level(logging.DEBUG)
    settings = load_settings(kafka_bootstrap=kafka_bootstrap, schema_registry_url=registry.url)
    assert settings.client_properties()["sasl.password"] == secrets["SASL password"]

    topic = make_topic(partitions=2)
    visible = f"visible-{tag}"  # a control: something that must be found where the secrets must not
    store = Store(f"secrets-{tag}", S3Connector(s3_bucket))
    producer = StreamProducer({None: store}, settings=settings)
    for i in range(6):
        producer.send(
            topic, os.urandom(10_000 if i % 2 else 100), stream=f"s{i % 2}", metadata={"m": visible}
        )
    producer.end_stream(topic, "s0")
    producer.flush()
    producer.close()
    raw = Producer(producer_config(settings))
    raw.produce(topic, key=b"s0", value=b"\x01 not an event")  # goes to the dead-letter topic
    assert raw.flush(30) == 0
    dlq = f"{topic}.dlq"
    proxies = []
    with StreamConsumer(
        topic,
        group_id,
        settings=settings,
        until_high_watermark=True,
        on_bad_event="dead-letter",
        dead_letter_topic=dlq,
    ) as consumer:
        for proxy in consumer:
            extract(proxy)
            proxies.append(pickle.dumps(proxy))  # what a dispatcher ships to a worker
        assert consumer.stats.dead_lettered == 1
        consumer.commit()

    dumps = {
        name: _records(settings, name)
        for name in (topic, dlq, STORES_TOPIC, registry.topic, "__consumer_offsets")
    }
    assert any(visible.encode() in r for r in dumps[topic]), "the control value is missing from the topic"
    assert any(store.name.encode() in r for r in dumps[STORES_TOPIC])
    logs = {
        "Python logs (DEBUG, librdkafka included)": caplog.text,
        "registry log": registry.log_file.read_text(errors="replace"),
    }
    for path in (dev_state_dir / "kafka" / "logs").glob("*.log"):
        logs[f"broker {path.name}"] = path.read_text(errors="replace")
    for what, secret in secrets.items():
        for name, records in dumps.items():
            assert not any(secret.encode() in r for r in records), f"the {what} is in topic {name}"
        for name, text in logs.items():
            assert secret not in text, f"the {what} is in the {name}"
        assert not any(secret.encode() in blob for blob in proxies), f"the {what} is in a pickled proxy"


def test_the_registry_refuses_wrong_credentials(
    spawn_registry: SpawnRegistry, make_topic: Callable[..., str], tmp_path: Path
) -> None:
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.error import SchemaRegistryError

    secret_file = tmp_path / "registry-auth"
    secret_file.write_text("alice:right-pass\n")
    registry = spawn_registry(extra=["--auth-file", str(secret_file)])
    url = f"{registry.url}/subjects"
    assert httpx.get(url, auth=("alice", "right-pass")).status_code == 200
    for auth in (None, ("alice", "wrong-pass"), ("bob", "right-pass"), ("alice", ""), ("", "")):
        response = httpx.get(url, auth=auth)
        assert response.status_code == 401, auth
        assert response.headers["www-authenticate"].startswith("Basic")
        assert response.json()["error_code"] == 401
        assert "wrong-pass" not in response.text
    garbled = httpx.get(url, headers={"Authorization": "Basic !!not-base64!!"})
    assert garbled.status_code == 401
    assert httpx.get(f"{registry.url}/freight/health").status_code == 200  # liveness stays open

    # confluent-kafka's own client, and Freight's serde, with wrong credentials.
    client = SchemaRegistryClient({"url": registry.url, "basic.auth.user.info": "alice:wrong-pass"})
    with pytest.raises(SchemaRegistryError) as caught:
        client.get_subjects()
    assert caught.value.http_status_code == 401
    topic = make_topic()
    event = ObjectEvent("s", 0, "p", inline=InlinePayload(b"x", "bytes"))
    with pytest.raises(SchemaError, match="HTTP 401") as refused:
        EventSerde(registry.url, auth="alice:wrong-pass").encode(topic, event)
    assert "FREIGHT_SCHEMA_REGISTRY_AUTH" in str(refused.value) and "wrong-pass" not in str(refused.value)
    assert EventSerde(registry.url, auth="alice:right-pass").encode(topic, event)[0] == 0


def test_the_file_store_never_writes_outside_its_directory(tmp_path: Path) -> None:
    root = tmp_path / "store"
    outside = tmp_path / "outside.txt"
    outside.write_text("untouched")
    store = Store("confined", FileConnector(root))
    # An object whose file was replaced by a symbolic link to a file outside: a write replaces the link,
    # it never writes through it.
    store.put(b"first" * 1000, key="a/link")
    (root / "a" / "link").unlink()
    (root / "a" / "link").symlink_to(outside)
    store.put(b"second" * 1000, key="a/link")
    assert outside.read_text() == "untouched"
    assert not (root / "a" / "link").is_symlink() and bytes(store.get("a/link")) == b"second" * 1000
    # Keys cannot leave the directory (more in test_faults_input.py).
    for key in ("../outside.txt", "/tmp/x", "a/../../outside.txt"):
        with pytest.raises(ValueError, match="store key"):
            store.put(b"x" * 1000, key=key)
    assert outside.read_text() == "untouched"
    files = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert files == ["outside.txt", "store/a/link"]
