"""`freight status`: one report of what the platform is doing, gathered from the services themselves.

It asks the broker (health, topics with their records, consumer groups with lag per partition), the schema
registry and the S3 endpoint (health), the store catalog (each store's objects and bytes, from a listing
bounded in time and count) and the eviction watermark per partition. Everything is read-only: nothing is
created, committed or deleted. `collect` returns a plain, JSON-ready `StatusReport`; the CLI renders it.
"""

from __future__ import annotations

import contextlib
import threading
import time
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field
from typing import Any

from freight import metrics
from freight.config import FreightSettings
from freight.errors import FreightError
from freight.redact import redact_text, redact_url

#: How to start each service when it does not answer (printed with the report and in the error).
START_HINTS = {
    "broker": "start it with `freight dev up`, or point FREIGHT_KAFKA_BOOTSTRAP / --bootstrap at a cluster",
    "registry": (
        "start it with `freight dev up` (or `freight registry serve --bootstrap HOST:PORT`), or set "
        "FREIGHT_SCHEMA_REGISTRY_URL / --registry to a running registry"
    ),
    "s3": "start the local endpoint with `freight dev up`, or fix FREIGHT_S3_ENDPOINT_URL",
}


@dataclass
class ServiceHealth:
    """Whether one service answers; `ok` is None when it is not configured (S3 without an endpoint)."""

    name: str
    address: str
    ok: bool | None
    detail: str = ""
    hint: str = ""


@dataclass
class TopicStatus:
    """A topic's partitions and the records it holds (high watermark minus log start, summed)."""

    topic: str
    partitions: int
    records: int
    offsets: list[dict[str, int]] = field(default_factory=list)  # partition, low, high


@dataclass
class GroupPartition:
    """One partition a group committed on: its committed offset (None: never) and lag."""

    topic: str
    partition: int
    committed: int | None
    high: int
    lag: int


@dataclass
class GroupStatus:
    """A consumer group, its members and its lag per partition."""

    group: str
    state: str
    members: int
    partitions: list[GroupPartition] = field(default_factory=list)
    error: str = ""

    @property
    def total_lag(self) -> int:
        return sum(p.lag for p in self.partitions)


@dataclass
class StoreStatus:
    """A store from the catalog: kind, where, and what it holds (objects and bytes listed)."""

    name: str
    kind: str
    location: str
    objects: int | None = None
    bytes: int | None = None
    truncated: bool = False
    detail: str = ""


@dataclass
class Watermark:
    """Eviction watermark of one partition: objects below `offset` may be deleted.

    `source` is "policy" when the topic has a retention policy (the evictor's own watermark, checkpoint and
    what blocks it), else "min-committed" (the smallest offset any group committed: no evictor policy).
    """

    topic: str
    partition: int
    offset: int | None
    low: int
    groups: list[str] = field(default_factory=list)
    source: str = "min-committed"
    checkpoint: int | None = None
    blocking: list[str] = field(default_factory=list)

    @property
    def evictable(self) -> int:
        """Events between the log start (or the evictor's checkpoint) and the watermark."""
        start = self.low if self.checkpoint is None else max(self.checkpoint, self.low)
        return 0 if self.offset is None else max(self.offset - start, 0)


@dataclass
class EvictionStatus:
    """Where eviction stands per partition, and the retention policies found."""

    detail: str
    watermarks: list[Watermark] = field(default_factory=list)
    policies: dict[str, dict[str, Any]] = field(default_factory=dict)
    error: str = ""


@dataclass
class StatusReport:
    """Everything `freight status` shows."""

    broker: ServiceHealth
    registry: ServiceHealth
    s3: ServiceHealth
    brokers: int = 0
    topics: list[TopicStatus] = field(default_factory=list)
    groups: list[GroupStatus] = field(default_factory=list)
    stores: list[StoreStatus] = field(default_factory=list)
    stores_detail: str = ""
    #: Records of the internal topics (store catalog, retention policies) skipped as garbage, unsigned or
    #: conflicting: someone else writes there (docs/security.md).
    rejected_records: list[dict[str, Any]] = field(default_factory=list)
    #: Internal topics with fewer replicas than min(3, brokers), or replicas out of sync.
    replication_warnings: list[str] = field(default_factory=list)
    eviction: EvictionStatus | None = None
    elapsed_s: float = 0.0
    all_topics: set[str] = field(default_factory=set, repr=False)

    @property
    def down(self) -> list[ServiceHealth]:
        """Configured services that do not answer."""
        return [s for s in (self.broker, self.registry, self.s3) if s.ok is False]

    def as_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        del doc["all_topics"]
        for group, data in zip(self.groups, doc["groups"], strict=True):
            data["total_lag"] = group.total_lag
        if self.eviction is not None:
            for mark, data in zip(self.eviction.watermarks, doc["eviction"]["watermarks"], strict=True):
                data["evictable"] = mark.evictable
        return doc


