"""Bounded buffers and backpressure: a fast source feeding a slow stage never makes the pipeline grow.

The bounds are derived from the configuration (`max_in_flight`), not from timings: items pulled from the
source and not yet done, queue depths, the reorder buffer and traced memory all stay within it.
"""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import AsyncIterator, Iterator, Mapping

import pytest

from freight.pipeline import MemorySource, PartitionKey, SourceItem, batch_stage, stage


class CountingSource:
    """A fast, endless-ish source that checks, at every pull, how many items are out and not yet done."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.pulled = 0
        self.done = 0  # advanced by the test's loop body once it finished an item
        self.max_outstanding = 0
        self.paused = False
        self.pulled_while_paused = 0
        self.pauses = 0
        self.resumes = 0
        self.committed: dict[PartitionKey, int] = {}

    async def _items(self) -> AsyncIterator[SourceItem[int]]:
        for offset in range(self.n):
            if self.paused:
                self.pulled_while_paused += 1
            self.pulled += 1
            self.max_outstanding = max(self.max_outstanding, self.pulled - self.done)
            yield SourceItem(offset, ("fast", 0), offset)

    def __aiter__(self) -> AsyncIterator[SourceItem[int]]:
        return self._items()

    def pause(self) -> None:
        self.pauses += 1
        self.paused = True

    def resume(self) -> None:
        self.resumes += 1
        self.paused = False

    async def commit(self, offsets: Mapping[PartitionKey, int]) -> None:
        self.committed.update(offsets)


@pytest.mark.parametrize("mode", ["ordered", "as_completed"])
def test_fast_source_slow_stage_stays_within_the_window(mode: str) -> None:
    window, resume_at, n = 12, 4, 400
    source = CountingSource(n)

    @stage(concurrency=3)
    async def slow(x: int) -> int:
        await asyncio.sleep(0.0002 if x % 7 else 0.002)
        return x

    @batch_stage(max_size=5, min_size=2, max_wait=0.005, concurrency=2)
    async def batch(xs: list[int]) -> list[int]:
        await asyncio.sleep(0.0005)
        return xs

    async def main() -> list[int]:
        out = []
        run = (slow | batch)(source, mode=mode, max_in_flight=window, resume_at=resume_at)  # type: ignore[arg-type]
        async for x in run:
            out.append(x)
            if x % 50 == 0:
                await asyncio.sleep(0.002)  # a slow consumer now and then
            source.done += 1
        stats = run.stats
        assert stats.max_in_flight <= window
        assert stats.max_queued <= window
        assert stats.max_reorder <= window
        return out

    out = asyncio.run(main())
    assert sorted(out) == list(range(n))
    assert source.max_outstanding <= window  # pulled and not finished, measured by the source itself
    assert source.pauses > 0 and source.pauses == source.resumes
    assert source.pulled_while_paused == 0
    assert source.committed == {("fast", 0): n}


def test_ordered_mode_stops_pulling_behind_a_slow_item() -> None:
    window = 10

    async def main() -> None:
        gate = asyncio.Event()
        source = MemorySource.single(list(range(200)))

        @stage(concurrency=window)
        async def work(x: int) -> int:
            if x == 0:
                await gate.wait()
            return x

        run = work(source, max_in_flight=window, resume_at=2)
        task = asyncio.create_task(run.collect())
        for _ in range(1000):
            if source.paused:
                break
            await asyncio.sleep(0)
        # the head is stuck: the window is full, the source paused, the reorder buffer holds the rest only
        for _ in range(100):
            await asyncio.sleep(0)
        assert source.paused and source.pulled == window
        assert run.stats.max_reorder == window - 1
        assert run.in_flight == window
        gate.set()
        results = await asyncio.wait_for(task, 10)
        assert results == list(range(200))
        assert source.pulled_while_paused == 0 and source.resumes == source.pauses
        assert run.stats.max_reorder <= window

    asyncio.run(main())


def test_traced_memory_is_bounded_by_the_window_not_the_input() -> None:
    mib = 1 << 20
    window, n = 6, 150  # 150 MiB pass through; at most ~window MiB may be alive at once

    def payloads() -> Iterator[bytes]:
        for _ in range(n):
            yield bytes(mib)

    @stage(concurrency=2)
    async def slow(b: bytes) -> bytes:
        await asyncio.sleep(0.0005)
        return b

    @batch_stage(max_size=3, max_wait=0.01)
    async def batch(bs: list[bytes]) -> list[int]:
        return [len(b) for b in bs]

    async def main() -> int:
        total = 0
        async for size in (slow | batch)(payloads(), max_in_flight=window):
            total += size
        return total

    tracemalloc.start()
    try:
        total = asyncio.run(main())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == n * mib
    # at most `window` payloads are alive (the reader takes a slot before it pulls); one MiB of slack
    assert peak < (window + 1) * mib, f"peak {peak / mib:.1f} MiB"
