"""What a pipeline reads from and where failed items go: the `PipelineSource` and `DeadLetterSink` protocols.

A pipeline pulls `SourceItem`s from a `PipelineSource`, tells it to `pause()` when its bounded window is full
and to `resume()` once it has drained, and `commit()`s per partition the offset one past the contiguous prefix
of items whose results are fully done (Kafka's convention: the committed offset is the next one to read).
A `StreamConsumer` is adapted by `freight.pipeline.consumer_source.ConsumerSource` (`as_source` does it
for you); plain
and async iterables are adapted here with synthetic offsets and no-op flow control, and `MemorySource` is an
in-memory, multi-partition source for tests and benchmarks that records every pause, resume and commit.

A source may also be an `AttachableSource`: the run hands it a `RunControl` when it starts (so a Kafka
source can make the run forget partitions revoked in a rebalance) and awaits `detach()` after the final
commit.

The pipeline never looks inside `SourceItem.value` (it may be a lazy proxy that must stay unresolved) and
never inside `SourceItem.raw` (the source's own record, handed to the dead-letter sink untouched).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterable, AsyncIterator, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, cast, runtime_checkable

from freight.errors import ConfigError

if TYPE_CHECKING:
    from freight.pipeline.error_policy import ErrorReport

T = TypeVar("T")

PartitionKey = tuple[str, int]
"""(topic, partition): the unit offsets are tracked and committed in."""

ITERABLE_TOPIC = "<iterable>"
"""The synthetic topic name of items that come from a plain or async iterable."""


@dataclass(frozen=True, slots=True)
class SourceItem(Generic[T]):
    """One input: its value (possibly a lazy proxy), where it came from, and the source's raw record.

    A `marker` item only holds a position (e.g. an END_OF_STREAM event): the run counts it done at once,
    without a window slot or any stage, so the committed offset can move past it.
    """

    value: T
    partition_key: PartitionKey
    offset: int
    raw: Any = None
    marker: bool = False


@runtime_checkable
class PipelineSource(Protocol[T]):
    """A source of items with flow control and offset commits (implemented by `StreamConsumer`).

    - `__aiter__` yields `SourceItem`s; within one partition offsets strictly increase (gaps are fine).
    - `pause()` is called when the pipeline's window is full: stop fetching (Kafka: pause the assigned
      partitions) but stay a live group member. The pipeline pulls nothing until it calls `resume()`.
    - `commit(offsets)` maps (topic, partition) to the next offset to read: every item below it is done.
      Calls for a partition only ever move forward; the pipeline awaits one commit before starting another.
    """

    def __aiter__(self) -> AsyncIterator[SourceItem[T]]: ...

    def pause(self) -> None: ...

    def resume(self) -> None: ...

    async def commit(self, offsets: Mapping[PartitionKey, int]) -> None: ...


@runtime_checkable
class DeadLetterSink(Protocol):
    """Where items that failed under the `dead_letter` policy go (a DLQ topic in part 2).

    `send` returns once the record is durable; only then does the pipeline count the item as done, so a
    crash before that replays the item instead of losing it. An exception from `send` stops the pipeline.
    """

    async def send(self, item: SourceItem[Any], report: ErrorReport) -> None: ...


class RunControl(Protocol):
    """What a running pipeline offers its source (see `AttachableSource`)."""

    def revoke_partitions(self, partitions: Collection[PartitionKey]) -> dict[PartitionKey, int]:
        """Forget these partitions (lost in a rebalance) and return their done-prefix commit positions.

        Their items already in the pipeline still run and yield results, but are never committed by this run.
        Must be called on the run's event loop thread.
        """
        ...


@runtime_checkable
class AttachableSource(Protocol):
    """A source that wants to know the run it feeds: `attach` when the run starts, `detach` after it ended
    (after the final commit), so it can release threads and hooks it installed."""

    def attach(self, run: RunControl) -> None: ...

    async def detach(self) -> None: ...


class IterableSource(Generic[T]):
    """Adapts a plain or async iterable: one synthetic partition, offsets 0, 1, 2, ...

    Pause and resume only count (an iterable has nothing to pause); commits are recorded in `committed`.
    A plain iterable is advanced on the event loop, so it must not block.
    """

    def __init__(self, iterable: Iterable[T] | AsyncIterable[T], *, topic: str = ITERABLE_TOPIC) -> None:
        if isinstance(iterable, str | bytes | bytearray | memoryview):
            raise ConfigError(
                f"a pipeline source must be an iterable of items, not {type(iterable).__name__} "
                "(wrap a single value in a list)"
            )
        if not isinstance(iterable, AsyncIterable | Iterable):
            raise ConfigError(
                f"a pipeline source must be a PipelineSource, an async iterable or an iterable, "
                f"not {type(iterable).__name__}"
            )
        self._iterable = iterable
        self._key: PartitionKey = (topic, 0)
        self.pauses = 0
        self.resumes = 0
        self.committed: dict[PartitionKey, int] = {}

    def __aiter__(self) -> AsyncIterator[SourceItem[T]]:
        if isinstance(self._iterable, AsyncIterable):
            return self._from_async(self._iterable)
        return self._from_sync(self._iterable)

    async def _from_async(self, iterable: AsyncIterable[T]) -> AsyncIterator[SourceItem[T]]:
        offset = 0
        async for value in iterable:
            yield SourceItem(value, self._key, offset)
            offset += 1

    async def _from_sync(self, iterable: Iterable[T]) -> AsyncIterator[SourceItem[T]]:
        for offset, value in enumerate(iterable):
            yield SourceItem(value, self._key, offset)

    def pause(self) -> None:
        self.pauses += 1

    def resume(self) -> None:
        self.resumes += 1

    async def commit(self, offsets: Mapping[PartitionKey, int]) -> None:
        self.committed.update(offsets)


def as_source(source: PipelineSource[T] | AsyncIterable[T] | Iterable[T]) -> PipelineSource[T]:
    """The source itself if it implements `PipelineSource`; a `ConsumerSource` around a `StreamConsumer` (or
    an `AsyncStreamConsumer`); else an `IterableSource` around an (async) iterable."""
    if isinstance(source, PipelineSource):
        return source
    if _is_stream_consumer(source):
        from freight.pipeline.consumer_source import ConsumerSource

        consumer_source: Any = ConsumerSource(source)  # type: ignore[arg-type]  # checked just above
        return cast(PipelineSource[T], consumer_source)
    return IterableSource(source)


def _is_stream_consumer(obj: object) -> bool:
    """Without importing Kafka: an object can only be a stream consumer if its module is already loaded."""
    consumer_module = sys.modules.get("freight.stream.consumer")
    if consumer_module is not None and isinstance(obj, consumer_module.StreamConsumer):
        return True
    aio_module = sys.modules.get("freight.stream.aio")
    return aio_module is not None and isinstance(obj, aio_module.AsyncStreamConsumer)


@dataclass
class MemorySource(Generic[T]):
    """An in-memory, multi-partition source that behaves like a consumer group member, for tests and benches.

    `partitions` maps (topic, partition) to that partition's values; offsets start at `start[key]` (0 by
    default) and partitions are interleaved round-robin. It records everything the pipeline does to it:
    pauses, resumes, every commit, and items pulled while paused (which must never happen). `check_commit`
    (if set) sees every commit before it is applied, so a test can assert that no commit passes an unfinished
    item. `crash()` simulates the process dying: later commits are lost. `restart()` gives a new member of
    the same group that starts from the committed offsets.
    """

    partitions: Mapping[PartitionKey, Sequence[T]]
    start: Mapping[PartitionKey, int] = field(default_factory=dict)
    check_commit: Callable[[Mapping[PartitionKey, int]], None] | None = None
    delay: float = 0.0
    pulled: int = 0
    pulled_while_paused: int = 0
    pauses: int = 0
    resumes: int = 0
    paused: bool = False
    crashed: bool = False
    committed: dict[PartitionKey, int] = field(default_factory=dict)
    commit_log: list[dict[PartitionKey, int]] = field(default_factory=list)

    @classmethod
    def single(cls, values: Sequence[T], topic: str = "memory") -> MemorySource[T]:
        """One partition, (topic, 0), holding `values` at offsets 0, 1, 2, ..."""
        return cls({(topic, 0): values})

    def __post_init__(self) -> None:
        self.committed = dict(self.start)

    def __aiter__(self) -> AsyncIterator[SourceItem[T]]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[SourceItem[T]]:
        cursors = {key: self.start.get(key, 0) for key in self.partitions}
        while cursors:
            for key in list(cursors):
                offset = cursors[key]
                values = self.partitions[key]
                if offset >= len(values):
                    del cursors[key]
                    continue
                cursors[key] = offset + 1
                if self.paused:
                    self.pulled_while_paused += 1
                if self.delay:
                    await asyncio.sleep(self.delay)
                self.pulled += 1
                yield SourceItem(values[offset], key, offset, raw=("memory", key, offset))

    def pause(self) -> None:
        self.pauses += 1
        self.paused = True

    def resume(self) -> None:
        self.resumes += 1
        self.paused = False

    async def commit(self, offsets: Mapping[PartitionKey, int]) -> None:
        if self.crashed:
            return
        if self.check_commit is not None:
            self.check_commit(offsets)
        for key, offset in offsets.items():
            if offset < self.committed.get(key, 0):
                raise AssertionError(f"commit of {key} moved backwards: {offset} < {self.committed[key]}")
        self.committed.update(offsets)
        self.commit_log.append(dict(offsets))

    def crash(self) -> None:
        """From now on commits are lost, as if the process had died."""
        self.crashed = True

    def restart(self) -> MemorySource[T]:
        """A new group member over the same partitions, starting at the committed offsets."""
        return MemorySource(
            self.partitions, start=dict(self.committed), check_commit=self.check_commit, delay=self.delay
        )


@dataclass
class MemoryDeadLetterSink:
    """Keeps dead-lettered items and their error reports in a list (tests, benches, notebooks)."""

    records: list[tuple[SourceItem[Any], ErrorReport]] = field(default_factory=list)

    async def send(self, item: SourceItem[Any], report: ErrorReport) -> None:
        self.records.append((item, report))

    def __len__(self) -> int:
        return len(self.records)
