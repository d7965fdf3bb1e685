"""`freight groups describe | delete | reset-offsets` and `freight topics alter | create | describe`
of issue 16 (kafka-consumer-groups / kafka-topics parity), on the real broker."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition

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


def as_json(result: subprocess.CompletedProcess[str]) -> dict:  # type: ignore[type-arg]
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def user_error(result: subprocess.CompletedProcess[str], *named: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    for text in named:
        assert text in result.stderr, result.stderr


def commit_at(settings: FreightSettings, topic: str, group: str, offset: int) -> None:
    """Commit as a stopped consumer of the group would have (librdkafka waits out a loading coordinator)."""
    consumer = Consumer(consumer_config(settings, group))
    try:
        consumer.commit(offsets=[TopicPartition(topic, 0, offset)], asynchronous=False)
    finally:
        consumer.close()


def test_groups_describe_members_then_reset_offsets_then_delete(
    kafka_bootstrap: str, settings: FreightSettings, topic: str, group_id: str, tmp_path: Path
) -> None:
    producer = Producer(producer_config(settings))
    for i in range(10):
        producer.produce(topic, value=str(i).encode())
    producer.flush(30)
    commit_at(settings, topic, group_id, 6)

    consumer = Consumer(consumer_config(settings, group_id, {"client.id": "cli3-reader"}))
    consumer.subscribe([topic])
    deadline = time.monotonic() + 30
    while not consumer.assignment() and time.monotonic() < deadline:
        consumer.poll(0.2)
    try:
        described = as_json(freight(kafka_bootstrap, "groups", "describe", group_id, "--json"))
        [member] = described["consumers"]
        assert member["client_id"] == "cli3-reader" and member["host"]
        assert member["assignment"] == [{"topic": topic, "partition": 0}]
        assert described["partitions"][0]["consumer_id"] == member["consumer_id"]
        human = freight(kafka_bootstrap, "groups", "describe", group_id)
        assert "consumer-id" in human.stdout and "cli3-reader" in human.stdout
        user_error(freight(kafka_bootstrap, "groups", "delete", group_id), "stop its consumers")
    finally:
        consumer.close()

    def reset(*args: str) -> dict:  # type: ignore[type-arg]
        return as_json(freight(kafka_bootstrap, "groups", "reset-offsets", "-g", group_id, *args, "--json"))

    def committed() -> int:
        return KafkaAdmin(settings).committed(group_id, topic)[(topic, 0)]

    dry = reset("-t", topic, "--shift-by", "-2")
    assert dry["executed"] is False and dry["partitions"][0]["new"] == 4 and committed() == 6
    assert reset("-t", topic, "--shift-by", "100", "--execute")["partitions"][0]["new"] == 10  # clamped
    assert committed() == 10
    assert reset("--all-topics", "--by-duration", "PT1H")["partitions"] == [
        {"topic": topic, "partition": 0, "current": 10, "new": 0}
    ]
    current = freight(
        kafka_bootstrap, "groups", "reset-offsets", "-g", group_id, "--all-topics", "--to-current", "--export"
    )
    assert current.returncode == 0 and current.stdout == f"{topic},0,10\n"

    plan_file = tmp_path / "plan.csv"
    plan_file.write_text(f"topic,partition,offset\n{topic},0,3\n")
    assert reset("--from-file", str(plan_file), "--execute")["partitions"][0]["new"] == 3
    assert committed() == 3

    bad = tmp_path / "bad.csv"
    bad.write_text(f"{topic},zero,3\n")
    user_error(
        freight(kafka_bootstrap, "groups", "reset-offsets", "-g", group_id, "--from-file", str(bad)), "line 1"
    )
    user_error(
        freight(
            kafka_bootstrap, "groups", "reset-offsets", "-g", group_id, "--from-file", str(tmp_path / "none")
        ),
        "--from-file",
    )
    user_error(
        freight(
            kafka_bootstrap, "groups", "reset-offsets", "-g", group_id, "-t", topic, "--by-duration", "10m"
        ),
        "PT10M",
    )
    user_error(
        freight(kafka_bootstrap, "groups", "reset-offsets", "-g", group_id, "--to-earliest"), "--all-topics"
    )

    assert as_json(freight(kafka_bootstrap, "groups", "delete", group_id, "--json")) == {
        "deleted": [group_id]
    }
    user_error(freight(kafka_bootstrap, "groups", "describe", group_id), "no consumer group")
    user_error(freight(kafka_bootstrap, "groups", "delete", group_id), "no consumer group")


def test_topics_alter_create_if_not_exists_and_describe_replicas(
    kafka_bootstrap: str, make_topic: object
) -> None:
    name = f"cli-alter-{uuid.uuid4().hex[:8]}"
    assert as_json(freight(kafka_bootstrap, "topics", "create", name, "-p", "2", "--json"))["created"] is True
    try:
        user_error(
            freight(kafka_bootstrap, "topics", "create", name, "-p", "4"), "topics alter", "--if-not-exists"
        )
        kept = as_json(
            freight(kafka_bootstrap, "topics", "create", name, "-p", "4", "--if-not-exists", "--json")
        )
        assert kept == {"topic": name, "partitions": 2, "created": False, "config": {}}

        altered = as_json(
            freight(
                kafka_bootstrap, "topics", "alter", name, "-p", "4", "-c", "retention.ms=7200000", "--json"
            )
        )
        assert altered["partitions"] == 4
        described = as_json(freight(kafka_bootstrap, "topics", "describe", name, "--json"))
        assert [p["partition"] for p in described["partitions"]] == [0, 1, 2, 3]
        assert described["config"]["retention.ms"] == "7200000"
        first = described["partitions"][0]
        assert (
            first["leader"] >= 0
            and first["leader"] in first["replicas"]
            and first["isr"] == first["replicas"]
        )
        human = freight(kafka_bootstrap, "topics", "describe", name)
        assert "leader" in human.stdout and "isr" in human.stdout

        reset = as_json(
            freight(kafka_bootstrap, "topics", "alter", name, "--delete-config", "retention.ms", "--json")
        )
        assert reset["deleted"] == ["retention.ms"]
        assert (
            "retention.ms"
            not in as_json(freight(kafka_bootstrap, "topics", "describe", name, "--json"))["config"]
        )

        user_error(freight(kafka_bootstrap, "topics", "alter", name, "-p", "3"), "cannot remove partitions")
        user_error(freight(kafka_bootstrap, "topics", "alter", name), "nothing to alter")
        user_error(freight(kafka_bootstrap, "topics", "alter", name, "-c", "retention.ms=soon"), "refused")
        user_error(
            freight(kafka_bootstrap, "topics", "alter", f"{name}-missing", "-p", "5"), "does not exist"
        )
    finally:
        freight(kafka_bootstrap, "topics", "delete", name)
