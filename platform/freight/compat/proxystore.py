"""ProxyStore's streaming interface on Freight: Kafka carries the events, Freight stores the objects.

```python
from freight.compat.proxystore import FileConnector, KafkaPublisher, KafkaSubscriber, Proxy, Store
from freight.compat.proxystore import StreamConsumer, StreamProducer
```

What changes for a ProxyStore user: the imports, and `RedisPublisher(...)` / `RedisSubscriber(...)` become
`KafkaPublisher(...)` / `KafkaSubscriber(topic)` (or plain Freight settings). The rest keeps working:
`StreamProducer(publisher, {topic: store, None: default})`, `send(topic, obj, evict=True, metadata=...)`,
aggregation / batching / filtering with ProxyStore's argument names, `close_topics(*topics)`, `close()`
ending the consumers' iteration, iteration yielding proxies, `iter_with_metadata()`, `iter_objects()`,
`iter_objects_with_metadata()`, `next()`, `next_with_metadata()`, `next_object()`,
`next_object_with_metadata()`, and `close()` closing what ProxyStore's closes.

Mapping and the differences that remain (docs/migrating.md has the full list):

- `evict=True` (ProxyStore's default: one-time use) is Freight's `on-resolve`: deleted once resolved, and,
  for a consumer in a group, only once the group committed past the event (safe if it is delivered again);
  `evict=False` (kept) is Freight's `never`. Native Freight keeps objects by default (`watermark`).
- A topic is a Kafka topic; the producer creates a missing one (1 partition). A consumer without a `group`
  reads the whole topic from the start (Kafka keeps it); with a group it resumes at the group's commits.
- `close()` / `close_topics()` end the topic's stream with an END_OF_STREAM event: consumers stop there.
  With several producers on one topic, close all but the last with `close(end_topics=False)`.
- `StreamConsumer.close(close_stores=True)` leaves the stores open: resolving stores are one cache per
  process, shared by every consumer (a ProxyStore consumer closes its own).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from freight.config import FreightSettings, load_settings
from freight.connectors.file import FileConnector
from freight.errors import ConfigError
from freight.stores import Store
from freight.stream import Proxy, extract
from freight.stream import StreamConsumer as _FreightConsumer
from freight.stream import StreamProducer as _FreightProducer

__all__ = [
    "FileConnector",
    "KafkaPublisher",
    "KafkaSubscriber",
    "Proxy",
    "Store",
    "StreamConsumer",
    "StreamProducer",
]

STREAM = "default"  # ProxyStore has one stream per topic: Freight's default stream id


class KafkaPublisher:
    """Where a `StreamProducer` publishes events: a Kafka cluster (ProxyStore's `RedisPublisher`, ...).

    Args:
        bootstrap: the brokers, "host:port[,host:port]" (default: FREIGHT_KAFKA_BOOTSTRAP / settings).
        settings: full Freight settings (registry URL, Kafka properties, ...).
    """

    def __init__(self, bootstrap: str | None = None, *, settings: FreightSettings | None = None) -> None:
        if bootstrap is not None and settings is not None:
            raise ConfigError("give KafkaPublisher a bootstrap address or settings, not both")
        self.settings = settings or load_settings(kafka_bootstrap=bootstrap)

    def close(self) -> None:
        """Nothing to release: the producer owns the Kafka client."""


class KafkaSubscriber:
    """What a `StreamConsumer` reads: one topic (ProxyStore's `RedisSubscriber(topic)`, ...).

    Args:
        topic: the topic to read.
        group: a Kafka consumer group to share the topic's partitions with other members and resume at its
            commits (None: read the whole topic from the start, alone).
        bootstrap: the brokers (default: FREIGHT_KAFKA_BOOTSTRAP / settings).
        settings: full Freight settings.
    """

    def __init__(
        self,
        topic: str,
        *,
        group: str | None = None,
        bootstrap: str | None = None,
        settings: FreightSettings | None = None,
    ) -> None:
        if bootstrap is not None and settings is not None:
            raise ConfigError("give KafkaSubscriber a bootstrap address or settings, not both")
        self.topic = topic
        self.group = group
        self.settings = settings or load_settings(kafka_bootstrap=bootstrap)

    def close(self) -> None:
        """Nothing to release: the consumer owns the Kafka client."""


def _settings_of(publisher: KafkaPublisher | FreightSettings | str | None) -> FreightSettings:
    if isinstance(publisher, KafkaPublisher):
        return publisher.settings
    if isinstance(publisher, FreightSettings):
        return publisher
    if publisher is None or isinstance(publisher, str):
        return load_settings(kafka_bootstrap=publisher)
    raise ConfigError(
        f"StreamProducer takes a KafkaPublisher, FreightSettings or a bootstrap address, got "
        f"{type(publisher).__name__} (a ProxyStore publisher? use KafkaPublisher(...))"
    )


class StreamProducer:
    """ProxyStore's `StreamProducer`: store objects per topic, publish their events (see the module doc).

    Args:
        publisher: a `KafkaPublisher`, `FreightSettings` or bootstrap address (None: the environment).
        stores: topic -> Store; the key None is the default store for other topics.
        aggregator: combines a batch of objects into one before it is stored.
        batch_size: objects per batch (per topic).
        filter_: `filter_(metadata)` True drops the object.
        **freight: more `freight.stream.StreamProducer` options (inline_threshold, create_topics, ...).
    """

    def __init__(
        self,
        publisher: KafkaPublisher | FreightSettings | str | None = None,
        stores: Mapping[str | None, Store] | None = None,
        *,
        aggregator: Callable[[list[Any]], Any] | None = None,
        batch_size: int = 1,
        filter_: Callable[[Mapping[str, str]], bool] | None = None,
        **freight: Any,
    ) -> None:
        self._publisher = publisher if isinstance(publisher, KafkaPublisher) else None
        self._stores = dict(stores or {})
        self._topics: set[str] = set()
        self.freight = _FreightProducer(
            self._stores,
            settings=_settings_of(publisher),
            aggregator=aggregator,
            batch_size=batch_size,
            filter_=filter_,
            **freight,
        )

    def send(
        self, topic: str, obj: Any, *, evict: bool | str = True, metadata: dict[str, Any] | None = None
    ) -> None:
        """Send `obj` on `topic`; `evict=True`: one-time use (Freight's on-resolve), False: kept."""
        self._topics.add(topic)
        self.freight.send(topic, obj, stream=STREAM, evict=evict, metadata=_meta(metadata))

    def send_batch(
        self,
        topic: str,
        objs: Iterable[Any],
        *,
        evict: bool | str = True,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Send several objects on `topic` (one metadata for all)."""
        for obj in objs:
            self.send(topic, obj, evict=evict, metadata=metadata)

    def flush(self) -> None:
        """Send every pending batch and wait for Kafka's acknowledgements."""
        self.freight.flush()

    def flush_topic(self, topic: str) -> None:
        """Send `topic`'s pending batch."""
        self.freight._flush_pending(topic, STREAM)

    def close_topics(self, *topics: str) -> None:
        """End `topics`: their consumers' iteration stops after what was sent."""
        for topic in topics:
            self.freight.end_stream(topic, STREAM)
            self._topics.discard(topic)
        self.freight.flush()

    def close(
        self,
        *,
        topics: Iterable[str] = (),
        close_publisher: bool = True,
        close_stores: bool = True,
        end_topics: bool = True,
    ) -> None:
        """End `topics` and (`end_topics`) every topic sent to; flush; close the publisher and the stores.

        Consumers stop at a topic's end. With several producers on one topic, close all but the last with
        `end_topics=False`, so that the consumers read on until the last producer is done.
        """
        ended = {*self._topics, *topics} if end_topics else set(topics)
        self.close_topics(*sorted(ended))
        self.freight.close(close_stores=close_stores)
        if close_publisher and self._publisher is not None:
            self._publisher.close()

    def __enter__(self) -> StreamProducer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _meta(metadata: Mapping[str, Any] | None) -> dict[str, str] | None:
    if metadata is None:
        return None
    return {str(k): str(v) for k, v in metadata.items()}


class StreamConsumer:
    """ProxyStore's `StreamConsumer`: iterate over proxies of a topic's objects until the producer closes it.

    Args:
        subscriber: a `KafkaSubscriber(topic, ...)`.
        filter_: `filter_(metadata)` True skips the object.
        **freight: more `freight.stream.StreamConsumer` options (idle_timeout, stores, ...).
    """

    def __init__(
        self,
        subscriber: KafkaSubscriber,
        *,
        filter_: Callable[[dict[str, Any]], bool] | None = None,
        **freight: Any,
    ) -> None:
        if not isinstance(subscriber, KafkaSubscriber):
            raise ConfigError(
                f"StreamConsumer takes a KafkaSubscriber(topic, ...), got {type(subscriber).__name__} "
                "(a ProxyStore subscriber? use KafkaSubscriber(topic))"
            )
        self._subscriber = subscriber
        self.filter = filter_
        freight.setdefault("until_end_of", [STREAM])
        self.freight = _FreightConsumer(
            subscriber.topic, subscriber.group, settings=subscriber.settings, **freight
        )

    def _next(self) -> tuple[dict[str, Any], Proxy]:
        while True:
            record = self.freight.next_record(include_end=False)
            if record is None or record.proxy is None:
                raise StopIteration
            metadata: dict[str, Any] = dict(record.metadata.metadata)
            if self.filter is not None and self.filter(metadata):
                continue
            return metadata, record.proxy

    def __iter__(self) -> Iterator[Proxy]:
        return _Steps(lambda: self._next()[1])

    def __next__(self) -> Proxy:
        return self._next()[1]

    def iter_with_metadata(self) -> Iterator[tuple[dict[str, Any], Proxy]]:
        return _Steps(self._next)

    def iter_objects(self) -> Iterator[Any]:
        return _Steps(lambda: extract(self._next()[1]))

    def iter_objects_with_metadata(self) -> Iterator[tuple[dict[str, Any], Any]]:
        def step() -> tuple[dict[str, Any], Any]:
            metadata, proxy = self._next()
            return metadata, extract(proxy)

        return _Steps(step)

    def next(self) -> Proxy:
        """The next proxy; StopIteration once the producer closed the topic."""
        return self._next()[1]

    def next_with_metadata(self) -> tuple[dict[str, Any], Proxy]:
        return self._next()

    def next_object(self) -> Any:
        return extract(self._next()[1])

    def next_object_with_metadata(self) -> tuple[dict[str, Any], Any]:
        metadata, proxy = self._next()
        return metadata, extract(proxy)

    def close(self, *, close_stores: bool = True, close_subscriber: bool = True) -> None:
        """Commit what was read (with a group), leave the group, and close the subscriber.

        `close_stores` is accepted for ProxyStore's signature: the stores that resolve proxies are shared by
        every consumer of this process (one cache), so they stay open until the process ends.
        """
        self.freight.close()
        if close_subscriber:
            self._subscriber.close()

    def __enter__(self) -> StreamConsumer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Steps(Iterator[Any]):
    def __init__(self, step: Callable[[], Any]) -> None:
        self._step = step

    def __next__(self) -> Any:
        return self._step()