@dataclass
class StatusOptions:
    """What to include and how long to wait."""

    topics: list[str] | None = None  # only these topics (their groups too); None: all
    groups: list[str] | None = None  # only these groups; None: all
    internal: bool = False  # show topics whose name starts with '_'
    timeout: float = 3.0  # per service check / admin request
    store_objects: int = 100_000  # stop listing a store after this many objects
    store_seconds: float = 2.0  # ... or after this long
    stores: bool = True
    store_names: list[str] | None = None  # only these stores; None: all in the catalog


# -- services --------------------------------------------------------------------------------------------


def check_broker(settings: FreightSettings, timeout: float) -> tuple[ServiceHealth, int]:
    from freight.kafka import KafkaAdmin

    address = settings.kafka_bootstrap
    try:
        count = KafkaAdmin(settings, timeout=timeout, quiet=True).ping(timeout)
    except FreightError as exc:
        return ServiceHealth("broker", address, False, _first_sentence(str(exc)), START_HINTS["broker"]), 0
    return ServiceHealth("broker", address, True, f"{count} broker(s)"), count


def check_registry(settings: FreightSettings, timeout: float) -> ServiceHealth:
    """GET /freight/health (a Freight registry) or /subjects (any Confluent-compatible one)."""
    import httpx

    url = settings.schema_registry_url.rstrip("/")
    shown = redact_url(url) or url  # a password in the URL never reaches the output
    auth = None
    if settings.schema_registry_auth is not None:
        user, _, password = settings.schema_registry_auth.get_secret_value().partition(":")
        auth = (user, password)
    try:
        tls = settings.registry_ssl_context()
        with httpx.Client(base_url=url, timeout=timeout, auth=auth, verify=tls or True) as client:
            response = client.get("/freight/health")
            if response.status_code == 404:
                response = client.get("/subjects")
    except httpx.HTTPError as exc:
        return ServiceHealth(
            "registry", shown, False, redact_text(f"{type(exc).__name__}: {exc}"), START_HINTS["registry"]
        )
    if response.status_code >= 400:
        return ServiceHealth(
            "registry",
            shown,
            False,
            f"HTTP {response.status_code}: {response.text[:200]}",
            START_HINTS["registry"],
        )
    try:
        body = response.json()
    except ValueError:
        body = None
    instance = body.get("instance") if isinstance(body, dict) else None
    return ServiceHealth("registry", shown, True, f"instance {instance}" if instance else "answers")


def check_s3(settings: FreightSettings, timeout: float) -> ServiceHealth:
    """Any HTTP answer from FREIGHT_S3_ENDPOINT_URL counts as up (credentials are the stores' business)."""
    import httpx

    endpoint = settings.s3_endpoint_url
    if not endpoint:
        return ServiceHealth("s3", "-", None, "not configured (FREIGHT_S3_ENDPOINT_URL unset: AWS)")
    try:
        response = httpx.get(endpoint, timeout=timeout)
    except httpx.HTTPError as exc:
        return ServiceHealth("s3", endpoint, False, f"{type(exc).__name__}: {exc}", START_HINTS["s3"])
    return ServiceHealth("s3", endpoint, True, f"HTTP {response.status_code}")


def _first_sentence(text: str) -> str:
    head, sep, _ = text.partition(". ")
    return head + ("." if sep else "")


# -- Kafka -----------------------------------------------------------------------------------------------


