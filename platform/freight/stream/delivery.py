"""What became of a send: `SendResult`, where an event landed, and why Kafka did not take one.

`SendResult` resolves when Kafka acknowledges the event (or refuses it); `classify_failure` and
`refused_error` turn librdkafka's errors into `DeliveryError`s that say what happened to the stored object
and what to do. The producer (`stream/producer.py`) owns the sending; this module owns the outcomes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from confluent_kafka import KafkaError, Message

from freight.errors import DeliveryError

if TYPE_CHECKING:
    from freight.stores import Store


@dataclass(frozen=True, slots=True)
class RecordPosition:
    """Where an acknowledged event landed."""

    topic: str
    partition: int
    offset: int


class DeliveryOwner(Protocol):
    """What a `SendResult` needs from the producer that made it."""

    def _poll(self, timeout: float) -> None:
        """Serve delivery reports for up to `timeout` seconds."""

    def _flush_pending(self, topic: str, stream: str) -> None:
        """Send the pending batch of a stream now."""

    def _delivered(self, result: SendResult, err: KafkaError | None, msg: Message) -> None:
        """librdkafka's delivery report for `result`'s event."""


PENDING, DONE, FAILED, FILTERED = range(4)


class SendResult:
    """The outcome of one `send()`: resolves when Kafka acknowledges the event (or refuses it)."""

    __slots__ = ("_batch", "_callbacks", "_error", "_key", "_owner", "_position", "_state", "_store", "topic")

    def __init__(self, owner: DeliveryOwner | None, topic: str) -> None:
        self._owner = owner
        self.topic = topic
        self._batch: tuple[str, str] | None = None  # (topic, stream) while the send waits for its batch
        self._state = PENDING
        self._position: RecordPosition | None = None
        self._error: BaseException | None = None
        self._store: Store | None = None
        self._key: str | None = None
        self._callbacks: list[Callable[[SendResult], None]] | None = None

    def done(self) -> bool:
        """True once acknowledged, failed or filtered (never blocks)."""
        return self._state != PENDING

    def filtered(self) -> bool:
        """True if the producer's filter dropped this item (nothing was sent)."""
        return self._state == FILTERED

    def result(self, timeout: float | None = None) -> RecordPosition | None:
        """Where the event landed (None if filtered); raises DeliveryError if it was not delivered.

        A send still waiting for its batch (`batch_size` > 1) is not in Kafka yet: waiting for it sends its
        stream's pending batch first, so `result()` never waits for a batch that nothing would flush.

        Args:
            timeout: seconds to wait for the acknowledgement (None: wait as long as it takes).

        Returns:
            The topic, partition and offset of the event, or None if the producer's filter dropped it.
        """
        self._wait(timeout)
        if self._error is not None:
            raise self._error
        return self._position

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """The error of a failed send (None if it was delivered or filtered); waits like `result()`."""
        self._wait(timeout)
        return self._error

    def add_done_callback(self, fn: Callable[[SendResult], None]) -> None:
        """Call `fn(self)` once done (at once if already done; otherwise in the thread serving deliveries)."""
        if self._state != PENDING:
            fn(self)
            return
        if self._callbacks is None:
            self._callbacks = []
        self._callbacks.append(fn)

    def _wait(self, timeout: float | None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        batch = self._batch
        if batch is not None and self._owner is not None:
            self._owner._flush_pending(*batch)  # nothing else would send it: send it now
        while self._state == PENDING:
            if deadline is not None and time.monotonic() > deadline:
                raise DeliveryError(
                    f"no acknowledgement for an event on topic {self.topic!r} within {timeout:g}s"
                )
            assert self._owner is not None
            self._owner._poll(0.05)

    def _finish(self, state: int, position: RecordPosition | None, error: BaseException | None) -> None:
        self._state, self._position, self._error = state, position, error
        callbacks, self._callbacks = self._callbacks, None
        for fn in callbacks or ():
            fn(self)

    def _delivered(self, err: KafkaError | None, msg: Message) -> None:
        """librdkafka's delivery report for this event."""
        assert self._owner is not None
        self._owner._delivered(self, err, msg)


def chain(source: SendResult, target: SendResult) -> None:
    """Complete `target` when `source` completes, with the same outcome."""

    def done(src: SendResult) -> None:
        target._finish(src._state, src._position, src._error)

    source.add_done_callback(done)


#: Delivery errors after which the event is certainly not in the log (the broker refused it, or it never
#: left this process): its stored object can go at once. Any other failure (a timeout, a lost connection)
#: may come after the broker wrote the event, so the object stays for the orphan sweep to judge.
NOT_WRITTEN = frozenset(
    {
        KafkaError.MSG_SIZE_TOO_LARGE,
        KafkaError.INVALID_MSG_SIZE,
        KafkaError.INVALID_RECORD,
        KafkaError.INVALID_MSG,
        KafkaError.RECORD_LIST_TOO_LARGE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError._UNKNOWN_TOPIC,
        KafkaError._UNKNOWN_PARTITION,
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
        KafkaError.INVALID_REQUIRED_ACKS,
        KafkaError.POLICY_VIOLATION,
        KafkaError._PURGE_QUEUE,
    }
)


def certainly_not_written(err: KafkaError) -> bool:
    """True when the failed event is certainly not in the log (its stored object may be deleted at once)."""
    return err.code() in NOT_WRITTEN


def refused_error(
    topic: str, err: KafkaError, size: int, stored: bool, settings: Mapping[str, str], inline_threshold: int
) -> DeliveryError:
    """The error for an event Kafka would not take from `produce()` (nothing was sent).

    Args:
        topic: the event's topic.
        err: librdkafka's error.
        size: the encoded event's size in bytes.
        stored: whether the event's object had been stored (and was deleted again).
        settings: the producer's delivery settings (message.max.bytes, delivery.timeout.ms, ...).
        inline_threshold: the producer's inline threshold, for the advice.
    """
    deleted = "Its stored object was deleted again. " if stored else ""
    if err.code() == KafkaError.MSG_SIZE_TOO_LARGE:
        limit = settings.get("message.max.bytes", "?")
        return DeliveryError(
            f"an event for topic {topic!r} is {size} bytes, more than the producer's message.max.bytes "
            f"({limit}); nothing was sent. {deleted}Large objects belong in a store: lower the "
            f"inline threshold (now {inline_threshold} bytes) so they are stored, not inlined."
        )
    return DeliveryError(
        f"Kafka would not take an event for topic {topic!r} ({err.name()}: {err.str()}); nothing was "
        f"sent. {deleted}Check the topic and the producer settings."
    )


def failure_error(
    topic: str,
    err: KafkaError,
    *,
    deleted: bool,
    store: Store | None,
    key: str | None,
    bootstrap: str,
    settings: Mapping[str, str],
    inline_threshold: int,
) -> DeliveryError:
    """The error for an event that was refused or not acknowledged after `produce()`.

    Args:
        topic: the event's topic.
        err: librdkafka's delivery error.
        deleted: whether the stored object was deleted again (only when `certainly_not_written`).
        store: the store holding the event's object, if any.
        key: the object's key, if any.
        bootstrap: the broker address, for the advice.
        settings: the producer's delivery settings.
        inline_threshold: the producer's inline threshold, for the advice.
    """
    if certainly_not_written(err):
        cause = f"the broker refused it ({err.name()}: {err.str()})"
        if err.code() == KafkaError.MSG_SIZE_TOO_LARGE:
            cause += (
                f"; lower the inline threshold (now {inline_threshold} bytes) so large objects are "
                "stored, or raise the topic's max.message.bytes"
            )
        fate = "Its stored object was deleted again. " if deleted else ""
        advice = "Fix the cause and send it again."
    else:
        timeout = settings.get("delivery.timeout.ms", settings.get("message.timeout.ms", "?"))
        cause = (
            f"no acknowledgement from {bootstrap} within delivery.timeout.ms={timeout} "
            f"({err.name()}: {err.str()})"
        )
        fate = (
            f"The broker may still have written it, so its stored object {key!r} in store "
            f"{store.name!r} is kept (the evictor's orphan sweep deletes it after its grace period if "
            "no event names it). "
            if key is not None and store is not None
            else ""
        )
        advice = (
            "Check the broker (`freight dev status`), then send it again (consumers may see it twice if "
            "it was written after all)."
        )
    return DeliveryError(f"Kafka did not acknowledge an event on topic {topic!r}: {cause}. {fate}{advice}")
