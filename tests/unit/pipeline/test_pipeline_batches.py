"""Batch stages: the final partial batch is processed; a small batch is flushed after max_wait, never lost."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np
import pytest

from freight.errors import PipelineError
from freight.pipeline import BatchResultError, MemoryDeadLetterSink, batch_stage, stage


@pytest.mark.parametrize("mode", ["ordered", "as_completed"])
def test_final_partial_batch_below_min_size_is_processed(mode: str) -> None:
    sizes: list[int] = []

    @batch_stage(max_size=4, min_size=4, max_wait=60)
    async def square(xs: list[int]) -> list[int]:
        sizes.append(len(xs))
        return [x * x for x in xs]

    run = square(range(10), mode=mode)  # type: ignore[arg-type]
    results = asyncio.run(asyncio.wait_for(run.collect(), 10))  # max_wait is a minute: the end flushes
    assert sorted(results) == [x * x for x in range(10)]
    assert sorted(sizes) == [2, 4, 4] and run.stats.batches == 3


def test_small_batch_is_flushed_after_max_wait_while_the_source_is_quiet() -> None:
    async def main() -> list[int]:
        gate = asyncio.Event()
        first_batch = asyncio.Event()
        sizes: list[int] = []

        async def source() -> AsyncIterator[int]:
            for i in range(3):
                yield i
            await gate.wait()  # the source goes quiet (no new messages)
            for i in range(3, 5):
                yield i

        @batch_stage(max_size=10, min_size=5, max_wait=0.02)
        async def collect(xs: list[int]) -> list[int]:
            sizes.append(len(xs))
            first_batch.set()
            return xs

        task = asyncio.create_task(collect(source()).collect())
        await asyncio.wait_for(first_batch.wait(), 10)
        assert sizes == [3] and not gate.is_set()  # flushed below min_size, while the source was still quiet
        gate.set()
        results = await asyncio.wait_for(task, 10)
        assert sizes == [3, 2]
        return results

    assert asyncio.run(main()) == [0, 1, 2, 3, 4]


def test_batch_below_min_size_goes_when_the_window_is_full_instead_of_waiting() -> None:
    async def main() -> tuple[list[int], list[list[int]]]:
        gate = asyncio.Event()
        batches: list[list[int]] = []

        @stage(concurrency=4)
        async def head_waits(x: int) -> int:
            if x == 0:
                await gate.wait()  # the head arrives only after a full batch of later items ran
            return x

        @batch_stage(max_size=4, min_size=4, max_wait=60)
        async def batch(xs: list[int]) -> list[int]:
            batches.append(xs)
            gate.set()
            return xs

        # Later items make a full batch and wait in the reorder buffer for 0; the rest and then 0 reach the
        # batcher and the window (6) is full. Nothing else can arrive until that batch runs: with max_wait
        # a minute and min_size 4, only the "window full, nothing upstream" rule lets this finish.
        results = await asyncio.wait_for((head_waits | batch)(range(6), max_in_flight=6).collect(), 10)
        return results, batches

    results, batches = asyncio.run(main())
    assert results == list(range(6))
    assert len(batches) == 2 and 0 in batches[1] and len(batches[1]) == 2


def test_batch_at_min_size_does_not_wait_for_input_not_yet_read() -> None:
    sizes: list[int] = []

    async def trickle() -> AsyncIterator[int]:
        for i in range(12):
            await asyncio.sleep(0.002)  # a quiet topic: one message at a time
            yield i

    @batch_stage(max_size=100, min_size=3, max_wait=60)
    async def batch(xs: list[int]) -> list[int]:
        sizes.append(len(xs))
        return xs

    # with max_wait a minute, batches only go early because they reached min_size (or the input ended)
    assert asyncio.run(asyncio.wait_for(batch(trickle()).collect(), 10)) == list(range(12))
    assert all(size >= 3 for size in sizes) and sum(sizes) == 12 and len(sizes) >= 2


def test_batches_never_exceed_max_size_and_concurrency_is_respected() -> None:
    running = 0
    peak = 0

    @stage(concurrency=8)
    async def fast(x: int) -> int:
        return x

    @batch_stage(max_size=3, min_size=1, max_wait=0.001, concurrency=2)
    async def batch(xs: list[int]) -> list[int]:
        nonlocal running, peak
        assert len(xs) <= 3
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.001)
        running -= 1
        return xs

    assert asyncio.run((fast | batch)(range(50), max_in_flight=16).collect()) == list(range(50))
    assert 1 <= peak <= 2


def test_sync_batch_may_return_a_numpy_array_and_none_filters() -> None:
    @batch_stage(max_size=4)
    def halves(xs: list[int]) -> list[float | None]:
        return np.array([x / 2 for x in xs], dtype=object)  # type: ignore[return-value]

    @batch_stage(max_size=4)
    def drop_small(xs: list[float]) -> list[float | None]:
        return [x if x >= 1 else None for x in xs]

    assert asyncio.run((halves | drop_small)(range(5)).collect()) == [1.0, 1.5, 2.0]


def test_wrong_number_of_results_is_an_error_under_the_policy() -> None:
    @batch_stage(max_size=3)
    async def broken(xs: list[int]) -> list[int]:
        return xs[:-1]

    with pytest.raises(PipelineError, match="returned 2 results for 3 items") as info:
        asyncio.run(broken(range(3)).collect())
    assert isinstance(info.value.__cause__, BatchResultError)

    sink = MemoryDeadLetterSink()
    skipping = batch_stage(max_size=3, on_error="dead_letter")(broken.fn)
    assert asyncio.run(skipping(range(3), dead_letter=sink).collect()) == []
    assert [item.offset for item, _ in sink.records] == [0, 1, 2]
    assert {report.batch_size for _, report in sink.records} == {3}
