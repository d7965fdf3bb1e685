"""Admin operations Freight needs: topics, offsets, groups, readiness.

Wraps `confluent_kafka.admin.AdminClient` with typed results and timeouts, and turns an unreachable broker
into `BrokerUnavailableError` instead of a hang or a raw librdkafka error.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import (
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
    OffsetSpec,
    ResourceType,
)

from freight.config import FreightSettings, load_settings
from freight.errors import ConfigError, FreightError
from freight.kafka.clients import base_config
from freight.kafka.errors import ConnectionErrors, broker_unavailable, translate_kafka_error

#: How long a topic unknown to the answering broker is asked for again before it is reported missing
#: (metadata of a topic created a moment ago reaches a cluster's brokers one by one).
TOPIC_SETTLE_S = 1.0


@dataclass(frozen=True)
class TopicInfo:
    """A topic's partition count and (when asked for) its configuration."""

    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PartitionOffsets:
    """Log start, high watermark and (for a group) committed offset and lag of one partition."""

    topic: str
    partition: int
    low: int
    high: int
    committed: int | None = None

    @property
    def lag(self) -> int:
        """Records the group has not committed past; a group that never committed lags by all of them."""
        start = self.committed if self.committed is not None and self.committed >= 0 else self.low
        return max(self.high - max(start, self.low), 0)


@dataclass(frozen=True)
class GroupMember:
    """One member of a consumer group and the partitions assigned to it (kafka-consumer-groups --members)."""

    consumer_id: str
    client_id: str
    host: str
    assignment: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class GroupDescription:
    """A consumer group's state and its members with their assignments."""

    group: str
    state: str
    members: tuple[GroupMember, ...]

    def owner(self, topic: str, partition: int) -> GroupMember | None:
        """The member that holds `topic`'s `partition`, if one does."""
        return next((m for m in self.members if (topic, partition) in m.assignment), None)


@dataclass(frozen=True)
class PartitionReplicas:
    """Leader, replicas and in-sync replicas (broker ids) of one partition, as kafka-topics --describe."""

    partition: int
    leader: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


_COORDINATOR_BUSY = {"COORDINATOR_LOAD_IN_PROGRESS", "COORDINATOR_NOT_AVAILABLE", "NOT_COORDINATOR"}


