"""`freight status` on the real broker and registry: lag that moves as a group consumes, stores, exit 3."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer

from freight.config import FreightSettings
from freight.dev.procs import free_port
from freight.kafka import consumer_config, producer_config


def status(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "freight.cli", "status", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def status_json(kafka_bootstrap: str, registry_url: str, *args: str) -> dict[str, Any]:
    done = status("--json", "--bootstrap", kafka_bootstrap, "--registry", registry_url, *args)
    assert done.returncode in (0, 3), done.stderr  # 3 only if an S3 endpoint in the environment is down
    doc: dict[str, Any] = json.loads(done.stdout)
    assert doc["broker"]["ok"] is True and doc["registry"]["ok"] is True
    return doc


def consume(consumer: Consumer, count: int) -> None:
    got = 0
    while got < count:
        msg = consumer.poll(10)
        assert msg is not None, f"only {got} of {count} records arrived"
        if msg.error() is None:
            got += 1
    consumer.commit(asynchronous=False)


def test_status_json_shows_lag_shrinking_as_the_group_consumes(
    kafka_bootstrap: str, registry_url: str, settings: FreightSettings, make_topic: Any, group_id: str
) -> None:
    topic = make_topic(partitions=2)
    producer = Producer(producer_config(settings))
    for i in range(30):
        producer.produce(topic, value=f"event {i}".encode(), partition=i % 2)
    assert producer.flush(30) == 0

    consumer = Consumer(
        consumer_config(settings, group_id, {"enable.auto.offset.store": True, "enable.auto.commit": False})
    )
    consumer.subscribe([topic])
    try:
        lags = []
        for step in (10, 15):
            consume(consumer, step)
            doc = status_json(kafka_bootstrap, registry_url, "--group", group_id, "--no-stores")
            (group,) = doc["groups"]
            assert group["group"] == group_id and group["members"] == 1
            by_partition = {p["partition"]: p for p in group["partitions"] if p["topic"] == topic}
            assert set(by_partition) == {0, 1}
            for p in by_partition.values():
                assert p["high"] == 15
                assert p["lag"] == p["high"] - (p["committed"] or 0)
            assert group["total_lag"] == sum(p["lag"] for p in by_partition.values())
            lags.append(group["total_lag"])
        assert lags == [30 - 10, 30 - 25]

        # The topic itself, and the eviction watermark (the only group's committed offsets).
        doc = status_json(kafka_bootstrap, registry_url, "--topic", topic, "--no-stores")
        assert [t["records"] for t in doc["topics"]] == [30]
        marks = {w["partition"]: w for w in doc["eviction"]["watermarks"] if w["topic"] == topic}
        assert sum(w["offset"] for w in marks.values()) == 25
        assert all(group_id in w["groups"] for w in marks.values())
    finally:
        consumer.close()

    human = status(
        "--bootstrap", kafka_bootstrap, "--registry", registry_url, "--group", group_id, "--no-stores"
    )
    assert "Consumer groups" in human.stdout and "total lag 5" in human.stdout


def test_status_lists_a_store_of_the_catalog_with_its_objects(
    kafka_bootstrap: str, registry_url: str, stream_settings: FreightSettings, tmp_path: Path
) -> None:
    from freight.connectors.file import FileConnector
    from freight.stores import Store
    from freight.stores.catalog import StoreCatalog

    store = Store(f"status-{uuid.uuid4().hex[:8]}", FileConnector(tmp_path / "store"))
    sizes = [store.put(bytes(n)).size for n in (10, 1000, 100_000)]
    StoreCatalog(stream_settings).publish(store.config())

    doc = status_json(kafka_bootstrap, registry_url, "--store", store.name, "--group", "none-such")
    (listed,) = doc["stores"]
    assert listed["name"] == store.name and listed["kind"] == "file"
    assert listed["objects"] == 3 and listed["bytes"] == sum(sizes) and listed["truncated"] is False

    capped = status_json(kafka_bootstrap, registry_url, "--store", store.name, "--store-limit", "2")
    assert capped["stores"][0]["truncated"] is True and capped["stores"][0]["objects"] == 2


def test_status_reports_a_tensor_stores_transport(
    kafka_bootstrap: str, registry_url: str, stream_settings: FreightSettings
) -> None:
    import pytest

    torch = pytest.importorskip("torch")
    from freight.connectors import TensorConnector, transfer
    from freight.stores import Store
    from freight.stores.catalog import StoreCatalog

    conn = TensorConnector(f"status-tensors-{uuid.uuid4().hex[:8]}")
    try:
        store = Store(f"status-{uuid.uuid4().hex[:8]}", conn)
        store.put(torch.ones(10), key="t")
        StoreCatalog(stream_settings).publish(store.config())
        doc = status_json(kafka_bootstrap, registry_url, "--store", store.name, "--group", "none-such")
    finally:
        conn.shutdown()
    (listed,) = doc["stores"]
    assert listed["kind"] == "tensor" and listed["objects"] == 1
    path = "nixl (UCX)" if transfer.available() else "tcp (install freight[rdma]"
    assert f"transport: shm/cuda-ipc on host, else {path}" in listed["detail"]


def test_status_exits_3_and_names_the_command_when_the_broker_is_down() -> None:
    done = status("--bootstrap", f"127.0.0.1:{free_port()}", "--json", "--timeout", "1")
    assert done.returncode == 3
    assert json.loads(done.stdout)["broker"]["ok"] is False
    assert "freight dev up" in done.stderr


def test_status_shows_the_evictor_watermark_of_a_topic_with_a_retention_policy(
    kafka_bootstrap: str,
    registry_url: str,
    settings: FreightSettings,
    stream_settings: FreightSettings,
    make_topic: Any,
    group_id: str,
) -> None:
    from freight.eviction.policy import PolicyStore, RetentionPolicy

    with_policy, without = make_topic(), make_topic()
    producer = Producer(producer_config(settings))
    for topic in (with_policy, without):
        for i in range(6):
            producer.produce(topic, value=f"event {i}".encode())
    assert producer.flush(30) == 0
    consumer = Consumer(
        consumer_config(settings, group_id, {"enable.auto.offset.store": True, "enable.auto.commit": False})
    )
    consumer.subscribe([with_policy, without])
    try:
        consume(consumer, 12)
    finally:
        consumer.close()
    PolicyStore(stream_settings).put(RetentionPolicy(topic=with_policy, groups=(group_id,)))

    doc = status_json(
        kafka_bootstrap, registry_url, "--topic", with_policy, "--topic", without, "--no-stores"
    )
    marks = {w["topic"]: w for w in doc["eviction"]["watermarks"]}
    assert marks[with_policy]["source"] == "policy" and marks[with_policy]["offset"] == 6
    assert group_id in marks[with_policy]["groups"]
    assert marks[without]["source"] == "min-committed" and marks[without]["offset"] == 6
    assert with_policy in doc["eviction"]["policies"] and without not in doc["eviction"]["policies"]


def test_status_watch_refreshes_json_lines_and_draws_the_lag_chart(
    kafka_bootstrap: str,
    registry_url: str,
    settings: FreightSettings,
    make_topic: Any,
    group_id: str,
    tmp_path: Path,
) -> None:
    topic = make_topic(partitions=1)
    producer = Producer(producer_config(settings))
    for i in range(12):
        producer.produce(topic, value=f"event {i}".encode())
    assert producer.flush(30) == 0
    consumer = Consumer(
        consumer_config(settings, group_id, {"enable.auto.offset.store": True, "enable.auto.commit": False})
    )
    consumer.subscribe([topic])
    try:
        consume(consumer, 5)
    finally:
        consumer.close()
    chart = tmp_path / "lag.png"
    done = status(
        "--watch", "0.2", "--count", "3", "--json", "--group", group_id, "--no-stores", "--plot", str(chart),
        "--bootstrap", kafka_bootstrap, "--registry", registry_url,
    )  # fmt: skip
    assert done.returncode in (0, 3), done.stderr
    docs = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(docs) == 3
    for doc in docs:
        (group,) = doc["groups"]
        assert group["group"] == group_id and group["total_lag"] == 12 - 5
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_status_watch_options_are_checked_before_anything_runs(tmp_path: Path) -> None:
    for args, says in [
        (["--plot", str(tmp_path / "a.png")], "need --watch"),
        (["--count", "2"], "need --watch"),
        (["--watch", "0"], "seconds > 0"),
        (["--watch", "1", "--plot", str(tmp_path / "a.txt")], "must end in .png"),
        (["--watch", "1", "--plot", str(tmp_path / "missing" / "a.png")], "does not exist"),
    ]:
        done = status(*args, "--bootstrap", "127.0.0.1:1")
        assert done.returncode == 2, (args, done.stderr)
        assert says in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr
