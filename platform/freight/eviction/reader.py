"""Read offset ranges of partitions, decoded, with one assigned consumer; commit the evictor checkpoint.

The evictor, the orphan sweep and the status report all read "partition p from offset a up to (not
including) b". `RangeReader` assigns the partitions (no group membership, so two evictors sharing a checkpoint
group never rebalance each other), hands out decoded records in batches, and pauses a partition once its
range is done. Offsets with no record (transaction markers) are recognised from the consumer's position, so a
range ending on one still completes. Records that are not Freight events come back with `event=None`.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Iterable, Mapping
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from freight.config import FreightSettings
from freight.errors import EventDecodeError, FreightError
from freight.kafka import consumer_config, translate_kafka_error
from freight.kafka.checkpoint import Checkpoint, parse_checkpoint
from freight.schemas.events import ObjectEvent
from freight.schemas.serde import EventSerde

TP = tuple[str, int]


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One record of a range: its coordinates and the decoded event (None if it is not one)."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    event: ObjectEvent | None
    problem: str | None = None


class RangeReader:
    """Reads offset ranges with a consumer of group `group_id` that never joins the group."""

    def __init__(self, settings: FreightSettings, serde: EventSerde, group_id: str) -> None:
        self.settings = settings
        self.serde = serde
        self.group_id = group_id
        conf = consumer_config(
            settings,
            group_id,
            {"enable.auto.commit": False, "enable.partition.eof": False, "auto.offset.reset": "earliest"},
        )
        self._consumer = Consumer(conf)
        self._finished: set[TP] = set()
        self._paused: set[TP] = set()
        self._known_topics: set[str] = set()

    def finish(self, tp: TP) -> None:
        """Stop reading `tp` (the caller will not use more of it in this read)."""
        self._finished.add(tp)

    def read(
        self, ranges: Mapping[TP, tuple[int, int]], *, batch: int = 500, stall_s: float = 60.0
    ) -> Generator[list[LogRecord], None, None]:
        """Batches of records of `ranges` (tp -> [start, end)), in offset order per partition."""
        todo = {tp: se for tp, se in ranges.items() if se[0] < se[1]}
        self._finished = set()
        if not todo:
            return
        position = {tp: start for tp, (start, _end) in todo.items()}
        try:
            # Partition leaders known before assigning: otherwise librdkafka's first fetch of a topic new to
            # this consumer waits about a second for its metadata.
            for topic in {t for t, _ in todo} - self._known_topics:
                self._consumer.list_topics(topic, timeout=10)
                self._known_topics.add(topic)
            self._consumer.assign([TopicPartition(t, p, s) for (t, p), (s, _e) in todo.items()])
        except KafkaException as exc:
            raise translate_kafka_error(exc, self.settings.kafka_bootstrap, "assign partitions") from exc
        last_progress = time.monotonic()
        try:
            while True:
                for tp in list(todo):
                    if tp in self._finished or position[tp] >= todo[tp][1]:
                        self._drop(tp, todo)
                if not todo:
                    return
                try:
                    msgs = fetch(self._consumer, batch, 0.2)
                except KafkaException as exc:
                    raise translate_kafka_error(exc, self.settings.kafka_bootstrap, "read events") from exc
                out: list[LogRecord] = []
                for msg in msgs:
                    err = msg.error()
                    if err is not None:
                        if err.code() == KafkaError._PARTITION_EOF:
                            continue
                        raise translate_kafka_error(
                            KafkaException(err), self.settings.kafka_bootstrap, "read events"
                        )
                    tp = (msg.topic() or "", msg.partition() or 0)
                    offset = msg.offset() or 0
                    if tp not in todo or tp in self._finished or offset < position[tp]:
                        continue
                    if offset >= todo[tp][1]:
                        position[tp] = todo[tp][1]
                        continue
                    position[tp] = offset + 1
                    out.append(self._record(tp, offset, msg.timestamp()[1], msg.value()))
                if out:
                    last_progress = time.monotonic()
                    yield out
                    continue
                self._advance_by_position(todo, position)
                if time.monotonic() - last_progress > stall_s:
                    where = ", ".join(f"{t}[{p}]@{position[(t, p)]}<{todo[(t, p)][1]}" for t, p in todo)
                    raise FreightError(f"reading events stalled for {stall_s:g}s at {where}")
        finally:
            self._unassign()

    def _record(self, tp: TP, offset: int, timestamp: int, value: bytes | None) -> LogRecord:
        if value is None:
            return LogRecord(tp[0], tp[1], offset, timestamp, None, "tombstone")
        try:
            return LogRecord(tp[0], tp[1], offset, timestamp, self.serde.decode(tp[0], value))
        except EventDecodeError as exc:
            return LogRecord(tp[0], tp[1], offset, timestamp, None, str(exc))

    def _advance_by_position(self, todo: dict[TP, tuple[int, int]], position: dict[TP, int]) -> None:
        """Offsets without records (transaction markers) move the consumer's position but yield nothing."""
        try:
            now = self._consumer.position([TopicPartition(t, p) for t, p in todo])
        except KafkaException:
            return
        for tp in now:
            key = (tp.topic, tp.partition)
            if key in position and tp.offset is not None and tp.offset > position[key]:
                position[key] = min(tp.offset, todo[key][1])

    def _drop(self, tp: TP, todo: dict[TP, tuple[int, int]]) -> None:
        todo.pop(tp, None)
        try:
            self._consumer.pause([TopicPartition(*tp)])
            self._paused.add(tp)
        except KafkaException:
            pass

    def _unassign(self) -> None:
        """Drop the assignment; paused partitions are resumed first so that the next read fetches them."""
        try:
            if self._paused:
                self._consumer.resume([TopicPartition(*tp) for tp in self._paused])
            self._consumer.unassign()
        except KafkaException:
            pass
        self._paused.clear()

    def commit(self, offsets: Mapping[TP, tuple[int, str]]) -> None:
        """Commit these next-offsets (with metadata) for the group, synchronously."""
        if not offsets:
            return
        tps = [TopicPartition(t, p, o, metadata=m) for (t, p), (o, m) in offsets.items()]
        try:
            self._consumer.commit(offsets=tps, asynchronous=False)
        except KafkaException as exc:
            raise translate_kafka_error(
                exc, self.settings.kafka_bootstrap, f"commit the checkpoint of group {self.group_id!r}"
            ) from exc

    def checkpoints(self, tps: Iterable[TP]) -> dict[TP, Checkpoint]:
        """The group's checkpoints on these partitions (absent: never committed)."""
        wanted = [TopicPartition(t, p) for t, p in tps]
        if not wanted:
            return {}
        try:
            result = self._consumer.committed(wanted, timeout=10)
        except KafkaException as exc:
            raise translate_kafka_error(
                exc, self.settings.kafka_bootstrap, f"read the checkpoint of group {self.group_id!r}"
            ) from exc
        return {
            (tp.topic, tp.partition): parse_checkpoint(tp.offset, tp.metadata)
            for tp in result
            if tp.offset >= 0
        }

    def close(self) -> None:
        self._consumer.close()


def fetch(consumer: Consumer, limit: int, timeout: float) -> list[Message]:
    """Records already fetched (up to `limit`) without waiting; if none, wait up to `timeout` for the first.

    (`consume(n, timeout)` alone waits for n records or the whole timeout, which would delay every partial
    batch, i.e. every short range, by the timeout.)
    """
    msgs: list[Message] = consumer.consume(limit, timeout=0)
    if msgs:
        return msgs
    first = consumer.poll(timeout)
    if first is None:
        return []
    return [first, *consumer.consume(limit - 1, timeout=0)] if limit > 1 else [first]