class _Kafka:
    """Batched admin requests (one round of futures for every partition or group at once)."""

    def __init__(self, settings: FreightSettings, timeout: float) -> None:
        from confluent_kafka.admin import AdminClient

        from freight.kafka.clients import base_config

        self.settings = settings
        self.timeout = timeout
        self.client = AdminClient(base_config(settings, quiet=True))

    def _result(self, future: Future[Any], action: str) -> Any:
        from confluent_kafka import KafkaException

        from freight.kafka.errors import translate_kafka_error

        try:
            return future.result(timeout=self.timeout * 3)
        except KafkaException as exc:
            raise translate_kafka_error(exc, self.settings.kafka_bootstrap, action) from exc

    def topics(self) -> dict[str, int]:
        md = self.client.list_topics(timeout=self.timeout)
        return {name: len(t.partitions) for name, t in md.topics.items() if t.error is None}

    def watermarks(self, topics: dict[str, int]) -> dict[tuple[str, int], tuple[int, int]]:
        """(log start, high watermark) of every partition of `topics` (name -> partition count)."""
        from confluent_kafka import TopicPartition
        from confluent_kafka.admin import OffsetSpec

        parts = [TopicPartition(t, p) for t, n in topics.items() for p in range(n)]
        if not parts:
            return {}
        found: dict[str, dict[tuple[str, int], int]] = {}
        for name, spec in (("low", OffsetSpec.earliest()), ("high", OffsetSpec.latest())):
            futures = self.client.list_offsets({tp: spec for tp in parts}, request_timeout=self.timeout)
            found[name] = {
                (tp.topic, tp.partition): self._result(f, f"list offsets of {tp.topic}").offset
                for tp, f in futures.items()
            }
        return {tp: (found["low"][tp], found["high"][tp]) for tp in found["low"]}

    def groups(self) -> list[str]:
        result = self._result(
            self.client.list_consumer_groups(request_timeout=self.timeout), "list consumer groups"
        )
        return sorted(g.group_id for g in result.valid)

    def describe(self, groups: list[str]) -> dict[str, tuple[str, int] | str]:
        """group -> (state, members), or an error message."""
        if not groups:
            return {}
        futures = self.client.describe_consumer_groups(groups, request_timeout=self.timeout)
        out: dict[str, tuple[str, int] | str] = {}
        for group, future in futures.items():
            try:
                desc = self._result(future, f"describe group {group!r}")
                out[group] = (str(desc.state.name), len(desc.members))
            except FreightError as exc:
                out[group] = str(exc)
        return out

    def committed(self, groups: list[str]) -> dict[str, dict[tuple[str, int], int] | str]:
        """group -> {(topic, partition): committed offset}, or an error message (one request per group)."""
        from confluent_kafka import ConsumerGroupTopicPartitions

        pending = {
            g: self.client.list_consumer_group_offsets(
                [ConsumerGroupTopicPartitions(g)], request_timeout=self.timeout
            )[g]
            for g in groups
        }
        out: dict[str, dict[tuple[str, int], int] | str] = {}
        for group, future in pending.items():
            try:
                res = self._result(future, f"read committed offsets of group {group!r}")
                out[group] = {
                    (tp.topic, tp.partition): tp.offset for tp in res.topic_partitions if tp.offset >= 0
                }
            except FreightError as exc:
                out[group] = str(exc)
        return out


def _visible(name: str, options: StatusOptions) -> bool:
    if options.topics is not None:
        return name in options.topics
    return options.internal or not name.startswith("_")


def _group_status(
    group: str,
    described: tuple[str, int] | str,
    committed: dict[tuple[str, int], int] | str,
    partitions: dict[str, int],
    marks: dict[tuple[str, int], tuple[int, int]],
    options: StatusOptions,
) -> GroupStatus:
    state, members = described if isinstance(described, tuple) else ("UNKNOWN", 0)
    status = GroupStatus(group, state, members, error=described if isinstance(described, str) else "")
    if isinstance(committed, str):
        status.error = committed
        return status
    topics = sorted({t for t, _ in committed if options.topics is None or t in options.topics})
    for topic in topics:
        for p in range(partitions.get(topic, 0)):
            low, high = marks.get((topic, p), (0, 0))
            offset = committed.get((topic, p))
            start = low if offset is None else max(offset, low)
            status.partitions.append(GroupPartition(topic, p, offset, high, max(high - start, 0)))
    metrics.record_lag(group, {(p.topic, p.partition): p.lag for p in status.partitions})
    return status


# -- stores ----------------------------------------------------------------------------------------------


def _location(kind: str, options: dict[str, Any]) -> str:
    if kind == "file":
        return str(options.get("root", ""))
    if kind == "s3":
        return f"s3://{options.get('bucket', '')}/{options.get('prefix', '')}".rstrip("/")
    if kind == "tensor":
        return str(options.get("address") or options.get("name") or "")
    return str(options.get("name", ""))


