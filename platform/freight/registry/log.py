"""The `_schemas` topic as the registry's log: topic setup, the reader that rebuilds state, the fenced writer.

* `ensure_topic` creates the topic if missing (one partition, `cleanup.policy=compact`) and refuses one with
  more partitions or without compaction, since both would break the replay.
* `LogReader` consumes the topic from the beginning (read-committed) in a thread and applies every record
  to the `StateStore`; `StateStore.wait_for(offset)` is how a write waits until it has read itself back.
* `LogWriter` writes with a transactional producer whose `transactional.id` is shared by every instance on
  the topic. `init_transactions` fences whoever wrote before, so at any moment at most one instance can
  commit; an instance that was fenced sees `WriterFencedError` and must take over again (after which it
  has read everything committed before) to write.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    IsolationLevel,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec

from freight.config import FreightSettings
from freight.errors import ConfigError
from freight.kafka.clients import base_config
from freight.registry.errors import StoreUnavailableError, WriteAbortedError, WriterFencedError
from freight.registry.records import Record, decode_record
from freight.registry.state import RegistryState

log = logging.getLogger(__name__)

TOPIC_CONFIG = {"cleanup.policy": "compact", "max.message.bytes": str(8 * 1024 * 1024)}
_FENCED_CODES = {
    getattr(KafkaError, name)
    for name in (
        "_FENCED",
        "PRODUCER_FENCED",
        "INVALID_PRODUCER_EPOCH",
        "TRANSACTIONAL_ID_AUTHORIZATION_FAILED",
    )
    if hasattr(KafkaError, name)
}


def ensure_topic(settings: FreightSettings, topic: str, timeout: float = 15.0) -> bool:
    """Create the log topic if missing; check an existing one. True if it was created."""
    admin = AdminClient(base_config(settings, quiet=True))
    # Create first and treat "already exists" as success: a metadata request for a missing topic could
    # auto-create it with the broker's defaults (delete policy) on clusters that allow that.
    try:  # like Confluent: three replicas where the cluster has three brokers
        replicas = max(1, min(3, len(admin.list_topics(timeout=timeout).brokers)))
    except KafkaException as exc:
        raise StoreUnavailableError(f"no broker answered ({exc.args[0].str()})") from exc
    futures = admin.create_topics(
        [NewTopic(topic, num_partitions=1, replication_factor=replicas, config=dict(TOPIC_CONFIG))],
        request_timeout=timeout,
    )
    created = True
    try:
        futures[topic].result(timeout=timeout)
    except TimeoutError:
        raise StoreUnavailableError(
            f"no broker answered within {timeout:g}s while creating {topic!r}"
        ) from None
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise StoreUnavailableError(
                f"cannot create the registry topic {topic!r}: {exc.args[0].str()}"
            ) from exc
        created = False
    info = _wait_visible(admin, topic, timeout)
    if len(info.partitions) != 1:
        raise ConfigError(
            f"the registry topic {topic!r} has {len(info.partitions)} partitions; it must have exactly 1 so "
            "that every instance replays the records in one order. Use another topic (--topic) or recreate "
            "it."
        )
    _check_compacted(admin, topic, timeout)
    return created


def _wait_visible(admin: AdminClient, topic: str, timeout: float) -> Any:
    end = time.monotonic() + timeout
    while True:
        try:
            info = admin.list_topics(topic=topic, timeout=timeout).topics.get(topic)
        except KafkaException as exc:
            raise StoreUnavailableError(
                f"cannot read the metadata of {topic!r}: {exc.args[0].str()}"
            ) from exc
        if info is not None and info.error is None and info.partitions:
            if all(p.leader >= 0 for p in info.partitions.values()):
                return info
        if time.monotonic() > end:
            raise StoreUnavailableError(
                f"the registry topic {topic!r} did not become available in {timeout:g}s"
            )
        time.sleep(0.05)


def _check_compacted(admin: AdminClient, topic: str, timeout: float) -> None:
    from confluent_kafka.admin import ConfigResource, ResourceType

    res = ConfigResource(ResourceType.TOPIC, topic)
    try:
        entries = admin.describe_configs([res], request_timeout=timeout)[res].result(timeout=timeout)
    except (KafkaException, TimeoutError) as exc:
        raise StoreUnavailableError(f"cannot read the configuration of {topic!r}: {exc}") from exc
    policy = str(entries["cleanup.policy"].value) if "cleanup.policy" in entries else ""
    if "compact" not in policy:
        raise ConfigError(
            f"the registry topic {topic!r} has cleanup.policy={policy!r}; it must be 'compact', or old "
            f"schemas would be deleted by retention. Set it with kafka-configs (--alter --add-config "
            f"cleanup.policy=compact) or use another topic (--topic)."
        )


def log_end_offset(settings: FreightSettings, topic: str, timeout: float = 10.0) -> int:
    """The last stable offset of the log: every committed record lies below it."""
    admin = AdminClient(base_config(settings, quiet=True))
    tp = TopicPartition(topic, 0)
    futures = admin.list_offsets(
        {tp: OffsetSpec.latest()}, isolation_level=IsolationLevel.READ_COMMITTED, request_timeout=timeout
    )
    try:
        return int(next(iter(futures.values())).result(timeout=timeout).offset)
    except (KafkaException, TimeoutError) as exc:
        raise StoreUnavailableError(f"cannot read the end offset of {topic!r}: {exc}") from exc


class StateStore:
    """The state, the lock that guards it, and the log position it reflects."""

    def __init__(self) -> None:
        self.state = RegistryState()
        self._cond = threading.Condition(threading.RLock())
        self.position = 0  # next offset to apply
        self.applied = 0

    @contextlib.contextmanager
    def read(self) -> Iterator[RegistryState]:
        """Hold the lock while looking at the state."""
        with self._cond:
            yield self.state

    def apply(self, offset: int, record: Record | None) -> None:
        """Apply the record at `offset` (None: an unreadable record, skipped) and advance the position."""
        with self._cond:
            if record is not None:
                self.state.apply(record)
                self.applied += 1
            else:
                self.state.skipped += 1
            self.position = max(self.position, offset + 1)
            self._cond.notify_all()

    def advance(self, position: int) -> None:
        """The reader reached `position` (end of the partition) without records in between."""
        with self._cond:
            if position > self.position:
                self.position = position
                self._cond.notify_all()

    def wait_for(self, position: int, timeout: float) -> bool:
        """Block until everything below `position` is applied; False on timeout."""
        end = time.monotonic() + timeout
        with self._cond:
            while self.position < position:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True


class LogReader:
    """Consumes the log from the beginning into a StateStore, in a daemon thread."""

    def __init__(self, settings: FreightSettings, topic: str, store: StateStore, instance: str) -> None:
        self.topic = topic
        self.store = store
        conf = base_config(settings)
        conf.update(
            {
                "group.id": f"freight-registry-reader-{instance}",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "isolation.level": "read_committed",
                "auto.offset.reset": "earliest",
                "fetch.wait.max.ms": 100,
                "fetch.max.bytes": 64 * 1024 * 1024,
            }
        )
        self._conf = conf
        self._consumer: Consumer | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"registry-reader-{topic}", daemon=True)
        self.last_error: str | None = None

    def start(self) -> None:
        self._consumer = Consumer(self._conf)
        self._consumer.assign([TopicPartition(self.topic, 0, OFFSET_BEGINNING)])
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        if self._consumer is not None:
            with contextlib.suppress(Exception):
                self._consumer.close()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        assert self._consumer is not None
        while not self._stop.is_set():
            try:
                # consume() waits for its whole batch or the timeout; poll() returns at the first record, so
                # block in poll() and then drain whatever else is already fetched without waiting.
                first = self._consumer.poll(0.2)
                messages = [] if first is None else [first, *self._consumer.consume(1000, timeout=0)]
            except Exception as exc:  # never let the reader die: the registry would serve stale state
                self.last_error = str(exc)
                log.exception("reading %s failed", self.topic)
                time.sleep(0.5)
                continue
            for msg in messages:
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        self.store.advance(msg.offset() or 0)
                    else:
                        self.last_error = err.str()
                        log.warning("reading %s: %s", self.topic, err.str())
                    continue
                offset = msg.offset()
                if offset is None:
                    continue
                try:
                    record: Record | None = decode_record(msg.key(), msg.value())
                except Exception as exc:
                    log.warning(
                        "skipping record %s@%d that is not a registry record: %s", self.topic, offset, exc
                    )
                    record = None
                try:
                    self.store.apply(offset, record)
                except Exception:
                    log.exception("applying record %s@%d failed; skipped", self.topic, offset)
                    self.store.apply(offset, None)


class _FencingIsRoutine(logging.Filter):
    """librdkafka reports being fenced as FATAL; for the registry it is a routine hand-over (INFO)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "fenced by a newer instance" in record.getMessage() and record.levelno > logging.INFO:
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


