"""`freight topics` and `freight groups` against the real broker, as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime

from confluent_kafka import Consumer, Producer

from freight.config import FreightSettings
from freight.kafka import KafkaAdmin, consumer_config, producer_config


def freight(bootstrap: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "freight.cli", *args, "--bootstrap", bootstrap],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_topics_create_list_describe_delete(kafka_bootstrap: str) -> None:
    name = f"cli-topic-{uuid.uuid4().hex[:8]}"
    created = freight(
        kafka_bootstrap, "topics", "create", name, "-p", "3", "-c", "retention.ms=3600000", "--json"
    )
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["created"] is True
    again = freight(kafka_bootstrap, "topics", "create", name, "-p", "3", "--json")
    assert json.loads(again.stdout)["created"] is False

    listed = json.loads(freight(kafka_bootstrap, "topics", "list", "--json").stdout)
    assert {"topic": name, "partitions": 3} in listed

    described = json.loads(freight(kafka_bootstrap, "topics", "describe", name, "--json").stdout)
    assert [p["partition"] for p in described["partitions"]] == [0, 1, 2]
    assert described["config"]["retention.ms"] == "3600000"
    human = freight(kafka_bootstrap, "topics", "describe", name)
    assert "high watermark" in human.stdout

    assert freight(kafka_bootstrap, "topics", "delete", name).returncode == 0
    missing = freight(kafka_bootstrap, "topics", "describe", name)
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def test_groups_describe_shows_lag_and_reset_offsets_replays(
    kafka_bootstrap: str, settings: FreightSettings, topic: str, group_id: str
) -> None:
    producer = Producer(producer_config(settings))
    for i in range(10):
        producer.produce(topic, key=b"k", value=str(i).encode())
    producer.flush(30)
    time.sleep(0.05)
    middle = datetime.now(UTC)
    time.sleep(0.05)
    for i in range(10, 15):
        producer.produce(topic, key=b"k", value=str(i).encode())
    producer.flush(30)

    consumer = Consumer(
        consumer_config(settings, group_id, {"enable.auto.offset.store": True, "enable.auto.commit": False})
    )
    consumer.subscribe([topic])
    got = 0
    deadline = time.monotonic() + 30
    while got < 6 and time.monotonic() < deadline:
        got += len([m for m in consumer.consume(6 - got, timeout=1) if m.error() is None])
    consumer.commit(asynchronous=False)
    consumer.close()

    described = json.loads(freight(kafka_bootstrap, "groups", "describe", group_id, "--json").stdout)
    assert described["partitions"][0]["committed"] == 6
    assert described["total_lag"] == 9
    assert group_id in {
        g["group"] for g in json.loads(freight(kafka_bootstrap, "groups", "list", "--json").stdout)
    }

    dry = freight(
        kafka_bootstrap, "groups", "reset-offsets", "-g", group_id, "-t", topic, "--to-earliest", "--json"
    )
    plan = json.loads(dry.stdout)
    assert plan["executed"] is False and plan["topic"] == topic
    assert plan["partitions"] == [{"topic": topic, "partition": 0, "current": 6, "new": 0}]
    assert KafkaAdmin(settings).committed(group_id, topic) == {(topic, 0): 6}  # a dry run changes nothing

    by_time = freight(
        kafka_bootstrap,
        "groups",
        "reset-offsets",
        "-g",
        group_id,
        "-t",
        topic,
        "--to-datetime",
        middle.isoformat(),
        "--execute",
        "--json",
    )
    assert json.loads(by_time.stdout)["partitions"][0]["new"] == 10
    assert KafkaAdmin(settings).committed(group_id, topic) == {(topic, 0): 10}

    to_offset = freight(
        kafka_bootstrap,
        "groups",
        "reset-offsets",
        "-g",
        group_id,
        "-t",
        topic,
        "--to-offset",
        "99",
        "--execute",
        "--json",
    )
    assert json.loads(to_offset.stdout)["partitions"][0]["new"] == 15  # clamped to the high watermark

    bad = freight(kafka_bootstrap, "groups", "reset-offsets", "-g", group_id, "-t", topic)
    assert bad.returncode == 2 and "exactly one of" in bad.stderr


def test_reset_offsets_refuses_an_active_group(
    kafka_bootstrap: str, settings: FreightSettings, topic: str, group_id: str
) -> None:
    consumer = Consumer(consumer_config(settings, group_id))
    consumer.subscribe([topic])
    deadline = time.monotonic() + 30
    while not consumer.assignment() and time.monotonic() < deadline:
        consumer.poll(0.2)
    try:
        result = freight(
            kafka_bootstrap,
            "groups",
            "reset-offsets",
            "-g",
            group_id,
            "-t",
            topic,
            "--to-earliest",
            "--execute",
        )
        assert result.returncode == 2
        assert "active member" in result.stderr and "stop its consumers" in result.stderr
    finally:
        consumer.close()


def test_unreachable_broker_is_a_clear_error() -> None:
    result = freight("127.0.0.1:1", "topics", "list")
    assert result.returncode == 3
    assert "no Kafka broker answered at 127.0.0.1:1" in result.stderr and "freight dev up" in result.stderr
