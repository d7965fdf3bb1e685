"""The engine's side of Kafka sources, without Kafka: partitions revoked mid-run, position-only markers,
attach/detach around the run, and a source-supplied dead-letter sink.

`RebalancingSource` behaves like a group member that loses a partition after some items and gets it back
from the position the run handed over (as a new owner would start from the committed offset): the items it
handed out before stay in the pipeline and must neither break the offset tracker nor be committed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest

from freight.errors import ConfigError, PipelineError
from freight.pipeline import (
    ErrorReport,
    MemoryDeadLetterSink,
    OffsetTracker,
    PartitionKey,
    RunControl,
    SourceItem,
    stage,
)
from freight.pipeline.consumer_source import ConsumerSource

A: PartitionKey = ("t", 0)
B: PartitionKey = ("t", 1)


def test_forget_returns_the_done_prefix_and_makes_older_items_stale() -> None:
    tracker = OffsetTracker()
    gen = tracker.register(A, 0)
    for offset in (1, 2, 3):
        assert tracker.register(A, offset) == gen
    tracker.register(B, 0)
    tracker.done(A, 0, gen)
    tracker.done(A, 2, gen)
    assert tracker.forget([A]) == {A: 1}  # 2 is done but behind 1: not in the prefix
    assert tracker.generation(A) == gen + 1 and tracker.generation(B) == 0
    assert tracker.done(A, 1, gen) is False  # stale: ignored, no error
    new = tracker.register(A, 1)  # the partition came back from the handed-over position
    assert new == gen + 1 and tracker.done(A, 1, new) is True and tracker.positions() == {A: 2}
    tracker.mark_committed({A: 2, ("t", 9): 5})  # a partition forgotten during the commit: skipped
    assert tracker.committed() == {A: 2}
    with pytest.raises(PipelineError, match="never registered"):
        tracker.done(("t", 7), 0)


class RebalancingSource:
    """Partition A is revoked after `revoke_after` of its items went out, then handed back (re-delivered
    from the returned position); B is untouched. Records everything the run does to it."""

    def __init__(self, n: int, revoke_after: int) -> None:
        self.n = n
        self.revoke_after = revoke_after
        self.run: RunControl | None = None
        self.detached = 0
        self.handed_over: dict[PartitionKey, int] = {}
        self.commits: list[dict[PartitionKey, int]] = []
        self.committed: dict[PartitionKey, int] = {}

    def attach(self, run: RunControl) -> None:
        self.run = run

    async def detach(self) -> None:
        self.detached += 1

    def __aiter__(self) -> AsyncIterator[SourceItem[tuple[PartitionKey, int]]]:
        return self._items()

    async def _items(self) -> AsyncIterator[SourceItem[tuple[PartitionKey, int]]]:
        for offset in range(self.revoke_after):
            yield SourceItem((A, offset), A, offset)
            yield SourceItem((B, offset), B, offset)
        await asyncio.sleep(0.01)  # let some of them finish
        assert self.run is not None
        self.handed_over = self.run.revoke_partitions([A])
        start = self.handed_over.get(A, 0)
        self.committed[A] = max(self.committed.get(A, 0), start)  # committed on revoke
        for offset in range(start, self.n):
            yield SourceItem((A, offset), A, offset)
        for offset in range(self.revoke_after, self.n):
            yield SourceItem((B, offset), B, offset)
        yield SourceItem(None, A, self.n, marker=True)  # an END_OF_STREAM after the last item

    def pause(self) -> None:
        pass

    def resume(self) -> None:
        pass

    async def commit(self, offsets: Mapping[PartitionKey, int]) -> None:
        for key, offset in offsets.items():
            assert offset >= self.committed.get(key, 0), f"{key} moved back to {offset}"
        self.commits.append(dict(offsets))
        self.committed.update(offsets)


@pytest.mark.parametrize("mode", ["ordered", "as_completed"])
def test_revoked_partition_is_forgotten_and_redelivered_items_are_tracked_afresh(mode: str) -> None:
    source = RebalancingSource(n=40, revoke_after=12)
    results: list[tuple[PartitionKey, int]] = []

    @stage(concurrency=4)
    async def work(item: tuple[PartitionKey, int]) -> tuple[PartitionKey, int]:
        await asyncio.sleep(0.001 * (item[1] % 3))
        return item

    async def main() -> Any:
        async with work(source, mode=mode, max_in_flight=8, commit_interval=0) as run:  # type: ignore[arg-type]
            async for item in run:
                results.append(item)
        return run

    run = asyncio.run(main())
    start = source.handed_over.get(A, 0)
    assert start <= 12
    # Items of A from before the revoke finished and were yielded; from `start` on, A came again.
    assert sorted(set(results)) == sorted({(A, o) for o in range(40)} | {(B, o) for o in range(40)})
    assert all(results.count((A, o)) == 1 for o in range(start))
    assert source.committed == {A: 41, B: 40}  # the marker at 40 is committed past too
    assert run.stats.revoked == 1 and run.stats.markers == 1 and run.stats.admitted == 80 + (12 - start)
    assert source.detached == 1  # after the final commit


def test_a_source_can_supply_the_dead_letter_sink_and_is_detached_after_a_failure() -> None:
    sink = MemoryDeadLetterSink()

    class Source(RebalancingSource):
        def default_dead_letter(self) -> MemoryDeadLetterSink:
            return sink

    @stage(on_error="dead_letter")
    async def odd_only(item: tuple[PartitionKey, int]) -> int:
        if item[1] % 2 == 0:
            raise ValueError("even")
        return item[1]

    source = Source(n=6, revoke_after=6)
    results = asyncio.run(odd_only(source).collect())  # type: ignore[arg-type]
    assert sorted(results) == [1, 1, 3, 3, 5, 5]
    assert sorted((item.partition_key, item.offset) for item, _ in sink.records) == [
        (key, o) for key in (A, B) for o in (0, 2, 4)
    ]
    assert all(isinstance(report, ErrorReport) for _, report in sink.records)

    @stage
    async def boom(item: Any) -> Any:
        raise RuntimeError("stage broke")

    failing = Source(n=6, revoke_after=6)
    with pytest.raises(PipelineError, match="stage broke"):
        asyncio.run(boom(failing).collect())  # type: ignore[arg-type]
    assert failing.detached == 1


def test_consumer_source_rejects_what_is_not_a_stream_consumer() -> None:
    with pytest.raises(ConfigError, match="needs a freight StreamConsumer"):
        ConsumerSource([1, 2, 3])  # type: ignore[arg-type]

    class Looks:  # the consumer surface ConsumerSource checks for (nothing is called here)
        batch_size = 10
        idle_timeout = None
        next_record = pause = resume = commit = assignment = wait_for_assignment = print

    with pytest.raises(ConfigError, match="max_held"):
        ConsumerSource(Looks(), max_held=0)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="poll_interval"):
        ConsumerSource(Looks(), poll_interval=0)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="pause_delay"):
        ConsumerSource(Looks(), pause_delay=-1)  # type: ignore[arg-type]
    assert ConsumerSource(Looks()).max_held == 10  # type: ignore[arg-type]


class BrokenInputError(Exception):
    pass


@pytest.mark.parametrize("mode", ["ordered", "as_completed"])
def test_a_failing_source_ends_the_input_there_and_raises_after_the_items_before_it(mode: str) -> None:
    committed: dict[PartitionKey, int] = {}

    class Source:
        async def _items(self) -> AsyncIterator[SourceItem[int]]:
            for offset in range(6):
                yield SourceItem(offset, A, offset)
            raise BrokenInputError("bad record at offset 6")

        def __aiter__(self) -> AsyncIterator[SourceItem[int]]:
            return self._items()

        def pause(self) -> None:
            pass

        def resume(self) -> None:
            pass

        async def commit(self, offsets: Mapping[PartitionKey, int]) -> None:
            committed.update(offsets)

    @stage(concurrency=3)
    async def slow(x: int) -> int:
        await asyncio.sleep(0.002 * (6 - x))  # the first items finish last
        return x

    seen: list[int] = []

    async def main() -> None:
        async for x in slow(Source(), mode=mode):  # type: ignore[arg-type]
            seen.append(x)

    with pytest.raises(BrokenInputError, match="offset 6"):
        asyncio.run(main())
    assert sorted(seen) == list(range(6)) and committed == {A: 6}