WRITER_LOGGER = logging.getLogger("freight.registry.producer")
WRITER_LOGGER.addFilter(_FencingIsRoutine())


class LogWriter:
    """Commits records in Kafka transactions under a transactional.id shared by all instances."""

    def __init__(self, settings: FreightSettings, topic: str, timeout: float = 30.0) -> None:
        self.topic = topic
        self.timeout = timeout
        self._conf = base_config(settings)
        self._conf.update(
            {
                "transactional.id": f"freight-registry-{topic}",
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 0,
                # The coordinator answers CONCURRENT_TRANSACTIONS while it finishes the previous commit;
                # a short backoff retries within milliseconds instead of 100.
                "retry.backoff.ms": 5,
                "transaction.timeout.ms": 60_000,
                "message.max.bytes": 8 * 1024 * 1024,
                "logger": WRITER_LOGGER,
            }
        )
        self._producer: Producer | None = None

    @property
    def active(self) -> bool:
        """True while this instance holds the writer role as far as it knows."""
        return self._producer is not None

    def take_over(self) -> None:
        """Become the writer: fence every other producer with our transactional.id."""
        self.drop()
        producer = Producer(self._conf)
        try:
            producer.init_transactions(self.timeout)
        except KafkaException as exc:
            raise StoreUnavailableError(f"cannot become the writer of {self.topic!r}: {exc.args[0]}") from exc
        self._producer = producer

    def drop(self) -> None:
        """Forget the producer (after fencing or on shutdown)."""
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                producer.flush(1)

    def write(self, records: Sequence[Record]) -> int:
        """Commit `records` in one transaction; return the offset of the last one."""
        producer = self._producer
        if producer is None:
            raise WriterFencedError("this instance does not hold the writer role")
        offsets: list[int] = []
        failures: list[str] = []

        def delivered(err: KafkaError | None, msg: Any) -> None:
            if err is not None:
                failures.append(err.str())
            else:
                offsets.append(int(msg.offset()))

        try:
            producer.begin_transaction()
            for record in records:
                key, value = record.encode()
                producer.produce(self.topic, key=key, value=value, on_delivery=delivered)
            producer.commit_transaction(self.timeout)
        except KafkaException as exc:
            self._recover(producer, exc)
        producer.poll(0)
        if failures or len(offsets) != len(records):
            raise StoreUnavailableError(f"the log did not acknowledge the write: {failures or 'no report'}")
        return max(offsets)

    def _recover(self, producer: Producer, exc: KafkaException) -> None:
        """Classify a failed transaction: fenced (take over again), aborted (retry), or store trouble."""
        err = exc.args[0] if exc.args else None
        if not isinstance(err, KafkaError) or err.fatal() or err.code() in _FENCED_CODES:
            self.drop()
            raise WriterFencedError(f"another registry instance took over the writer role ({exc})") from exc
        try:
            producer.abort_transaction(self.timeout)
        except KafkaException:
            self.drop()
        detail = f"{err.name()}: {err.str()}"
        if err.txn_requires_abort() and not err.retriable():
            # e.g. the coordinator aborted us while another instance was taking over: plan the write again.
            raise WriteAbortedError(f"the transaction was aborted ({detail})") from exc
        raise StoreUnavailableError(f"writing to {self.topic!r} failed: {detail}") from exc
