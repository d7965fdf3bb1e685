"""A topic unknown to the broker that answers is asked for again briefly: in a cluster, a topic created a
moment ago reaches each broker's metadata on its own time (a clean-clone CI run failed `describe_topic`
right after `create_internal_topic` on three nodes)."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import pytest

from freight.config import FreightSettings
from freight.errors import ConfigError
from freight.kafka import KafkaAdmin
from freight.kafka import admin as admin_module


def metadata_answers(admin: KafkaAdmin, monkeypatch: pytest.MonkeyPatch, unknown_first: int) -> list[str]:
    """Make the admin's metadata say 'unknown topic' `unknown_first` times, then know topic 't'."""
    asked: list[str] = []

    def fake(topic: str | None = None, timeout: float | None = None) -> Any:
        asked.append(topic or "")
        if len(asked) <= unknown_first:
            missing = SimpleNamespace(error="UNKNOWN_TOPIC_OR_PART", partitions={})
            return SimpleNamespace(topics={topic: missing})
        part = SimpleNamespace(id=0, leader=1, replicas=[1, 2, 3], isrs=[1, 2, 3])
        return SimpleNamespace(topics={"t": SimpleNamespace(error=None, partitions={0: part})})

    monkeypatch.setattr(admin, "_metadata", fake)
    return asked


@pytest.fixture
def admin() -> KafkaAdmin:
    return KafkaAdmin(FreightSettings(kafka_bootstrap="127.0.0.1:1"), timeout=5, quiet=True)


def test_a_topic_the_answering_broker_does_not_know_yet_is_asked_for_again(
    admin: KafkaAdmin, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = metadata_answers(admin, monkeypatch, unknown_first=2)
    assert admin.partitions("t") == [0]
    assert len(asked) == 3
    asked.clear()
    assert [p.replicas for p in admin.partition_replicas("t")] == [(1, 2, 3)]


def test_a_missing_topic_is_reported_after_the_settle_window(
    admin: KafkaAdmin, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(admin_module, "TOPIC_SETTLE_S", 0.3)
    asked = metadata_answers(admin, monkeypatch, unknown_first=10**6)
    t0 = time.monotonic()
    with pytest.raises(ConfigError, match="topic 'nope' does not exist; create it with"):
        admin.describe_topic("nope")
    assert 0.3 <= time.monotonic() - t0 < 2 and len(asked) >= 2
