"""asyncio variants: `AsyncStreamProducer` and `AsyncStreamConsumer`.

They wrap the synchronous classes and run blocking work (store writes, Kafka polls) in a worker thread,
so an event loop never blocks on I/O. Delivery futures become awaitables.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

from freight.schemas.events import EvictionMode
from freight.stream.consumer import StreamConsumer, StreamRecord
from freight.stream.metadata import ItemMetadata
from freight.stream.producer import RecordPosition, StreamProducer
from freight.stream.proxy import Proxy, extract


class AsyncStreamProducer:
    """`StreamProducer` for asyncio: `await producer.send(...)` returns where the event landed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.sync = StreamProducer(*args, **kwargs)

    async def send(
        self,
        topic: str,
        obj: Any,
        *,
        stream: str = "default",
        metadata: Mapping[str, str] | None = None,
        evict: EvictionMode | str | None = None,
    ) -> RecordPosition | None:
        """Store and produce in a worker thread, then await Kafka's acknowledgement (None if filtered)."""
        result = await asyncio.to_thread(
            self.sync.send, topic, obj, stream=stream, metadata=metadata, evict=evict
        )
        return await asyncio.to_thread(result.result)

    async def end_stream(self, topic: str, stream: str = "default") -> RecordPosition | None:
        result = await asyncio.to_thread(self.sync.end_stream, topic, stream)
        return await asyncio.to_thread(result.result)

    async def flush(self, timeout: float | None = None) -> None:
        await asyncio.to_thread(self.sync.flush, timeout)

    async def close(self) -> None:
        await asyncio.to_thread(self.sync.close)

    async def __aenter__(self) -> AsyncStreamProducer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class AsyncStreamConsumer:
    """`StreamConsumer` for asyncio: `async for proxy in consumer`. One thread polls at a time."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.sync = StreamConsumer(*args, **kwargs)
        self._lock = asyncio.Lock()

    async def next_record(
        self, timeout: float | None = None, *, include_end: bool = True
    ) -> StreamRecord | None:
        async with self._lock:
            return await asyncio.to_thread(self.sync.next_record, timeout, include_end=include_end)

    async def poll(self, timeout: float = 1.0) -> Proxy | None:
        record = await self.next_record(timeout, include_end=False)
        return None if record is None else record.proxy

    def __aiter__(self) -> AsyncIterator[Proxy]:
        return self._proxies()

    async def _proxies(self) -> AsyncIterator[Proxy]:
        while True:
            record = await self.next_record(include_end=False)
            if record is None or record.proxy is None:
                return
            yield record.proxy

    async def iter_with_metadata(self) -> AsyncIterator[tuple[ItemMetadata, Proxy]]:
        while True:
            record = await self.next_record(include_end=False)
            if record is None or record.proxy is None:
                return
            yield record.metadata, record.proxy

    async def iter_objects(self) -> AsyncIterator[Any]:
        """Resolved objects; resolution (store I/O) runs in a worker thread."""
        async for proxy in self:
            yield await asyncio.to_thread(extract, proxy)

    async def commit(self) -> dict[tuple[str, int], int]:
        async with self._lock:
            return await asyncio.to_thread(self.sync.commit)

    async def close(self) -> None:
        async with self._lock:
            await asyncio.to_thread(self.sync.close)

    async def __aenter__(self) -> AsyncStreamConsumer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
