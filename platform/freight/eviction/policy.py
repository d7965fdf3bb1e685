"""Retention policies: which groups must see a topic's objects before they go, kept in a compacted topic.

A `RetentionPolicy` names the retaining groups of one topic (explicitly, and/or every group that has
committed on it), a minimum age before eviction, whether Kafka records below the watermark are deleted too,
and the orphan grace period. Policies live in the compacted topic `_freight_retention` keyed by topic name
(Avro `freight.v1.RetentionPolicy`); a tombstone deletes one. `PolicyStore` reads that topic incrementally,
so a long-lived evictor sees edits made with `freight evict policy set` on its next pass.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from freight.config import FreightSettings
from freight.errors import ConfigError
from freight.kafka import KafkaAdmin
from freight.kafka.table import CompactedTable, RejectedRecord
from freight.schemas.events import now_ms

if TYPE_CHECKING:
    from freight.schemas.serde import EventSerde

POLICIES_TOPIC = "_freight_retention"
RETENTION_POLICY = "retention_policy"  # schema file stem (schemas/retention_policy.avsc)
#: Kafka's own limit on topic and group names.
_NAME = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
#: The producer's default delivery timeout (`delivery.timeout.ms`): an orphan grace below it is unsafe.
PRODUCER_DELIVERY_TIMEOUT_S = 120.0


def parse_duration(text: str | float | int, what: str = "duration") -> float:
    """Seconds in '500ms', '30s', '15m', '2h', '7d' or a plain number of seconds; a clear error otherwise."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        seconds = float(text)
    else:
        match = _DURATION.match(str(text))
        if match is None:
            raise ConfigError(
                f"{what} {text!r} is not a duration; write a number with a unit: 500ms, 30s, 15m, 2h, 7d"
            )
        seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    if seconds < 0:
        raise ConfigError(f"{what} must not be negative, got {text!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """A short human form of a duration: 0s, 1.5s, 15m, 2h, 7d."""
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    if 0 < seconds < 1:
        return f"{seconds * 1000:g}ms"
    return f"{seconds:g}s"


class RetentionPolicy(BaseModel):
    """How long a topic's stored objects are retained (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    topic: str = Field(description="The stream topic this policy governs.")
    groups: tuple[str, ...] = Field((), description="Retaining groups named explicitly.")
    all_committed_groups: bool = Field(True, description="Also every group that committed on the topic.")
    exclude_groups: tuple[str, ...] = Field((), description="Groups never counted as retaining.")
    min_age_s: float = Field(0.0, ge=0, description="Minimum age of an event before its object goes.")
    delete_records: bool = Field(False, description="Also delete Kafka records below the watermark.")
    orphan_grace_s: float = Field(900.0, ge=0, description="Age after which unreferenced objects go.")
    orphan_stores: tuple[str, ...] = Field((), description="Extra stores to sweep for orphans.")
    updated_at: int = Field(default_factory=now_ms, description="When the policy was written (epoch ms).")

    @field_validator("topic")
    @classmethod
    def _topic(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"topic {value!r} is not a valid Kafka topic name")
        if value.startswith("_freight"):
            raise ValueError(f"topic {value!r} is one of Freight's own topics; it holds no stream objects")
        return value

    @field_validator("groups", "exclude_groups")
    @classmethod
    def _groups(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for group in value:
            if not group or not group.strip():
                raise ValueError("group names must not be empty")
        return tuple(dict.fromkeys(value))

    @model_validator(mode="after")
    def _retains_someone(self) -> RetentionPolicy:
        if not self.all_committed_groups and not self.groups:
            raise ValueError(
                "the policy names no group and does not retain for committed groups; name groups "
                "(--group G) or retain for every group that committed (--all-committed)"
            )
        overlap = set(self.groups) & set(self.exclude_groups)
        if overlap:
            raise ValueError(f"groups both named and excluded: {', '.join(sorted(overlap))}")
        return self

    @classmethod
    def build(cls, **fields: Any) -> RetentionPolicy:
        """Validate like the constructor, raising `ConfigError` with pydantic's reasons joined."""
        try:
            return cls(**fields)
        except ValidationError as exc:
            reasons = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
            raise ConfigError(f"invalid retention policy: {reasons}") from None

    def to_avro(self) -> dict[str, Any]:
        """The record as written to the policy topic (schema freight.v1.RetentionPolicy)."""
        return {
            "topic": self.topic,
            "groups": list(self.groups),
            "all_committed_groups": self.all_committed_groups,
            "exclude_groups": list(self.exclude_groups),
            "min_age_ms": round(self.min_age_s * 1000),
            "delete_records": self.delete_records,
            "orphan_grace_ms": round(self.orphan_grace_s * 1000),
            "orphan_stores": list(self.orphan_stores),
            "updated_at": self.updated_at,
        }

    @classmethod
    def from_avro(cls, rec: dict[str, Any]) -> RetentionPolicy:
        updated = rec.get("updated_at", 0)
        if isinstance(updated, datetime):
            updated = int(updated.timestamp() * 1000)
        return cls(
            topic=rec["topic"],
            groups=tuple(rec.get("groups") or ()),
            all_committed_groups=bool(rec.get("all_committed_groups", True)),
            exclude_groups=tuple(rec.get("exclude_groups") or ()),
            min_age_s=rec.get("min_age_ms", 0) / 1000,
            delete_records=bool(rec.get("delete_records", False)),
            orphan_grace_s=rec.get("orphan_grace_ms", 900_000) / 1000,
            orphan_stores=tuple(rec.get("orphan_stores") or ()),
            updated_at=int(updated),
        )

    def describe(self) -> dict[str, Any]:
        """A readable summary for tables and JSON."""
        return {
            "topic": self.topic,
            "groups": list(self.groups),
            "all_committed_groups": self.all_committed_groups,
            "exclude_groups": list(self.exclude_groups),
            "min_age": format_duration(self.min_age_s),
            "delete_records": self.delete_records,
            "orphan_grace": format_duration(self.orphan_grace_s),
            "orphan_stores": list(self.orphan_stores),
            "updated_at": datetime.fromtimestamp(self.updated_at / 1000).astimezone().isoformat(),
        }


class PolicyStore:
    """Read and write retention policies in the compacted policy topic of one cluster.

    The topic is a `CompactedTable`: a record that is not a valid policy (or is unsigned while
    `FREIGHT_CATALOG_KEY` is set) is skipped and reported, so one bad record never stops eviction of the
    other topics.
    """

    def __init__(
        self,
        settings: FreightSettings,
        *,
        serde: EventSerde | None = None,
        topic: str = POLICIES_TOPIC,
        admin: KafkaAdmin | None = None,
    ) -> None:
        self.settings = settings
        self.topic = topic
        self._serde = serde
        self.table: CompactedTable[RetentionPolicy] = CompactedTable(
            settings, topic, decode=self._decode, what="retention policy", admin=admin
        )

    @property
    def serde(self) -> EventSerde:
        if self._serde is None:
            from freight.schemas.serde import EventSerde

            self._serde = EventSerde.from_settings(self.settings)
        return self._serde

    def _decode(self, key: str, value: bytes) -> RetentionPolicy:
        policy = RetentionPolicy.from_avro(self.serde.decode_record(self.topic, value))
        if policy.topic != key:
            raise ValueError("the record's key and topic differ")
        return policy

    def put(self, policy: RetentionPolicy) -> RetentionPolicy:
        """Write (replace) the policy of `policy.topic`; waits for the broker's acknowledgement."""
        self.table.ensure_topic()
        self.table.put(policy.topic, self.serde.encode_record(self.topic, RETENTION_POLICY, policy.to_avro()))
        return policy

    def delete(self, topic: str) -> bool:
        """Remove the policy of `topic` (a tombstone); False if it had none."""
        existed = topic in self.refresh()
        if existed:
            self.table.delete(topic)
        return existed

    def refresh(self, timeout: float = 30.0) -> dict[str, RetentionPolicy]:
        """Read what was added to the policy topic since the last call; return topic -> policy."""
        return self.table.refresh(timeout)

    @property
    def rejected(self) -> list[RejectedRecord]:
        """Policy records skipped as invalid or unsigned (for `freight status`)."""
        return self.table.rejected

    def get(self, topic: str) -> RetentionPolicy | None:
        """The current policy of `topic`, or None."""
        return self.refresh().get(topic)

    def require(self, topic: str) -> RetentionPolicy:
        """The policy of `topic`, or a `ConfigError` saying how to set one."""
        found = self.get(topic)
        if found is None:
            raise ConfigError(
                f"topic {topic!r} has no retention policy, so the evictor leaves it alone; set one with "
                f"`freight evict policy set {topic} --all-committed` (or --group G)"
            )
        return found

    def close(self) -> None:
        self.table.close()

    def __enter__(self) -> PolicyStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
