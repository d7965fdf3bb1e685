"""`StreamProducer`: write objects to stores and their events to Kafka.

For each object: serialize it; if it is smaller than the inline threshold, put it inside the event;
otherwise write it to the topic's store first and put a reference in the event. Only then produce the event
(Avro, Confluent wire format, keyed by stream id so a stream stays in one partition, in order) through an
idempotent producer. An event therefore never points at bytes that were not written; if the event is not
acknowledged the object is deleted again and the failure surfaces on the send's future and at the next
`flush()`. Nothing is dropped silently: filtered sends are counted.

`send()` returns a `SendResult` (`stream/delivery.py`): `result()` gives where the event landed (or raises
why it did not), `done()` checks without waiting. Where an object goes (resident, inline or stored) is the
store's decision (`Store.place`). Delivery reports are served on later sends, on `flush()`/`close()` and
by `result()` itself, so no background thread competes with the sending thread for the GIL.

ProxyStore's hooks are kept: `filter_` (drop an item by its metadata), `batch_size` and `aggregator`
(combine N objects of a stream into one before storing). Batching never loses a send's options: each batched
send keeps its eviction mode, serializer and metadata; an aggregated batch is closed early rather than mix
eviction modes or serializers, and keeps every item's metadata under `freight.batch_metadata` (JSON) when
they differ.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from freight import tracing
from freight.config import FreightSettings, resolve_settings
from freight.connectors.keys import safe_key_part
from freight.errors import ConfigError, DeliveryError
from freight.kafka import produce_when_room, producer_config
from freight.schemas.events import (
    EventKind,
    EvictionMode,
    InlinePayload,
    ObjectEvent,
    ObjectRef,
)
from freight.stores.resolver import default_resolver
from freight.stores.store import InlineObject, place_serialized
from freight.stream.delivery import (
    DONE,
    FAILED,
    FILTERED,
    RecordPosition,
    SendResult,
    certainly_not_written,
    chain,
    failure_error,
    refused_error,
)

if TYPE_CHECKING:
    from freight.schemas.serde import EventSerde
    from freight.stores import SerializerRegistry, Store, StoredObject

__all__ = ["ProducerStats", "RecordPosition", "SendResult", "StreamProducer"]

log = logging.getLogger(__name__)


@dataclass
class ProducerStats:
    """Counters of one producer: what moved where."""

    events: int = 0
    objects: int = 0
    inline_objects: int = 0
    bulk_bytes: int = 0
    end_of_streams: int = 0
    filtered: int = 0
    failed: int = 0
    acked: int = 0


@dataclass(slots=True)
class _Batched:
    """One send waiting for its batch, with every option it was sent with."""

    obj: Any
    meta: dict[str, str]
    mode: EvictionMode
    serializer: str | None
    result: SendResult


@dataclass
class _Pending:
    """Sends waiting for a batch to fill (batch_size > 1), in send order."""

    items: list[_Batched] = field(default_factory=list)


class StreamProducer:
    """Send objects into streams on Kafka topics (see the module docstring).

    Args:
        stores: topic -> `Store` (the key None: the default store); without one, objects travel inline.
        settings: cluster, registry and defaults (None: from the environment, `FREIGHT_*`).
        bootstrap: Kafka bootstrap servers; wins over `settings`.
        registry_url: the schema registry's URL; wins over `settings`.
        producer_id: written into every event (default: a random id).
        inline_threshold: objects smaller than this many bytes travel inside the event (None: settings').
        evict: the default eviction mode of sends ("watermark", "on-resolve", "retention", "never", or
            ProxyStore's True / False).
        filter_: drops a send when it returns True for the send's metadata (counted in `stats.filtered`).
        batch_size: objects of one stream sent together (1: each at once).
        aggregator: combines a batch's objects into one stored object (None: each is stored).
        kafka_config: librdkafka producer overrides.
        serde: the event serde (None: one for the registry).
        serializers: the serializer registry (None: the default one, pickle as settings allow).
        publish_stores: publish each store's configuration to `_freight_stores` so consumers find it.
        create_topics: partitions of a topic created on first send when missing (None: a missing topic
            is an error).
    """

    def __init__(
        self,
        stores: Mapping[str | None, Store] | None = None,
        *,
        settings: FreightSettings | None = None,
        bootstrap: str | None = None,
        registry_url: str | None = None,
        producer_id: str | None = None,
        inline_threshold: int | None = None,
        evict: EvictionMode | str | bool = EvictionMode.WATERMARK,
        filter_: Callable[[Mapping[str, str]], bool] | None = None,
        batch_size: int = 1,
        aggregator: Callable[[list[Any]], Any] | None = None,
        kafka_config: Mapping[str, Any] | None = None,
        serde: EventSerde | None = None,
        serializers: SerializerRegistry | None = None,
        publish_stores: bool = True,
        create_topics: int | None = 1,
    ) -> None:
        self.settings = resolve_settings(settings, bootstrap=bootstrap, registry_url=registry_url)
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        self.stores: dict[str | None, Store] = dict(stores or {})
        self.producer_id = producer_id or uuid.uuid4().hex[:12]
        self.inline_threshold = (
            self.settings.inline_threshold if inline_threshold is None else inline_threshold
        )
        self.default_evict = EvictionMode.parse(evict)
        self.filter = filter_
        self.batch_size = batch_size
        self.aggregator = aggregator
        self.stats = ProducerStats()
        self._serde = serde
        self._serializers = serializers
        self._publish_stores = publish_stores
        self._create_partitions = create_topics
        self._ready_topics: set[str] = set()
        self._published: set[str] = set()
        self._sequences: dict[tuple[str, str], itertools.count[int]] = {}
        self._sends = 0
        # Per-topic [events, bulk bytes, failures] not yet added to the Prometheus counters (added in bulk
        # every 256 sends and on flush: a locked counter increment per event would cost more than the send).
        self._unreported: dict[str, list[int]] = {}
        self._pending: dict[tuple[str, str], _Pending] = {}
        self._keys = itertools.count()
        self._key_prefixes: dict[str, str] = {}
        self._lock = threading.Lock()
        self._failures: list[BaseException] = []
        self._closed = False
        for store in self.stores.values():
            default_resolver().register(store, settings=self.settings)
        tracing.instrument_from_settings(self.settings.tracing)
        conf = producer_config(self.settings, dict(kafka_config or {}))
        self._delivery_settings: dict[str, str] = {
            k: str(conf[k])
            for k in ("delivery.timeout.ms", "message.timeout.ms", "message.max.bytes")
            if k in conf
        }
        self._producer = Producer(conf)

    # Plumbing -----------------------------------------------------------------------------------------
    @property
    def serde(self) -> EventSerde:
        if self._serde is None:
            from freight.schemas.serde import EventSerde

            self._serde = EventSerde.from_settings(self.settings)
        return self._serde

    @property
    def serializers(self) -> SerializerRegistry:
        if self._serializers is None:
            from freight.stores import SerializerRegistry

            self._serializers = SerializerRegistry(allow_pickle=self.settings.allow_pickle)
        return self._serializers

    def store_for(self, topic: str) -> Store | None:
        """The store objects sent to `topic` go to.

        Args:
            topic: the Kafka topic.

        Returns:
            The topic's own store, else the default (key None), else None (objects travel inline).
        """
        return self.stores.get(topic, self.stores.get(None))

    def _publish(self, store: Store) -> None:
        if self._publish_stores and store.name not in self._published:
            from freight.stores.catalog import StoreCatalog

            StoreCatalog(self.settings, serde=self.serde).publish(store.config())
            self._published.add(store.name)

    def _next_sequence(self, topic: str, stream: str) -> int:
        counter = self._sequences.get((topic, stream))
        if counter is None:
            counter = self._sequences.setdefault((topic, stream), itertools.count())
        return next(counter)  # atomic under the GIL: safe from several sending threads

    # Sending ------------------------------------------------------------------------------------------
    def send(
        self,
        topic: str,
        obj: Any,
        *,
        stream: str = "default",
        metadata: Mapping[str, str] | None = None,
        evict: EvictionMode | str | bool | None = None,
        serializer: str | None = None,
    ) -> SendResult:
        """Store `obj` (or inline it) and produce its event; the result resolves when Kafka acknowledges.

        With `batch_size` > 1 the object waits for its batch (sent when full, by `flush`, `end_stream`,
        `close`, or by waiting on its result) and keeps every option given here. Raises at once for a store
        write that fails (nothing is produced then; a batched send fails its result instead); a failed
        delivery fails the result and is raised again by the next `flush()`.

        Args:
            topic: the Kafka topic (created on first send when missing, see `create_topics`).
            obj: the object; stored, or inlined below the inline threshold.
            stream: the stream id (the Kafka key: a stream stays in one partition, in order).
            metadata: string pairs carried in the event (what `filter_` sees).
            evict: "watermark", "on-resolve", "retention", "never", or ProxyStore's True (one-time use:
                on-resolve) / False (kept: never); None: the producer's default.
            serializer: a serializer name (None: the registry's choice for the object's type).

        Returns:
            A `SendResult` that resolves when Kafka acknowledges the event.
        """
        if self._closed:
            self._check_open()
        _check_names(topic, stream)
        meta = {str(k): str(v) for k, v in metadata.items()} if metadata else {}
        mode = self.default_evict if evict is None else EvictionMode.parse(evict)
        if self.filter is not None and self.filter(meta):
            self.stats.filtered += 1
            dropped = SendResult(self, topic)
            dropped._finish(FILTERED, None, None)
            return dropped
        if self.batch_size > 1:
            return self._enqueue(
                topic, stream, _Batched(obj, meta, mode, serializer, SendResult(self, topic))
            )
        return self._send_one(topic, stream, obj, meta, mode, serializer)

    def send_batch(
        self,
        topic: str,
        objs: Iterable[Any],
        *,
        stream: str = "default",
        metadata: Mapping[str, str] | None = None,
        evict: EvictionMode | str | bool | None = None,
        serializer: str | None = None,
    ) -> list[SendResult]:
        """Send several objects of one stream, in order.

        Args:
            topic: the Kafka topic.
            objs: the objects, sent in this order.
            stream: the stream id.
            metadata: string pairs carried in every event.
            evict: the eviction mode of each (None: the producer's default).
            serializer: a serializer name for each (None: the registry's choice).

        Returns:
            One `SendResult` per object, in order.
        """
        return [
            self.send(topic, o, stream=stream, metadata=metadata, evict=evict, serializer=serializer)
            for o in objs
        ]

    def _enqueue(self, topic: str, stream: str, item: _Batched) -> SendResult:
        """Add a send to its stream's batch; send the batch when it is full.

        With an aggregator a batch becomes one object with one eviction mode and one serializer, so a send
        whose mode or serializer differs from the batch's closes the batch first (order is kept).
        """
        key = (topic, stream)
        item.result._batch = key
        with self._lock:
            closed = None
            pending = self._pending.get(key)
            if (
                pending is not None
                and self.aggregator is not None
                and (pending.items[0].mode, pending.items[0].serializer) != (item.mode, item.serializer)
            ):
                closed = self._take(key)
                pending = None
            if pending is None:
                pending = self._pending[key] = _Pending()
            pending.items.append(item)
            full = len(pending.items) >= self.batch_size
        if closed is not None:
            self._send_batch(topic, stream, closed)
        if full:
            self._flush_pending(topic, stream)
        return item.result

    def _take(self, key: tuple[str, str]) -> _Pending | None:
        """Remove a stream's pending batch (the caller holds the lock); its sends are no longer waiting."""
        pending = self._pending.pop(key, None)
        for item in pending.items if pending is not None else ():
            item.result._batch = None
        return pending

    def _flush_pending(self, topic: str, stream: str) -> None:
        with self._lock:
            pending = self._take((topic, stream))
        if pending is not None and pending.items:
            self._send_batch(topic, stream, pending)

    def _send_batch(self, topic: str, stream: str, pending: _Pending) -> None:
        """Send a batch: each item with its own options, or (aggregator) one object for all of them.

        A send that fails here (a store write) fails its result and is raised again by `flush()`; the
        rest of the batch is still sent.
        """
        items = pending.items
        if self.aggregator is None:
            for item in items:
                self._send_chained(topic, stream, item.obj, item.meta, item, [item.result])
            return
        merged: dict[str, str] = {}
        for item in items:
            merged.update(item.meta)
        if any(item.meta != items[0].meta for item in items):
            # The merged keys keep the last value; every item's own metadata is kept alongside.
            merged["freight.batch_metadata"] = json.dumps([item.meta for item in items])
        merged["freight.batch_size"] = str(len(items))
        try:
            obj = self.aggregator([item.obj for item in items])
        except Exception as exc:
            self._fail_batched([item.result for item in items], exc)
            return
        self._send_chained(topic, stream, obj, merged, items[0], [item.result for item in items])

    def _send_chained(
        self,
        topic: str,
        stream: str,
        obj: Any,
        meta: dict[str, str],
        options: _Batched,
        results: list[SendResult],
    ) -> None:
        try:
            inner = self._send_one(topic, stream, obj, meta, options.mode, options.serializer)
        except Exception as exc:
            self._fail_batched(results, exc)
            return
        for result in results:
            chain(inner, result)

    def _fail_batched(self, results: list[SendResult], exc: Exception) -> None:
        """Fail the results of batched sends that could not be sent; `flush()` raises it again."""
        with self._lock:
            self._failures.append(exc)
        for result in results:
            result._finish(FAILED, None, exc)

    def _send_one(
        self,
        topic: str,
        stream: str,
        obj: Any,
        meta: dict[str, str],
        mode: EvictionMode,
        serializer: str | None = None,
    ) -> SendResult:
        tracer = tracing.TRACER
        if tracer is None:
            return self._place_and_produce(topic, stream, obj, meta, mode, serializer, None)
        with tracing.publish_span(tracer, topic, stream) as headers:
            return self._place_and_produce(topic, stream, obj, meta, mode, serializer, headers)

    def _place_and_produce(
        self,
        topic: str,
        stream: str,
        obj: Any,
        meta: dict[str, str],
        mode: EvictionMode,
        serializer: str | None,
        headers: tracing.Headers | None,
    ) -> SendResult:
        if topic not in self._ready_topics:
            self._ensure_topic(topic)
        store = self.store_for(topic)
        placed: InlineObject | StoredObject | None
        if store is not None:
            placed = store.place(
                obj,
                key=lambda: self._claim_key(topic, store),
                serializer=serializer,
                inline_threshold=self.inline_threshold,
            )
        else:
            ser = self.serializers.serialize(obj, serializer)
            placed = place_serialized(ser, self.inline_threshold)
            if placed is None:
                raise ConfigError(
                    f"no store for topic {topic!r} and the object ({ser.nbytes} bytes) is above the inline "
                    f"threshold ({self.inline_threshold}); pass stores={{{topic!r}: store}} or a default "
                    "store under the key None"
                )
        sequence = self._next_sequence(topic, stream)  # after placing: a failed write leaves no gap
        self.stats.objects += 1
        if isinstance(placed, InlineObject):
            self.stats.inline_objects += 1
            event = ObjectEvent(
                stream=stream,
                sequence=sequence,
                producer_id=self.producer_id,
                inline=InlinePayload(placed.payload, placed.serializer),
                descriptor=placed.descriptor,
                metadata=meta,
            )
            return self._produce(topic, event, None, None, headers)
        assert store is not None
        self.stats.bulk_bytes += placed.size
        self._counts(topic)[1] += placed.size
        event = self._stored_event(stream, sequence, store, placed, mode, meta)
        return self._produce(topic, event, store, placed.key, headers)

    def _claim_key(self, topic: str, store: Store) -> str:
        """A key for an object the store is about to write (its config is published first, once)."""
        self._publish(store)
        return self._new_key(topic)

    def _new_key(self, topic: str) -> str:
        """A unique store key: topic / producer id / counter (the evictor's orphan sweep relies on it)."""
        prefix = self._key_prefixes.get(topic)
        if prefix is None:
            prefix = self._key_prefixes[topic] = f"{safe_key_part(topic)}/{self.producer_id}/"
        return f"{prefix}{next(self._keys):012d}"

    def _stored_event(
        self,
        stream: str,
        sequence: int,
        store: Store,
        stored: StoredObject,
        mode: EvictionMode,
        meta: dict[str, str],
    ) -> ObjectEvent:
        return ObjectEvent(
            stream=stream,
            sequence=sequence,
            producer_id=self.producer_id,
            object=ObjectRef(
                store=store.name,
                key=stored.key,
                size=stored.size,
                serializer=stored.serializer,
                checksum=stored.checksum,
                eviction=mode,
            ),
            descriptor=stored.descriptor,
            metadata=meta,
        )

    def end_stream(self, topic: str, stream: str = "default") -> SendResult:
        """Flush the stream's pending batch and produce its END_OF_STREAM event.

        Args:
            topic: the Kafka topic.
            stream: the stream that ends (its readers' `until_end_of` and chunk buffers see the end).

        Returns:
            The `SendResult` of the END_OF_STREAM event (its sequence is the number of objects sent).
        """
        self._check_open()
        _check_names(topic, stream)
        self._ensure_topic(topic)
        self._flush_pending(topic, stream)
        count = self._next_sequence(topic, stream)  # the number of objects sent on this stream
        event = ObjectEvent(
            stream=stream, sequence=count, producer_id=self.producer_id, kind=EventKind.END_OF_STREAM
        )
        self.stats.end_of_streams += 1
        return self._produce(topic, event, None, None)

    def _ensure_topic(self, topic: str) -> None:
        """Create a missing topic (with `create_topics` partitions) once, or say how to create it."""
        if topic in self._ready_topics:
            return
        from freight.kafka import KafkaAdmin

        admin = KafkaAdmin(self.settings)
        if not admin.topic_exists(topic):
            if self._create_partitions is None:
                raise ConfigError(
                    f"topic {topic!r} does not exist; create it with `freight topics create {topic} -p N` or "
                    "pass create_topics=N to StreamProducer"
                )
            if admin.create_topic(topic, self._create_partitions):
                log.info("created topic %s with %d partition(s)", topic, self._create_partitions)
        self._ready_topics.add(topic)

    def _produce(
        self,
        topic: str,
        event: ObjectEvent,
        store: Store | None,
        key: str | None,
        headers: tracing.Headers | None = None,
    ) -> SendResult:
        result = SendResult(self, topic)
        if key is not None:
            result._store, result._key = store, key
        value = b""
        try:
            value = self.serde.encode(topic, event)
            produce_when_room(
                self._producer,
                topic,
                value,
                key=event.stream.encode(),
                on_delivery=result._delivered,
                headers=headers,
            )
        except BaseException as exc:
            # Nothing was handed to Kafka: the stored object would be an orphan, delete it now.
            self._forget_stored(store, key)
            self.stats.failed += 1
            self._counts(topic)[2] += 1
            if isinstance(exc, KafkaException):
                raise refused_error(
                    topic,
                    exc.args[0],
                    len(value),
                    key is not None,
                    self._delivery_settings,
                    self.inline_threshold,
                ) from exc
            raise
        self.stats.events += 1
        self._counts(topic)[0] += 1
        self._sends += 1
        if not self._sends & 0xFF:
            self._producer.poll(0)  # serve delivery reports now and then
            self._report_metrics()
        return result

    def _counts(self, topic: str) -> list[int]:
        counts = self._unreported.get(topic)
        if counts is None:
            counts = self._unreported[topic] = [0, 0, 0]
        return counts

    def _report_metrics(self) -> None:
        """Add what was counted since the last report to the Prometheus counters."""
        from freight.metrics import producer_metrics

        for topic, counts in self._unreported.items():
            if any(counts):
                m = producer_metrics(topic)
                m.events.inc(counts[0])
                m.bulk_bytes.inc(counts[1])
                m.failures.inc(counts[2])
                counts[0] = counts[1] = counts[2] = 0

    def _forget_stored(self, store: Store | None, key: str | None) -> bool:
        """Delete the stored object of an event that is certainly not in Kafka; False if it could not be."""
        if store is None or key is None:
            return False
        try:
            store.evict(key)
        except Exception:  # the evictor's orphan sweep removes it later
            log.warning("could not delete orphaned object %s of a failed send", key, exc_info=True)
            return False
        return True

    # Delivery reports (the DeliveryOwner protocol of stream/delivery.py) -------------------------------
    def _poll(self, timeout: float) -> None:
        self._producer.poll(timeout)

    def _delivered(self, result: SendResult, err: KafkaError | None, msg: Message) -> None:
        """librdkafka's delivery report for `result`'s event."""
        if err is None:
            self.stats.acked += 1
            result._finish(DONE, RecordPosition(result.topic, msg.partition() or 0, msg.offset() or 0), None)
            return
        self._delivery_failed(result, err)

    def _delivery_failed(self, result: SendResult, err: KafkaError) -> None:
        """A refused or timed-out event: record and surface the failure; delete its stored object again only
        where the event is certainly not in the log (a timed-out event may have been written)."""
        self.stats.failed += 1
        self._counts(result.topic)[2] += 1
        key, store = result._key, result._store
        deleted = certainly_not_written(err) and self._forget_stored(store, key)
        failure = failure_error(
            result.topic,
            err,
            deleted=deleted,
            store=store,
            key=key,
            bootstrap=self.settings.kafka_bootstrap,
            settings=self._delivery_settings,
            inline_threshold=self.inline_threshold,
        )
        with self._lock:
            self._failures.append(failure)
        result._finish(FAILED, None, failure)

    # Lifecycle ----------------------------------------------------------------------------------------
    def flush(self, timeout: float | None = None) -> None:
        """Send pending batches and wait for every event's acknowledgement.

        Args:
            timeout: seconds to wait at most (None: until librdkafka's delivery timeout decides).

        Raises:
            DeliveryError: an event failed, or events are still unacknowledged after `timeout`.
        """
        with self._lock:
            keys = list(self._pending)
        for topic, stream in keys:
            self._flush_pending(topic, stream)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = self._producer.flush(1.0)
            if left == 0:
                break
            if deadline is not None and time.monotonic() > deadline:
                raise DeliveryError(
                    f"{left} event(s) still unacknowledged after {timeout:g}s; is the broker at "
                    f"{self.settings.kafka_bootstrap} up? (`freight dev status`)"
                )
        self._report_metrics()
        with self._lock:
            failures, self._failures = self._failures, []
        if failures:
            raise DeliveryError(f"{len(failures)} event(s) failed; first: {failures[0]}") from failures[0]

    def close(self, *, close_stores: bool = False, timeout: float | None = None) -> None:
        """Flush, then refuse further sends. Closing twice is harmless.

        Args:
            close_stores: close the producer's stores too.
            timeout: seconds the flush waits at most.

        Raises:
            DeliveryError: as `flush` (the producer is closed all the same).
        """
        if self._closed:
            return
        try:
            self.flush(timeout)
        finally:
            self._closed = True
            if close_stores:
                for store in {id(s): s for s in self.stores.values()}.values():
                    store.close()

    def _check_open(self) -> None:
        if self._closed:
            raise ConfigError("this StreamProducer is closed; create a new one to send more")

    def __enter__(self) -> StreamProducer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_names(topic: object, stream: object) -> None:
    """A topic or stream id of the wrong type is an error before anything is stored (cheap: every send)."""
    if not isinstance(topic, str) or not topic:
        raise ConfigError(f"the topic must be a non-empty string, got {type(topic).__name__}: {topic!r}")
    if not isinstance(stream, str):
        raise ConfigError(f"the stream id must be a string, got {type(stream).__name__}: {stream!r}")
