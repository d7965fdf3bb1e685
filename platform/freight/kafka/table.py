"""`CompactedTable`: a key -> value table kept in a compacted, single-partition Kafka topic.

Freight keeps its small shared state this way: store configs (`_freight_stores`) and retention policies
(`_freight_retention`). One class does it for both: it creates the topic, writes a value or a tombstone and
waits for the broker's acknowledgement, and reads the topic incrementally to its current end.

Every record is untrusted (docs/security.md). A record that does not decode, has a key that is not UTF-8,
is unsigned while `FREIGHT_CATALOG_KEY` is set, or (for a pinned table) tries to replace an entry already
read, is skipped: counted in `freight_internal_records_rejected_total`, logged, and kept in `rejected` for
`freight status`. It never stops the read, so one bad record cannot stop eviction or resolution.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition

from freight.config import FreightSettings
from freight.errors import DeliveryError, FreightError
from freight.kafka.admin import KafkaAdmin
from freight.kafka.clients import consumer_config, producer_config
from freight.kafka.errors import translate_kafka_error
from freight.kafka.signing import SIGNATURE_HEADER, header_value, sign, verify
from freight.metrics import REJECTED_RECORDS

V = TypeVar("V")
LOG = logging.getLogger("freight.kafka.table")
COMPACTED = {"cleanup.policy": "compact", "min.compaction.lag.ms": "0", "segment.ms": "3600000"}
#: How many rejected records a table remembers for `freight status`.
REJECTED_KEPT = 100


@dataclass(frozen=True)
class RejectedRecord:
    """An internal record that was skipped, and why (never its value: it may be anything)."""

    topic: str
    offset: int
    key: str
    reason: str


class CompactedTable(Generic[V]):
    """A key -> value view of one compacted topic, read incrementally (see the module docstring).

    Args:
        settings: The cluster (and `catalog_key`) to use.
        topic: The compacted topic, created with one partition on first use.
        decode: Turns (key, value bytes) into a value; any exception it raises rejects the record.
        what: What a value is, for messages ("store config").
        pin_first: Keep the first value read for a key; a later unsigned value whose `identity` differs is
            rejected (one with the same identity replaces it).
        identity: What must not change under `pin_first` (default: the whole value).
        tombstones: "apply" removes a key on a tombstone; "signed-only" applies only authenticated ones
            (the others are reported and ignored).
        admin: An admin client to reuse.
    """

    def __init__(
        self,
        settings: FreightSettings,
        topic: str,
        *,
        decode: Callable[[str, bytes], V],
        what: str,
        pin_first: bool = False,
        identity: Callable[[V], Any] | None = None,
        tombstones: Literal["apply", "signed-only"] = "apply",
        admin: KafkaAdmin | None = None,
    ) -> None:
        self.settings = settings
        self.topic = topic
        self.what = what
        self._decode = decode
        self._pin_first = pin_first
        self._identity: Callable[[V], Any] = identity or (lambda value: value)
        self._tombstones = tombstones
        self._admin = admin
        self._secret = (
            settings.catalog_key.get_secret_value().encode() if settings.catalog_key is not None else None
        )
        self._values: dict[str, V] = {}
        self._position = 0
        self._consumer: Consumer | None = None
        self._lock = threading.Lock()
        self._ready = False
        self._rejected: deque[RejectedRecord] = deque(maxlen=REJECTED_KEPT)
        self.rejected_total = 0

    # Writing ------------------------------------------------------------------------------------------
    def ensure_topic(self) -> None:
        """Create the topic (one partition, compacted) unless it exists."""
        if not self._ready:
            (self._admin or KafkaAdmin(self.settings)).create_internal_topic(self.topic, config=COMPACTED)
            self._ready = True

    def put(self, key: str, value: bytes) -> None:
        """Write `value` under `key` and wait for the broker's acknowledgement (DeliveryError if none)."""
        self._write(key, value)

    def delete(self, key: str) -> None:
        """Write a tombstone for `key` and wait for the acknowledgement."""
        self._write(key, None)

    def _write(self, key: str, value: bytes | None) -> None:
        self.ensure_topic()
        raw_key = key.encode()
        headers: list[tuple[str, str | bytes | None]] = []
        if self._secret is not None:
            headers.append((SIGNATURE_HEADER, sign(self._secret, self.topic, raw_key, value)))
        producer = Producer(producer_config(self.settings, {"linger.ms": 0}))
        errors: list[str] = []
        producer.produce(
            self.topic,
            key=raw_key,
            value=value,
            headers=headers or None,
            on_delivery=lambda err, _msg: errors.append(str(err)) if err else None,
        )
        if producer.flush(30) or errors:
            raise DeliveryError(
                f"could not write the {self.what} {key!r} to {self.topic!r}: "
                f"{errors or 'no acknowledgement'}; "
                f"is the broker at {self.settings.kafka_bootstrap} up? (`freight status`)"
            )

    # Reading ------------------------------------------------------------------------------------------
    def refresh(self, timeout: float = 30.0) -> dict[str, V]:
        """Read what was added since the last call (the whole topic the first time); return key -> value.

        Raises:
            FreightError: the read did not reach the end of the topic within `timeout` seconds.
        """
        self.ensure_topic()
        with self._lock:
            consumer = self._reader()
            try:
                _low, high = consumer.get_watermark_offsets(TopicPartition(self.topic, 0), timeout=10)
            except KafkaException as exc:
                raise translate_kafka_error(exc, self.settings.kafka_bootstrap, f"read {self.topic}") from exc
            deadline = time.monotonic() + timeout
            while self._position < high:
                if time.monotonic() > deadline:
                    raise FreightError(
                        f"reading {self.topic!r} stalled at offset {self._position} of {high} after "
                        f"{timeout:g}s; is the broker at {self.settings.kafka_bootstrap} healthy? "
                        "(`freight status`)"
                    )
                msgs = consumer.consume(500, timeout=0.2)
                for msg in msgs:
                    if msg.error() is not None:
                        continue
                    self._position = (msg.offset() or 0) + 1
                    self._apply(msg.offset() or 0, msg.key(), msg.value(), msg.headers())
            return dict(self._values)

    def get(self, key: str) -> V | None:
        """The value of `key` as last read (no Kafka round trip)."""
        return self._values.get(key)

    @property
    def signed(self) -> bool:
        """True if this table signs and authenticates its records (FREIGHT_CATALOG_KEY is set)."""
        return self._secret is not None

    @property
    def rejected(self) -> list[RejectedRecord]:
        """The most recent skipped records (up to REJECTED_KEPT)."""
        return list(self._rejected)

    def _reader(self) -> Consumer:
        if self._consumer is None:
            conf = consumer_config(
                self.settings, f"freight-reader-{self.topic}", {"enable.auto.commit": False}
            )
            self._consumer = Consumer(conf)
            self._consumer.assign([TopicPartition(self.topic, 0, OFFSET_BEGINNING)])
        return self._consumer

    def _apply(self, offset: int, raw_key: bytes | None, value: bytes | None, headers: Any) -> None:
        try:
            key = (raw_key or b"").decode()
        except UnicodeDecodeError:
            self._reject(offset, repr(raw_key[:40] if raw_key else raw_key), "key is not UTF-8")
            return
        signed = False
        if self._secret is not None:
            if not verify(self._secret, self.topic, raw_key or b"", value, header_value(headers)):
                self._reject(offset, key, "unsigned or wrongly signed (FREIGHT_CATALOG_KEY is set)")
                return
            signed = True
        if value is None:
            if self._tombstones == "apply" or signed:
                self._values.pop(key, None)
            elif key in self._values:
                self._reject(offset, key, "unauthenticated tombstone ignored (the entry stays)")
            return
        try:
            decoded = self._decode(key, value)
        except Exception as exc:  # anything: the record is not ours to trust
            self._reject(offset, key, f"not a valid {self.what} ({type(exc).__name__})")
            return
        if (
            self._pin_first
            and not signed
            and key in self._values
            and self._identity(self._values[key]) != self._identity(decoded)
        ):
            self._reject(offset, key, f"tries to replace the {self.what} already read (first one kept)")
            return
        self._values[key] = decoded

    def _reject(self, offset: int, key: str, reason: str) -> None:
        self._rejected.append(RejectedRecord(self.topic, offset, key[:200], reason))
        self.rejected_total += 1
        REJECTED_RECORDS.labels(self.topic, reason.split(" (")[0]).inc()
        if self.rejected_total <= 20 or self.rejected_total % 1000 == 0:  # bounded log volume
            LOG.warning(
                "skipped record %s[0]@%d (key %r): %s (%d skipped so far)",
                self.topic, offset, key[:200], reason, self.rejected_total,
            )  # fmt: skip

    def close(self) -> None:
        """Close the reader (a later refresh opens a new one and reads from the start)."""
        with self._lock:
            if self._consumer is not None:
                self._consumer.close()
                self._consumer = None
                self._position = 0
                self._values.clear()
