"""asyncio variants: `AsyncStreamProducer` and `AsyncStreamConsumer`.

They wrap the synchronous classes and run blocking work (store writes, Kafka polls) in a worker thread,
so an event loop never blocks on I/O. Delivery futures become awaitables.

The two cannot drift from the synchronous classes: every public method of `StreamProducer` and
`StreamConsumer` has an async counterpart here with the same parameters (a unit test compares every
signature), the constructors take exactly the synchronous constructor's arguments (their signature is the
synchronous one), and the few synchronous members without an async counterpart are listed in `SYNC_ONLY`
with the reason (reach them through `.sync`).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from typing import Any, TypeVar, cast

from freight.schemas.events import EvictionMode
from freight.stream.consumer import TP, StreamConsumer, StreamRecord
from freight.stream.metadata import ItemMetadata
from freight.stream.producer import RecordPosition, SendResult, StreamProducer
from freight.stream.proxy import Proxy
from freight.stream.replay import Position

T = TypeVar("T")

#: Public members of the synchronous classes that have no async counterpart, and why (use `.sync`).
SYNC_ONLY: dict[str, str] = {
    "serde": "a property without I/O after its first use",
    "serializers": "a property without I/O after its first use",
    "admin": "a property: the admin client (its calls block; run them in a thread)",
    "on_bad_event": "a property without I/O: the consumer's bad-record policy",
    "dead_letter_topic": "a property without I/O: where bad records go under dead-letter",
    "mark_unread": "called on the consumer thread inside rebalance callbacks by owners of its commits",
    "stopped": "a property without I/O",
    "__iter__": "the async variant iterates with `async for` (__aiter__)",
    "__enter__": "the async variant is an async context manager (__aenter__)",
    "__exit__": "the async variant is an async context manager (__aexit__)",
}

_DONE = object()


async def _wait(result: SendResult) -> RecordPosition | None:
    """Await a send's acknowledgement without blocking the loop (a batched send is flushed first)."""
    return await asyncio.to_thread(result.result)


def _or_done(fn: Any, *args: Any) -> Any:
    """Call `fn`, turning its StopIteration into `_DONE` (a StopIteration cannot cross a Future)."""
    try:
        return fn(*args)
    except StopIteration:
        return _DONE


