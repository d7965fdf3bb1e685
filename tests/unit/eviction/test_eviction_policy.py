"""Retention policies: validation with clear messages, durations, and the Avro record (round trip through the
shipped schema with fastavro, no registry)."""

from __future__ import annotations

import io

import pytest
from fastavro import parse_schema, schemaless_reader, schemaless_writer

from freight.errors import ConfigError
from freight.eviction import RetentionPolicy, format_duration, parse_duration
from freight.schemas import schema_dict


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0.0),
        ("250ms", 0.25),
        ("30s", 30.0),
        ("1.5s", 1.5),
        ("15m", 900.0),
        ("2h", 7200.0),
        ("7d", 604800.0),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds
    assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.parametrize("bad", ["", "ten", "5x", "1h30m", "-3s", "s"])
def test_bad_durations_say_how_to_write_one(bad: str) -> None:
    with pytest.raises(ConfigError, match=r"--min-age '.*' is not a duration; write a number with a unit"):
        parse_duration(bad, "--min-age")
    with pytest.raises(ConfigError, match="must not be negative"):
        parse_duration(-3, "--min-age")


def test_policy_validation_messages() -> None:
    with pytest.raises(ConfigError, match="names no group"):
        RetentionPolicy.build(topic="t", all_committed_groups=False)
    with pytest.raises(ConfigError, match="both named and excluded: g"):
        RetentionPolicy.build(topic="t", groups=("g",), exclude_groups=("g",))
    with pytest.raises(ConfigError, match="not a valid Kafka topic name"):
        RetentionPolicy.build(topic="no spaces")
    with pytest.raises(ConfigError, match="Freight's own topics"):
        RetentionPolicy.build(topic="_freight_stores")
    with pytest.raises(ConfigError, match="greater than or equal to 0"):
        RetentionPolicy.build(topic="t", min_age_s=-1)
    assert RetentionPolicy.build(topic="t", groups=("a", "a", "b")).groups == ("a", "b")


def test_avro_round_trip_through_the_shipped_schema() -> None:
    schema = parse_schema(schema_dict("retention_policy"))
    policy = RetentionPolicy(
        topic="frames",
        groups=("train", "eval"),
        all_committed_groups=False,
        exclude_groups=("debug",),
        min_age_s=600,
        delete_records=True,
        orphan_grace_s=1800,
        orphan_stores=("s3-frames",),
    )
    buf = io.BytesIO()
    schemaless_writer(buf, schema, policy.to_avro())
    buf.seek(0)
    assert RetentionPolicy.from_avro(schemaless_reader(buf, schema, schema)) == policy


def test_old_records_get_the_defaults() -> None:
    # A reader of today's schema fills in every field a minimal writer left out (BACKWARD evolution).
    writer = {
        "type": "record",
        "name": "RetentionPolicy",
        "namespace": "freight.v1",
        "fields": [
            {"name": "topic", "type": "string"},
            {"name": "updated_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        ],
    }
    buf = io.BytesIO()
    schemaless_writer(buf, parse_schema(writer), {"topic": "frames", "updated_at": 1})
    buf.seek(0)
    rec = schemaless_reader(buf, parse_schema(writer), parse_schema(schema_dict("retention_policy")))
    policy = RetentionPolicy.from_avro(rec)
    assert policy.all_committed_groups and policy.groups == () and policy.orphan_grace_s == 900