class KafkaAdmin:
    """Typed admin helpers bound to one cluster."""

    def __init__(
        self, settings: FreightSettings | None = None, *, timeout: float = 10.0, quiet: bool = False
    ) -> None:
        self.settings = settings or load_settings()
        self.timeout = timeout
        self._conf = base_config(self.settings, quiet=quiet)
        self.connection_errors = ConnectionErrors()
        self._conf.setdefault("error_cb", self.connection_errors)
        self._admin = AdminClient(self._conf)

    @property
    def bootstrap(self) -> str:
        return self.settings.kafka_bootstrap

    def _wait(self, future: Any, action: str) -> Any:
        try:
            return future.result(timeout=self.timeout)
        except KafkaException as exc:
            raise translate_kafka_error(exc, self.bootstrap, action, self._last_connection_error()) from exc
        except TimeoutError as exc:
            raise broker_unavailable(
                self.bootstrap, f"timed out after {self.timeout:g}s: {action}", self._last_connection_error()
            ) from exc

    def _wait_group(self, call: Callable[[], Any], action: str) -> Any:
        """`call()`'s future's result, asked again while the group coordinator is loading or moving.

        A broker that just started answers COORDINATOR_LOAD_IN_PROGRESS for a few seconds; Kafka's tools
        retry it, so a `freight groups` command right after `freight dev up` must too.
        """
        end = time.monotonic() + self.timeout
        while True:
            try:
                return call().result(timeout=self.timeout)
            except KafkaException as exc:
                err = exc.args[0] if exc.args else None
                name = err.name() if isinstance(err, KafkaError) else ""
                if name in _COORDINATOR_BUSY and time.monotonic() < end:
                    time.sleep(0.2)
                    continue
                raise translate_kafka_error(
                    exc, self.bootstrap, action, self._last_connection_error()
                ) from exc
            except TimeoutError as exc:
                raise broker_unavailable(
                    self.bootstrap,
                    f"timed out after {self.timeout:g}s: {action}",
                    self._last_connection_error(),
                ) from exc

    def _last_connection_error(self) -> Any:
        """The last authentication/TLS/resolution error librdkafka reported (served by a poll)."""
        self._admin.poll(0)
        return self.connection_errors.last

    def _metadata(self, topic: str | None = None, timeout: float | None = None) -> Any:
        """Cluster metadata (of one topic, or all); an unreachable broker is BrokerUnavailableError."""
        try:
            if topic is None:
                return self._admin.list_topics(timeout=timeout or self.timeout)
            return self._admin.list_topics(topic=topic, timeout=timeout or self.timeout)
        except KafkaException as exc:
            raise translate_kafka_error(
                exc, self.bootstrap, "fetch cluster metadata", self._last_connection_error()
            ) from exc

    def _topic_metadata(self, topic: str) -> Any | None:
        """One topic's metadata, or None if the cluster does not know it.

        In a cluster of several brokers a topic created a moment ago may still be unknown to the broker
        that answers the next metadata request (each learns of it from the controller on its own time; a
        clean-clone CI run saw `topics describe` fail right after a create). An unknown topic is asked for
        again for up to `TOPIC_SETTLE_S` before it is reported missing, so a read right after a create
        rides out that lag; a name that really is missing costs that much more before its error.
        """
        end = time.monotonic() + TOPIC_SETTLE_S
        while True:
            t = self._metadata(topic).topics.get(topic)
            if t is not None and t.error is None:
                return t
            if time.monotonic() >= end:
                return None
            time.sleep(0.1)

    def ping(self, timeout: float | None = None) -> int:
        """Return the number of brokers in the cluster; raise BrokerUnavailableError if none answers."""
        md = self._metadata(timeout=timeout)
        if not md.brokers:
            raise broker_unavailable(
                self.bootstrap, "metadata lists no brokers", self._last_connection_error()
            )
        return len(md.brokers)

    def wait_ready(self, deadline_s: float) -> None:
        """Block until a client sees the cluster ready (metadata and a controller), or raise."""
        end = time.monotonic() + deadline_s
        last: Exception | None = None
        while time.monotonic() < end:
            try:
                self.ping(timeout=min(2.0, max(end - time.monotonic(), 0.1)))
                self._wait(self._admin.describe_cluster(request_timeout=2.0), "describe the cluster")
                return
            except FreightError as exc:
                last = exc
                time.sleep(0.1)
        raise broker_unavailable(
            self.bootstrap, f"not ready after {deadline_s:g}s: {last}", self._last_connection_error()
        )

    def create_topic(
        self,
        name: str,
        partitions: int = 1,
        *,
        config: Mapping[str, str] | None = None,
        exist_ok: bool = True,
        replication_factor: int = -1,
    ) -> bool:
        """Create a topic and wait until the cluster's metadata shows it.

        Args:
            name: the topic.
            partitions: its partition count (>= 1).
            config: topic configs (e.g. `{"cleanup.policy": "compact"}`).
            exist_ok: an existing topic is not an error.
            replication_factor: replicas per partition; -1 leaves it to the broker's
                `default.replication.factor`.

        Returns:
            True if created, False if it already existed (with `exist_ok`).

        Raises:
            ConfigError: partitions < 1. FreightError subclasses for broker errors (translated).
        """
        if partitions < 1:
            raise ConfigError(f"topic {name!r}: partitions must be >= 1, got {partitions}")
        topic = NewTopic(
            name, num_partitions=partitions, replication_factor=replication_factor, config=dict(config or {})
        )
        futures = self._admin.create_topics([topic], request_timeout=self.timeout)
        try:
            futures[name].result(timeout=self.timeout)
        except KafkaException as exc:
            err = exc.args[0]
            if exist_ok and getattr(err, "code", lambda: None)() == 36:  # TOPIC_ALREADY_EXISTS
                return False
            raise translate_kafka_error(exc, self.bootstrap, f"create topic {name!r}") from exc
        self._wait_topic_visible(name)
        return True

    def create_internal_topic(self, name: str, *, config: Mapping[str, str] | None = None) -> bool:
        """Create one of Freight's internal topics (one partition), replicated for production.

        Internal topics get min(3, brokers) replicas, and `min.insync.replicas` 2 where the cluster has 3 or
        more brokers, whatever the broker defaults say: losing one broker must not make every proxy
        unresolvable. Returns False if the topic already existed.
        """
        brokers = self.ping()
        replicas = min(3, brokers)
        conf = dict(config or {})
        if brokers >= 3:
            conf.setdefault("min.insync.replicas", "2")
        return self.create_topic(name, 1, config=conf, replication_factor=replicas)

    def _wait_topic_visible(self, name: str) -> None:
        end = time.monotonic() + self.timeout
        while time.monotonic() < end:
            t = self._metadata(name).topics.get(name)
            if t is not None and t.error is None and t.partitions:
                if all(p.leader >= 0 for p in t.partitions.values()):
                    return
            time.sleep(0.05)

    def delete_topics(self, names: Iterable[str]) -> None:
        """Delete topics and wait until the cluster metadata no longer lists them."""
        names = list(names)
        if not names:
            return
        for name, fut in self._admin.delete_topics(names, request_timeout=self.timeout).items():
            self._wait(fut, f"delete topic {name!r}")
        end = time.monotonic() + self.timeout
        while time.monotonic() < end and set(names) & set(
            self._admin.list_topics(timeout=self.timeout).topics
        ):
            time.sleep(0.05)

    def topic_exists(self, name: str) -> bool:
        return name in self._metadata().topics

    def list_topics(self, *, internal: bool = False) -> dict[str, TopicInfo]:
        md = self._metadata()
        return {
            name: TopicInfo(name, len(t.partitions))
            for name, t in sorted(md.topics.items())
            if internal or not name.startswith("__")
        }

    def replication_warnings(self, prefixes: tuple[str, ...] = ("_freight", "_schemas")) -> list[str]:
        """What is under-replicated among the internal topics (names starting with `prefixes`).

        An internal topic wants min(3, brokers) replicas with every replica in sync: with one broker down,
        a topic on a single replica leaves every fresh worker unable to resolve a proxy.
        """
        md = self._metadata()
        wanted = min(3, len(md.brokers))
        out: list[str] = []
        for name, topic in sorted(md.topics.items()):
            if not name.startswith(prefixes) or topic.error is not None:
                continue
            replicas = min((len(p.replicas) for p in topic.partitions.values()), default=0)
            lagging = [p.id for p in topic.partitions.values() if len(p.isrs) < len(p.replicas)]
            if replicas < wanted:
                out.append(
                    f"internal topic {name} has {replicas} replica(s) on a cluster of {len(md.brokers)} "
                    f"broker(s) (wants {wanted}): raise it with kafka-reassign-partitions"
                )
            if lagging:
                out.append(f"internal topic {name}: partition(s) {lagging} have replicas out of sync")
        return out

    def describe_topic(self, name: str) -> TopicInfo:
        """Partition count and non-default configuration of one topic."""
        t = self._topic_metadata(name)
        if t is None:
            raise ConfigError(f"topic {name!r} does not exist; create it with `freight topics create {name}`")
        res = ConfigResource(ResourceType.TOPIC, name)
        entries = self._wait(self._admin.describe_configs([res])[res], f"describe topic {name!r}")
        topic_level = ConfigSource.DYNAMIC_TOPIC_CONFIG.value
        config = {k: str(v.value) for k, v in entries.items() if v.source == topic_level}
        return TopicInfo(name, len(t.partitions), config)

    def partitions(self, topic: str) -> list[int]:
        """The partition ids of `topic`.

        Args:
            topic: the topic.

        Returns:
            Its partitions, sorted.

        Raises:
            ConfigError: the topic does not exist.
        """
        t = self._topic_metadata(topic)
        if t is None:
            raise ConfigError(f"topic {topic!r} does not exist")
        return sorted(t.partitions)

    def watermarks(self, topic: str) -> dict[int, tuple[int, int]]:
        """(log start, high watermark) per partition.

        Args:
            topic: the topic.

        Returns:
            partition -> (first offset still in the log, next offset to be written).
        """
        parts = self.partitions(topic)
        lows = self._list_offsets(topic, parts, OffsetSpec.earliest())
        highs = self._list_offsets(topic, parts, OffsetSpec.latest())
        return {p: (lows[p], highs[p]) for p in parts}

    def _list_offsets(self, topic: str, parts: list[int], spec: Any) -> dict[int, int]:
        req = {TopicPartition(topic, p): spec for p in parts}
        futures = self._admin.list_offsets(req, request_timeout=self.timeout)
        return {tp.partition: self._wait(f, f"list offsets of {topic}").offset for tp, f in futures.items()}

    def offsets_for_time(self, topic: str, timestamp_ms: int) -> dict[int, int]:
        """Where each partition reaches a point in time.

        Args:
            topic: the topic.
            timestamp_ms: epoch milliseconds.

        Returns:
            partition -> the earliest offset with a timestamp >= `timestamp_ms` (the high watermark if none).
        """
        parts = self.partitions(topic)
        return self._list_offsets(topic, parts, OffsetSpec.for_timestamp(timestamp_ms))

    def list_groups(self) -> list[str]:
        result = self._wait(self._admin.list_consumer_groups(request_timeout=self.timeout), "list groups")
        return sorted(g.group_id for g in result.valid)

    def group_state(self, group: str) -> tuple[str, int]:
        """(state name, member count) of a consumer group."""
        desc = self._wait_group(
            lambda: self._admin.describe_consumer_groups([group], request_timeout=self.timeout)[group],
            f"describe group {group!r}",
        )
        return str(desc.state.name), len(desc.members)

    def describe_group(self, group: str) -> GroupDescription:
        """State and members (consumer id, client id, host, assigned partitions) of a consumer group.

        Args:
            group: the group id.

        Returns:
            The description (a group the broker does not know is DEAD with no members).
        """
        desc = self._wait_group(
            lambda: self._admin.describe_consumer_groups([group], request_timeout=self.timeout)[group],
            f"describe group {group!r}",
        )
        members = tuple(
            GroupMember(
                consumer_id=str(m.member_id),
                client_id=str(m.client_id),
                host=str(m.host).lstrip("/"),
                assignment=tuple(
                    sorted(
                        (tp.topic, tp.partition)
                        for tp in (m.assignment.topic_partitions if m.assignment is not None else [])
                    )
                ),
            )
            for m in desc.members
        )
        return GroupDescription(group, str(desc.state.name), members)

    def delete_group(self, group: str) -> None:
        """Delete a consumer group (its committed offsets go too); it must have no active members.

        Raises:
            ConfigError: the group does not exist, or still has members (the message says what to do).
        """
        try:
            self._wait_group(
                lambda: self._admin.delete_consumer_groups([group], request_timeout=self.timeout)[group],
                f"delete group {group!r}",
            )
        except FreightError as exc:
            cause = exc.__cause__
            err = cause.args[0] if isinstance(cause, KafkaException) and cause.args else None
            name = err.name() if isinstance(err, KafkaError) else ""
            if name == "GROUP_ID_NOT_FOUND":
                raise ConfigError(
                    f"no consumer group named {group!r}: `freight groups list` shows the groups"
                ) from exc
            if name == "NON_EMPTY_GROUP":
                raise ConfigError(
                    f"group {group!r} still has active members; stop its consumers before deleting it"
                ) from exc
            raise

    def partition_replicas(self, topic: str) -> list[PartitionReplicas]:
        """Leader, replicas and ISR of every partition of `topic` (from the cluster metadata)."""
        t = self._topic_metadata(topic)
        if t is None:
            raise ConfigError(
                f"topic {topic!r} does not exist; create it with `freight topics create {topic}`"
            )
        return [
            PartitionReplicas(p.id, p.leader, tuple(p.replicas), tuple(p.isrs))
            for p in sorted(t.partitions.values(), key=lambda p: p.id)
        ]

    def add_partitions(self, topic: str, total: int) -> None:
        """Grow `topic` to `total` partitions (Kafka cannot shrink a topic).

        Raises:
            ConfigError: `total` is not more than the topic has now.
        """
        now = len(self.partitions(topic))
        if total <= now:
            raise ConfigError(
                f"topic {topic!r} has {now} partition(s); --partitions must be more than that "
                "(Kafka cannot remove partitions)"
            )
        futures = self._admin.create_partitions([NewPartitions(topic, total)], request_timeout=self.timeout)
        self._wait(futures[topic], f"add partitions to {topic!r}")
        end = time.monotonic() + self.timeout
        while time.monotonic() < end and len(self.partitions(topic)) < total:
            time.sleep(0.05)

    def alter_topic_config(self, topic: str, set_: Mapping[str, str], delete: Iterable[str] = ()) -> None:
        """Set and delete topic-level configs, leaving the others as they are (incremental alter).

        Raises:
            ConfigError: the topic does not exist, or the broker refuses a key or value (named).
        """
        self.partitions(topic)  # a missing topic is a clear error
        entries = [
            ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in set_.items()
        ] + [ConfigEntry(k, None, incremental_operation=AlterConfigOpType.DELETE) for k in delete]
        if not entries:
            return
        res = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=entries)
        futures = self._admin.incremental_alter_configs([res], request_timeout=self.timeout)
        try:
            futures[res].result(timeout=self.timeout)
        except KafkaException as exc:
            err = exc.args[0] if exc.args else None
            if isinstance(err, KafkaError) and err.name() in (
                "INVALID_CONFIG",
                "INVALID_REQUEST",
                "POLICY_VIOLATION",
            ):
                raise ConfigError(f"topic {topic!r}: the broker refused the config: {err.str()}") from exc
            raise translate_kafka_error(exc, self.bootstrap, f"alter configs of {topic!r}") from exc

    def committed(self, group: str, topic: str | None = None) -> dict[tuple[str, int], int]:
        """Committed offsets of a group.

        Args:
            group: the consumer group.
            topic: only this topic (None: all).

        Returns:
            (topic, partition) -> next offset to read; partitions never committed are absent.
        """
        req = ConsumerGroupTopicPartitions(group)
        futures = self._admin.list_consumer_group_offsets([req], request_timeout=self.timeout)
        res = self._wait(futures[group], f"read committed offsets of group {group!r}")
        return {
            (tp.topic, tp.partition): tp.offset
            for tp in res.topic_partitions
            if tp.offset >= 0 and (topic is None or tp.topic == topic)
        }

    def group_offsets(self, group: str, topic: str) -> list[PartitionOffsets]:
        """Per partition of `topic`: low, high, the group's committed offset, and lag."""
        committed = self.committed(group, topic)
        return [
            PartitionOffsets(topic, p, low, high, committed.get((topic, p)))
            for p, (low, high) in sorted(self.watermarks(topic).items())
        ]

    def alter_group_offsets(self, group: str, offsets: Mapping[tuple[str, int], int]) -> None:
        """Set committed offsets of a group that has no active members (like kafka-consumer-groups).

        Args:
            group: the consumer group.
            offsets: (topic, partition) -> the next offset the group will read.

        Raises:
            ConfigError: the group has active members (stop its consumers first).
        """
        state, members = self.group_state(group)
        if members:
            raise ConfigError(
                f"group {group!r} is {state} with {members} active member(s); stop its consumers before "
                "resetting offsets"
            )
        tps = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
        req = ConsumerGroupTopicPartitions(group, tps)
        futures = self._admin.alter_consumer_group_offsets([req], request_timeout=self.timeout)
        self._wait(futures[group], f"reset offsets of group {group!r}")

    def delete_records(self, before: Mapping[tuple[str, int], int]) -> None:
        """Delete records below the given offsets (advances the log start offset).

        Args:
            before: (topic, partition) -> the first offset to keep.
        """
        if not before:
            return
        req = [TopicPartition(t, p, o) for (t, p), o in before.items()]
        futures = self._admin.delete_records(req, request_timeout=self.timeout)
        for tp, fut in futures.items():
            self._wait(fut, f"delete records of {tp.topic}[{tp.partition}]")

    def probe_consumer(self) -> Consumer:
        """A group-less consumer for reading records by offset (caller closes it)."""
        conf = dict(self._conf)
        conf.update({"group.id": "freight-probe", "enable.auto.commit": False})
        return Consumer(conf)