class AsyncStreamProducer:
    """`StreamProducer` for asyncio: `await producer.send(...)` returns where the event landed.

    Takes exactly `StreamProducer`'s arguments. Awaiting a send waits for Kafka's acknowledgement; with
    `batch_size` > 1 that sends the waiting batch at once, so batch with `send_batch` (one await per
    batch) or use `.sync.send` and await `flush()` once.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.sync = StreamProducer(*args, **kwargs)

    def store_for(self, topic: str) -> Any:
        """The store of `topic` (no I/O; see `StreamProducer.store_for`)."""
        return self.sync.store_for(topic)

    async def send(
        self,
        topic: str,
        obj: Any,
        *,
        stream: str = "default",
        metadata: Mapping[str, str] | None = None,
        evict: EvictionMode | str | bool | None = None,
        serializer: str | None = None,
    ) -> RecordPosition | None:
        """Store and produce in a worker thread, then await Kafka's acknowledgement.

        Args: as `StreamProducer.send`.

        Returns:
            Where the event landed, or None if the producer's filter dropped it.
        """
        result = await asyncio.to_thread(
            self.sync.send,
            topic,
            obj,
            stream=stream,
            metadata=metadata,
            evict=evict,
            serializer=serializer,
        )
        return await _wait(result)

    async def send_batch(
        self,
        topic: str,
        objs: Iterable[Any],
        *,
        stream: str = "default",
        metadata: Mapping[str, str] | None = None,
        evict: EvictionMode | str | bool | None = None,
        serializer: str | None = None,
    ) -> list[RecordPosition | None]:
        """Send several objects of one stream, in order, and await every acknowledgement."""
        results = await asyncio.to_thread(
            self.sync.send_batch,
            topic,
            list(objs),
            stream=stream,
            metadata=metadata,
            evict=evict,
            serializer=serializer,
        )
        return [await _wait(result) for result in results]

    async def end_stream(self, topic: str, stream: str = "default") -> RecordPosition | None:
        """Send the stream's pending batch and its END_OF_STREAM event; await the acknowledgement."""
        return await _wait(await asyncio.to_thread(self.sync.end_stream, topic, stream))

    async def flush(self, timeout: float | None = None) -> None:
        """Send pending batches and await every acknowledgement (see `StreamProducer.flush`)."""
        await asyncio.to_thread(self.sync.flush, timeout)

    async def close(self, *, close_stores: bool = False, timeout: float | None = None) -> None:
        """Flush and close (see `StreamProducer.close`)."""
        await asyncio.to_thread(self.sync.close, close_stores=close_stores, timeout=timeout)

    async def __aenter__(self) -> AsyncStreamProducer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class AsyncStreamConsumer:
    """`StreamConsumer` for asyncio: `async for proxy in consumer`. One thread polls at a time.

    Takes exactly `StreamConsumer`'s arguments.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.sync = StreamConsumer(*args, **kwargs)
        self._lock = asyncio.Lock()

    async def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        async with self._lock:
            return await asyncio.to_thread(fn, *args, **kwargs)

    async def _each(self, make: Iterator[T]) -> AsyncIterator[T]:
        while True:
            async with self._lock:
                item = await asyncio.to_thread(next, make, _DONE)
            if item is _DONE:
                return
            yield item  # type: ignore[misc]

    async def next_record(
        self, timeout: float | None = None, *, include_end: bool = True
    ) -> StreamRecord | None:
        """The next decoded event, or None at the stop condition or timeout."""
        record: StreamRecord | None = await self._call(
            self.sync.next_record, timeout, include_end=include_end
        )
        return record

    async def poll(self, timeout: float = 1.0) -> Proxy | None:
        """The next proxy, or None if none arrived within `timeout`."""
        record = await self.next_record(timeout, include_end=False)
        return None if record is None else record.proxy

    async def next_proxy(self, timeout: float | None = None) -> Proxy:
        """The next proxy; raises StopAsyncIteration at the stop condition or timeout."""
        proxy = await self._call(_or_done, self.sync.next_proxy, timeout)
        if proxy is _DONE:
            raise StopAsyncIteration
        return cast(Proxy, proxy)

    async def next_object(self, timeout: float | None = None) -> Any:
        """The next object, resolved in a worker thread; raises StopAsyncIteration at the stop condition."""
        obj = await self._call(_or_done, self.sync.next_object, timeout)
        if obj is _DONE:
            raise StopAsyncIteration
        return obj

    def __aiter__(self) -> AsyncIterator[Proxy]:
        return self._each(iter(self.sync))

    def iter_with_metadata(self) -> AsyncIterator[tuple[ItemMetadata, Proxy]]:
        """(metadata, proxy) pairs."""
        return self._each(self.sync.iter_with_metadata())

    def iter_objects(self) -> AsyncIterator[Any]:
        """Resolved objects; resolution (store I/O) runs in a worker thread."""
        return self._each(self.sync.iter_objects())

    def iter_objects_with_metadata(self) -> AsyncIterator[tuple[ItemMetadata, Any]]:
        """(metadata, object) pairs."""
        return self._each(self.sync.iter_objects_with_metadata())

    def iter_records(self) -> AsyncIterator[StreamRecord]:
        """Decoded events, END_OF_STREAM included."""
        return self._each(self.sync.iter_records())

    def chunks(self, policy: Any, **options: Any) -> AsyncIterator[Any]:
        """Chunks of the stream under a buffer policy (see `StreamConsumer.chunks`)."""
        return self._each(self.sync.chunks(policy, **options))

    async def assignment(self) -> list[TP]:
        """The partitions assigned to this consumer."""
        parts: list[TP] = await self._call(self.sync.assignment)
        return parts

    async def wait_for_assignment(self, timeout: float = 30.0) -> list[TP]:
        """Wait until the group assigned partitions."""
        parts: list[TP] = await self._call(self.sync.wait_for_assignment, timeout)
        return parts

    async def commit(self, offsets: Mapping[TP, int | tuple[int, str]] | None = None) -> dict[TP, int]:
        """Commit (see `StreamConsumer.commit`)."""
        done: dict[TP, int] = await self._call(self.sync.commit, offsets)
        return done

    async def committed(self, partitions: Iterable[TP] | None = None) -> dict[TP, tuple[int, str | None]]:
        """The group's committed offsets."""
        got: dict[TP, tuple[int, str | None]] = await self._call(self.sync.committed, partitions)
        return got

    async def seek(
        self,
        to: Position | None = None,
        *,
        offset: int | None = None,
        timestamp: int | None = None,
        topic: str | None = None,
        partition: int | None = None,
    ) -> dict[TP, int]:
        """Move the read position (see `StreamConsumer.seek`)."""
        moved: dict[TP, int] = await self._call(
            self.sync.seek, to, offset=offset, timestamp=timestamp, topic=topic, partition=partition
        )
        return moved

    async def pause(self, partitions: Iterable[TP] | None = None) -> None:
        """Stop fetching from partitions."""
        await self._call(self.sync.pause, partitions)

    async def resume(self, partitions: Iterable[TP] | None = None) -> None:
        """Fetch from paused partitions again."""
        await self._call(self.sync.resume, partitions)

    async def close(self) -> None:
        """Commit what was processed and leave the group."""
        await self._call(self.sync.close)

    async def __aenter__(self) -> AsyncStreamConsumer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


# The constructors forward every argument: their signature is the synchronous one, so it cannot drift.
AsyncStreamProducer.__init__.__signature__ = inspect.signature(StreamProducer.__init__)  # type: ignore[attr-defined]
AsyncStreamConsumer.__init__.__signature__ = inspect.signature(StreamConsumer.__init__)  # type: ignore[attr-defined]