def store_usage(store: Any, max_objects: int, max_seconds: float) -> tuple[int, int, bool]:
    """(objects, bytes, truncated) of a store, listing for at most `max_objects` / `max_seconds`.

    The listing runs in a daemon thread, so a slow or hung endpoint costs `max_seconds` at most. A complete
    count also sets the `freight_store_objects` / `freight_store_bytes` gauges.
    """
    counts = [0, 0]
    done = threading.Event()
    failure: list[BaseException] = []
    stop = threading.Event()

    def walk() -> None:
        try:
            for info in store.connector.list():
                counts[0] += 1
                counts[1] += info.size
                if counts[0] >= max_objects or stop.is_set():
                    return
        except BaseException as exc:  # reported to the caller
            failure.append(exc)
        finally:
            done.set()

    threading.Thread(target=walk, name=f"freight-status-list-{store.name}", daemon=True).start()
    finished = done.wait(max_seconds)
    stop.set()
    if failure:
        raise failure[0]
    objects, nbytes = counts
    truncated = not finished or objects >= max_objects
    if not truncated:
        metrics.store_metrics(store.name).set_size(objects, nbytes)
    return objects, nbytes, truncated


def _one_store(cfg: Any, settings: FreightSettings, options: StatusOptions) -> StoreStatus:
    from freight.stores import Store
    from freight.stores.trust import check_store_config

    status = StoreStatus(cfg.name, cfg.connector, _location(cfg.connector, cfg.options))
    if cfg.connector == "memory":
        status.detail = "in-process store: its objects live in the producing process"
        return status
    try:
        check_store_config(cfg, settings)  # never open what a foreign record names
        store = Store.from_config(cfg)
    except Exception as exc:  # a store this process cannot open is reported, not fatal
        status.detail = f"cannot open: {exc}"
        return status
    try:
        objects, nbytes, truncated = store_usage(store, options.store_objects, options.store_seconds)
        status.objects, status.bytes, status.truncated = objects, nbytes, truncated
        if truncated:
            limit = f"{objects:,} objects or {options.store_seconds:g}s"
            status.detail = f"listing stopped after {limit}: at least this much"
    except Exception as exc:
        status.detail = f"cannot list: {type(exc).__name__}: {exc}"
    finally:
        summary = getattr(store.connector, "transport_summary", None)  # tensor stores: how bytes move
        if callable(summary):
            status.detail = "; ".join(d for d in (status.detail, f"transport: {summary()}") if d)
        with contextlib.suppress(Exception):  # closing a half-open connector must not hide the report
            store.close()
    return status


def _stores(settings: FreightSettings, options: StatusOptions, report: StatusReport) -> list[StoreStatus]:
    """Every store of the catalog (or those named), listed concurrently, each bounded in time; the
    catalog's and the policy topic's skipped records go into `report.rejected_records`."""
    from concurrent.futures import ThreadPoolExecutor

    from freight.eviction.policy import PolicyStore
    from freight.stores.catalog import StoreCatalog

    catalog = StoreCatalog(settings)
    try:
        configs = catalog.refresh()
        report.rejected_records += [asdict(r) for r in catalog.rejected]
    finally:
        catalog.close()
    policies = PolicyStore(settings)
    try:
        policies.refresh()
        report.rejected_records += [asdict(r) for r in policies.rejected]
    finally:
        policies.close()
    names = sorted(n for n in configs if options.store_names is None or n in options.store_names)
    if not names:
        return []
    with ThreadPoolExecutor(min(8, len(names)), thread_name_prefix="freight-status-store") as pool:
        return list(pool.map(lambda n: _one_store(configs[n], settings, options), names))


# -- eviction --------------------------------------------------------------------------------------------


def _evictor_marks(settings: FreightSettings, visible: set[str]) -> EvictionStatus:
    """The evictor's view of each topic with a retention policy (`freight.eviction.summary`: no scan)."""
    from freight.eviction import summary

    out = EvictionStatus("")
    for topic in summary(settings)["topics"]:
        if topic["topic"] not in visible:
            continue
        out.policies[topic["topic"]] = topic["policy"]
        if topic.get("error"):
            out.error = f"{topic['topic']}: {topic['error']}"
        for p in topic["partitions"]:
            mark = Watermark(
                topic["topic"],
                p["partition"],
                p["watermark"],
                p["low"],
                [g["group"] for g in p["groups"]],
                "policy",
            )
            mark.checkpoint, mark.blocking = p["checkpoint"], list(p["blocking"])
            out.watermarks.append(mark)
    return out


