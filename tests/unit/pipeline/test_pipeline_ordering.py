"""Ordering and completeness of both execution modes under random per-item latencies (hypothesis).

Latencies are mostly event-loop yields (deterministic given the draw, no wall clock) with a few real
sub-millisecond sleeps, so runs are fast while completion order differs from input order.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from freight.pipeline import MemorySource, Pipeline, batch_stage, stage

Item = tuple[int, int, bool]  # (index, latency in loop yields, also a real sleep)


async def _latency(yields: int, sleep: bool) -> None:
    for _ in range(yields):
        await asyncio.sleep(0)
    if sleep:
        await asyncio.sleep(0.0002)


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(0, 40))
    items = [(i, draw(st.integers(0, 8)), draw(st.booleans()) and draw(st.booleans())) for i in range(n)]
    use_batch = draw(st.booleans())
    max_size = draw(st.integers(1, 6))
    min_size = draw(st.integers(1, max_size))
    window = draw(st.integers(max_size if use_batch else 1, 12))
    return {
        "items": items,
        "mode": draw(st.sampled_from(["ordered", "as_completed"])),
        "concurrency": draw(st.integers(1, 5)),
        "filter_mod": draw(st.sampled_from([0, 2, 3])),  # 0: no filtering
        "use_batch": use_batch,
        "max_size": max_size,
        "min_size": min_size,
        "max_wait": draw(st.sampled_from([0.001, 0.01, 5.0])),
        "window": window,
        "resume_at": draw(st.integers(0, window - 1)),
        "partitions": draw(st.integers(1, 3)),
    }


def _build(sc: dict[str, Any], batch_sizes: list[int]) -> Pipeline[Item, int]:
    @stage(concurrency=sc["concurrency"])
    async def first(item: Item) -> Item | None:
        index, yields, sleep = item
        await _latency(yields, sleep)
        if sc["filter_mod"] and index % sc["filter_mod"] == 0:
            return None
        return item

    @stage(concurrency=sc["concurrency"])
    async def last(item: Item) -> int:
        index, yields, _ = item
        await _latency(yields % 3, False)
        return index * 10

    if not sc["use_batch"]:
        return first | last

    @batch_stage(max_size=sc["max_size"], min_size=sc["min_size"], max_wait=sc["max_wait"], concurrency=2)
    async def batch(items: list[Item]) -> list[Item]:
        batch_sizes.append(len(items))
        await _latency(sum(y for _, y, _ in items) % 5, False)
        return items

    return first | batch | last


@settings(max_examples=80, deadline=None)
@given(scenarios())
def test_results_are_complete_and_ordered_as_the_mode_says(sc: dict[str, Any]) -> None:
    items: list[Item] = sc["items"]
    parts = sc["partitions"]
    # spread the items over partitions round-robin; MemorySource interleaves them back in the same order
    partitions = {("t", p): [it for it in items if it[0] % parts == p] for p in range(parts)}
    source = MemorySource(partitions)
    batch_sizes: list[int] = []
    pipeline = _build(sc, batch_sizes)
    run = pipeline(
        source, mode=sc["mode"], max_in_flight=sc["window"], resume_at=sc["resume_at"], commit_interval=0
    )
    results = asyncio.run(asyncio.wait_for(run.collect(), 30))

    # round-robin over partitions filled round-robin: the source hands items out in index order
    expected = [it[0] * 10 for it in items if not (sc["filter_mod"] and it[0] % sc["filter_mod"] == 0)]
    if sc["mode"] == "ordered":
        assert results == expected
    else:
        assert Counter(results) == Counter(expected)
    # every input was accounted for exactly once, and everything was committed
    stats = run.stats
    assert stats.admitted == len(items) == stats.yielded + stats.filtered
    assert source.committed == {key: len(vals) for key, vals in partitions.items() if vals}
    assert stats.max_in_flight <= sc["window"]
    assert source.pulled_while_paused == 0 and source.pauses == source.resumes
    if sc["use_batch"]:
        assert all(1 <= size <= sc["max_size"] for size in batch_sizes)
        assert sum(batch_sizes) == len(items) - stats.filtered


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 20), min_size=1, max_size=25), st.integers(1, 6))
def test_sync_stages_keep_order_too(latencies: list[int], concurrency: int) -> None:
    import time

    @stage(concurrency=concurrency)
    def work(item: tuple[int, int]) -> int:
        index, latency = item
        time.sleep(latency / 100_000)  # up to 0.2 ms in a thread
        return index

    items = list(enumerate(latencies))
    assert asyncio.run(work(items, max_in_flight=4).collect()) == list(range(len(items)))
    assert sorted(asyncio.run(work.as_completed(items, max_in_flight=4).collect())) == list(range(len(items)))


def test_as_completed_yields_fast_items_before_a_slow_one() -> None:
    async def main() -> tuple[list[int], list[int]]:
        gate = asyncio.Event()

        @stage(concurrency=4)
        async def work(x: int) -> int:
            if x == 0:
                await gate.wait()
            return x

        seen: list[int] = []
        ordered_seen: list[int] = []
        async for x in work.as_completed(range(4)):
            seen.append(x)
            if len(seen) == 3:
                gate.set()  # only released once the three fast ones came out
        gate.clear()

        async def ordered() -> None:
            async for x in work(range(4)):
                ordered_seen.append(x)

        task = asyncio.create_task(ordered())
        for _ in range(50):
            await asyncio.sleep(0)
        assert ordered_seen == []  # in order, nothing passes the slow head
        gate.set()
        await task
        return seen, ordered_seen

    seen, ordered_seen = asyncio.run(main())
    assert seen == [1, 2, 3, 0]
    assert ordered_seen == [0, 1, 2, 3]
