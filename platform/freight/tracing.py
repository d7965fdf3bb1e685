"""OpenTelemetry tracing: one trace per object from send, through consume, to resolve in any process.

Off by default and free when off (one `None` check per record). Turned on by `instrument()` (as any
OpenTelemetry instrumentation: pass a `TracerProvider`, or the global one is used) or by `FREIGHT_TRACING=1`
(`FreightSettings.tracing`) in a process whose producer, consumer or resolver reads the settings. Needs the
`otel` extra (`opentelemetry-api`; the SDK to export spans).

Spans (names and kinds follow OpenTelemetry's messaging conventions):

- `<topic> publish` (PRODUCER) around `StreamProducer.send`; its context travels in the event's Kafka
  headers (W3C `traceparent`/`tracestate`), next to the Avro value, so the Confluent wire format is unchanged;
- `freight.store.put` / `freight.store.get` (INTERNAL) around store writes and reads;
- `<topic> receive` (CONSUMER), child of the publish span, when a consumer decodes the event; its context
  goes into the proxy's `ProxyRef.trace`, so it travels with a pickled proxy to a worker;
- `freight.resolve` (INTERNAL), child of the receive span, where the proxy is resolved (any process), with
  the store read inside it.

Trace headers arriving over Kafka are untrusted input: a malformed one is ignored (a new trace starts).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from freight.errors import ConfigError

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

Headers = list[tuple[str, bytes]]

#: The active tracer; None while tracing is off (the hot paths check only this).
TRACER: Tracer | None = None
_lock = threading.Lock()
# W3C trace-context fields; nothing else from a record's headers is handed to the propagator.
_FIELDS = ("traceparent", "tracestate")
_MAX_HEADER = 512


def instrument(tracer_provider: Any | None = None) -> None:
    """Turn tracing on in this process.

    Args:
        tracer_provider: an OpenTelemetry `TracerProvider` (None: the global one).

    Raises:
        ConfigError: opentelemetry-api is not installed.
    """
    global TRACER
    try:
        from opentelemetry import trace
    except ImportError:
        raise ConfigError(
            "tracing needs OpenTelemetry: pip install 'freight[otel]' (opentelemetry-api and -sdk)"
        ) from None
    from freight import __version__

    with _lock:
        TRACER = trace.get_tracer("freight", __version__, tracer_provider=tracer_provider)


def uninstrument() -> None:
    """Turn tracing off again."""
    global TRACER
    with _lock:
        TRACER = None


def instrument_from_settings(enabled: bool) -> None:
    """Turn tracing on (with the global provider) when the settings ask for it and it is not on yet."""
    if enabled and TRACER is None:
        instrument()


#: Whether a process that only resolves proxies (a worker) has looked at its environment yet.
ENV_CHECKED = False


def instrument_from_environment() -> None:
    """In a worker that only resolves proxies: read `FREIGHT_TRACING` once, at the first resolve."""
    global ENV_CHECKED
    if ENV_CHECKED:
        return
    ENV_CHECKED = True
    from freight.config import load_settings

    try:
        enabled = load_settings().tracing
    except ConfigError:
        return  # an invalid environment is reported by whatever needs it; tracing stays off
    instrument_from_settings(enabled)


def _inject() -> Headers:
    from opentelemetry.propagate import inject

    carrier: dict[str, str] = {}
    inject(carrier)
    return [(k, v.encode()) for k, v in carrier.items() if k in _FIELDS]


def _context_of(carrier: dict[str, str]) -> Any:
    from opentelemetry.propagate import extract

    return extract(carrier)


def headers_carrier(headers: Sequence[tuple[str, bytes | str | None]] | None) -> dict[str, str]:
    """The trace-context fields of a record's headers (anything else, or anything malformed, is dropped).

    Args:
        headers: the record's headers, as confluent-kafka returns them.

    Returns:
        At most `traceparent` and `tracestate`, as text.
    """
    carrier: dict[str, str] = {}
    for key, value in headers or ():
        if key in _FIELDS and isinstance(value, bytes) and len(value) <= _MAX_HEADER:
            try:
                carrier[key] = value.decode("ascii")
            except UnicodeDecodeError:
                continue
    return carrier


@contextlib.contextmanager
def publish_span(tracer: Tracer, topic: str, stream: str) -> Iterator[Headers]:
    """The span of one send; yields the headers that carry its context to consumers.

    Args:
        tracer: `TRACER` (checked for None by the caller).
        topic: the destination topic.
        stream: the stream id (the record key).
    """
    from opentelemetry.trace import SpanKind

    attributes = {
        "messaging.system": "kafka",
        "messaging.operation.type": "publish",
        "messaging.destination.name": topic,
        "messaging.kafka.message.key": stream,
    }
    with tracer.start_as_current_span(f"{topic} publish", kind=SpanKind.PRODUCER, attributes=attributes):
        yield _inject()


def receive_span(tracer: Tracer, topic: str, partition: int, offset: int, headers: Any) -> str | None:
    """Record that a consumer received the event; returns the context for the proxy (`ProxyRef.trace`).

    Args:
        tracer: `TRACER`.
        topic: where the event was read.
        partition: its partition.
        offset: its offset.
        headers: the record's headers as confluent-kafka gives them (the producer's trace context, if any).

    Returns:
        The receive span's W3C `traceparent` (None if none could be made).
    """
    from opentelemetry.trace import SpanKind, set_span_in_context

    parent = _context_of(headers_carrier(headers if isinstance(headers, list) else None))
    attributes: dict[str, str | int] = {
        "messaging.system": "kafka",
        "messaging.operation.type": "receive",
        "messaging.destination.name": topic,
        "messaging.destination.partition.id": str(partition),
        "messaging.kafka.offset": offset,
    }
    span = tracer.start_span(
        f"{topic} receive", context=parent, kind=SpanKind.CONSUMER, attributes=attributes
    )
    span.end()
    from opentelemetry.propagate import inject

    carrier: dict[str, str] = {}
    inject(carrier, context=set_span_in_context(span))
    return carrier.get("traceparent")


@contextlib.contextmanager
def resolve_span(tracer: Tracer, trace: str | None, store: str | None, key: str | None) -> Iterator[None]:
    """The span of resolving a proxy, a child of its receive span wherever that was.

    Args:
        tracer: `TRACER`.
        trace: `ProxyRef.trace` (None: a span of its own trace).
        store: the store name (None: inline).
        key: the object's key.
    """
    parent = _context_of({"traceparent": trace}) if trace else None
    attributes = {"freight.store": store or "(inline)", "freight.key": key or ""}
    with tracer.start_as_current_span("freight.resolve", context=parent, attributes=attributes):
        yield


@contextlib.contextmanager
def store_span(tracer: Tracer, operation: str, store: str, key: str) -> Iterator[None]:
    """The span of one store write or read, a child of the current span.

    Args:
        tracer: `TRACER`.
        operation: "put" or "get".
        store: the store name.
        key: the object's key.
    """
    with tracer.start_as_current_span(
        f"freight.store.{operation}", attributes={"freight.store": store, "freight.key": key}
    ):
        yield