def _eviction(
    settings: FreightSettings,
    report: StatusReport,
    marks: dict[tuple[str, int], tuple[int, int]],
    visible: set[str],
    options: StatusOptions,
) -> EvictionStatus:
    """Per partition: the evictor's watermark where a retention policy exists, else the min committed."""
    from freight.eviction.policy import POLICIES_TOPIC

    status = EvictionStatus("")
    if POLICIES_TOPIC in report.all_topics and report.registry.ok:
        try:
            status = _evictor_marks(settings, visible)
        except Exception as exc:  # the evictor's view is optional; the fallback below still shows offsets
            status.error = f"cannot read the evictor's state: {type(exc).__name__}: {exc}"
    by_tp: dict[tuple[str, int], Watermark] = {}
    for group in report.groups:
        for p in group.partitions:
            if p.topic not in visible or p.topic in status.policies:
                continue
            low = marks.get((p.topic, p.partition), (0, 0))[0]
            mark = by_tp.setdefault((p.topic, p.partition), Watermark(p.topic, p.partition, None, low))
            mark.groups.append(group.group)
            offset = low if p.committed is None else p.committed
            mark.offset = offset if mark.offset is None else min(mark.offset, offset)
    status.watermarks = sorted([*status.watermarks, *by_tp.values()], key=lambda w: (w.topic, w.partition))
    status.detail = (
        f"{len(status.policies)} topic(s) with a retention policy (the evictor's watermark); "
        if status.policies
        else ""
    ) + "no evictor policy elsewhere: the smallest offset any group committed"
    return status


# -- the report ------------------------------------------------------------------------------------------


def collect(settings: FreightSettings, options: StatusOptions | None = None) -> StatusReport:
    """Gather the whole report; a broker that is down leaves the Kafka sections empty."""
    options = options or StatusOptions()
    t0 = time.perf_counter()
    result: dict[str, ServiceHealth] = {}
    checks = [
        threading.Thread(
            target=lambda: result.__setitem__("registry", check_registry(settings, options.timeout))
        ),
        threading.Thread(target=lambda: result.__setitem__("s3", check_s3(settings, options.timeout))),
    ]
    for thread in checks:
        thread.start()
    broker, count = check_broker(settings, options.timeout)
    for thread in checks:
        thread.join()
    report = StatusReport(broker, result["registry"], result["s3"], brokers=count)
    if not broker.ok:
        report.elapsed_s = time.perf_counter() - t0
        return report

    from freight.kafka import KafkaAdmin

    kafka = _Kafka(settings, options.timeout)
    try:
        report.replication_warnings = KafkaAdmin(settings, timeout=options.timeout).replication_warnings()
    except FreightError as exc:
        report.replication_warnings = [f"could not check replication: {exc}"]
    partitions = kafka.topics()
    report.all_topics = set(partitions)
    visible = {t for t in partitions if _visible(t, options)}
    names = [g for g in kafka.groups() if options.groups is None or g in options.groups]
    described = kafka.describe(names)
    committed = kafka.committed(names)
    wanted = set(visible)
    for offsets in committed.values():
        if isinstance(offsets, dict):
            wanted |= {t for t, _ in offsets if t in partitions}
    marks = kafka.watermarks({t: partitions[t] for t in sorted(wanted)})
    for topic in sorted(visible):
        per_partition = [
            {"partition": p, "low": marks[(topic, p)][0], "high": marks[(topic, p)][1]}
            for p in range(partitions[topic])
            if (topic, p) in marks
        ]
        records = sum(o["high"] - o["low"] for o in per_partition)
        report.topics.append(TopicStatus(topic, partitions[topic], records, per_partition))
    report.groups = [
        _group_status(g, described.get(g, "not described"), committed.get(g, {}), partitions, marks, options)
        for g in names
    ]
    report.groups = [g for g in report.groups if options.topics is None or g.partitions]

    from freight.stores.catalog import STORES_TOPIC

    if not options.stores:
        report.stores_detail = "not listed (--no-stores)"
    elif STORES_TOPIC not in partitions:
        report.stores_detail = (
            f"no store catalog yet (topic {STORES_TOPIC} is created on a producer's first send)"
        )
    elif not report.registry.ok:
        report.stores_detail = "the store catalog cannot be read without the schema registry"
    else:
        try:
            report.stores = _stores(settings, options, report)
        except FreightError as exc:
            report.stores_detail = f"cannot read the store catalog: {exc}"
    report.eviction = _eviction(settings, report, marks, visible, options)
    report.elapsed_s = time.perf_counter() - t0
    return report
