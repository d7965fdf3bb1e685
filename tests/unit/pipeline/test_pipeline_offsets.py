"""Offsets: only the contiguous done prefix is committed; a crash and restart replays the unfinished items.

The crash test is a hypothesis property over random partitions, latencies, filters, failures (dead-lettered),
execution modes and crash points. A `MemorySource` checks every commit against the set of items the test saw
finished; after `crash()` commits are lost, as when a process dies; `restart()` resumes from the committed
offsets like a new member of the consumer group.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from freight.errors import PipelineError
from freight.pipeline import (
    ErrorReport,
    MemorySource,
    OffsetTracker,
    PartitionKey,
    SourceItem,
    StageError,
    batch_stage,
    stage,
)

A: PartitionKey = ("t", 0)
B: PartitionKey = ("t", 1)


def test_tracker_commits_only_the_contiguous_done_prefix() -> None:
    tracker = OffsetTracker()
    for offset in (0, 1, 2, 5, 9):  # gaps, as after compaction
        tracker.register(A, offset)
    tracker.register(B, 0)
    assert tracker.positions() == {}
    assert tracker.done(A, 2) is False  # done, but behind 0 and 1
    assert tracker.done(A, 5) is False
    assert tracker.first_unfinished(A) == 0
    assert tracker.done(A, 0) is True and tracker.positions() == {A: 1}
    assert tracker.done(A, 1) is True and tracker.positions() == {A: 6}  # 1, 2 and 5 were done
    assert tracker.first_unfinished(A) == 9 and tracker.outstanding() == 2
    assert tracker.uncommitted() == {A: 6}
    tracker.mark_committed({A: 6})
    assert tracker.uncommitted() == {} and tracker.committed() == {A: 6}
    assert tracker.done(B, 0) is True and tracker.uncommitted() == {B: 1}
    assert tracker.done(A, 9) is True and tracker.positions() == {A: 10, B: 1}
    assert tracker.first_unfinished(A) is None and tracker.outstanding() == 0


def test_tracker_rejects_offsets_out_of_order_and_double_done() -> None:
    tracker = OffsetTracker()
    tracker.register(A, 3)
    with pytest.raises(PipelineError, match="went backwards"):
        tracker.register(A, 3)
    tracker.done(A, 3)
    with pytest.raises(PipelineError, match="twice or never registered"):
        tracker.done(A, 3)


@st.composite
def crash_scenarios(draw: st.DrawFn) -> dict[str, Any]:
    sizes = draw(st.lists(st.integers(0, 25), min_size=1, max_size=3))
    keys = [("t", p) for p in range(len(sizes))]
    all_items = [(k, o) for k, n in zip(keys, sizes, strict=True) for o in range(n)]
    subset = st.sets(st.sampled_from(all_items)) if all_items else st.just(set())
    total = len(all_items)
    return {
        "sizes": sizes,
        "keys": keys,
        "filtered": draw(subset),
        "failing": draw(subset),
        "latency": {it: draw(st.integers(0, 6)) for it in all_items},
        "crash_after": draw(st.integers(0, total)),
        "mode": draw(st.sampled_from(["ordered", "as_completed"])),
        "window": draw(st.integers(4, 10)),
        "use_batch": draw(st.booleans()),
    }


@settings(max_examples=60, deadline=None)
@given(crash_scenarios())
def test_crash_and_restart_processes_everything_and_never_commits_past_unfinished(sc: dict[str, Any]) -> None:
    partitions = {key: [(key, o) for o in range(n)] for key, n in zip(sc["keys"], sc["sizes"], strict=True)}
    everything = {it for values in partitions.values() for it in values}
    finished: set[tuple[PartitionKey, int]] = set()  # what the application saw completed
    processed: set[tuple[PartitionKey, int]] = set()  # what entered the first stage, in any run
    dead: list[tuple[PartitionKey, int]] = []

    def check_commit(offsets: Mapping[PartitionKey, int]) -> None:
        for key, position in offsets.items():
            unfinished = [o for o in range(position) if (key, o) not in finished]
            assert not unfinished, f"commit {key}@{position} passes unfinished offsets {unfinished}"

    class Sink:
        async def send(self, item: SourceItem[Any], report: ErrorReport) -> None:
            assert (item.partition_key, item.offset) == item.value and report.offset == item.offset
            dead.append(item.value)
            finished.add(item.value)

    @stage(concurrency=3)
    async def first(it: tuple[PartitionKey, int]) -> tuple[PartitionKey, int] | None:
        processed.add(it)
        for _ in range(sc["latency"][it]):
            await asyncio.sleep(0)
        if it in sc["filtered"]:
            finished.add(it)
            return None
        return it

    @stage(concurrency=2, on_error="dead_letter")
    async def risky(it: tuple[PartitionKey, int]) -> tuple[PartitionKey, int]:
        for _ in range(sc["latency"][it] % 3):
            await asyncio.sleep(0)
        if it in sc["failing"]:
            raise ValueError(f"cannot process {it}")
        return it

    @batch_stage(max_size=3, min_size=2, max_wait=0.001)
    async def batch(its: list[tuple[PartitionKey, int]]) -> list[tuple[PartitionKey, int]]:
        return its

    pipeline = first | risky | batch if sc["use_batch"] else first | risky

    class CrashError(Exception):
        pass

    async def run_once(source: MemorySource[Any], crash_after: int | None) -> None:
        seen = 0
        async with pipeline(
            source, mode=sc["mode"], max_in_flight=sc["window"], dead_letter=Sink(), commit_interval=0
        ) as run:
            async for it in run:
                if seen == crash_after:
                    source.crash()  # the process dies while holding `it`: it is not finished
                    raise CrashError
                finished.add(it)
                seen += 1

    source = MemorySource(partitions, check_commit=check_commit)
    with contextlib.suppress(CrashError):
        asyncio.run(run_once(source, sc["crash_after"]))
    restarted = source.restart()
    asyncio.run(run_once(restarted, None))

    assert processed == everything  # every input processed at least once
    assert finished == everything
    assert set(dead) == sc["failing"] - sc["filtered"]  # the DLQ holds exactly the failed items
    assert restarted.committed == {key: len(values) for key, values in partitions.items() if values}
    # the restart began at the committed offsets, so nothing finished after them was lost
    for key, start in restarted.start.items():
        assert all((key, o) in finished for o in range(start))


def test_fail_then_restart_replays_from_the_failed_item() -> None:
    broken = {7}
    seen: list[int] = []

    @stage(concurrency=4)
    async def work(x: int) -> int:
        if x in broken:
            raise ValueError("not yet")
        return x

    @batch_stage(max_size=4, max_wait=0.01)
    async def batch(xs: list[int]) -> list[int]:
        return xs

    async def consume(source: MemorySource[int]) -> None:
        async for x in (work | batch)(source, commit_interval=0):
            seen.append(x)

    source = MemorySource.single(list(range(15)))
    with pytest.raises(StageError):
        asyncio.run(consume(source))
    assert source.committed == {("memory", 0): 7} and seen == list(range(7))
    broken.clear()
    restarted = source.restart()
    asyncio.run(consume(restarted))
    assert seen == list(range(15)) and restarted.committed == {("memory", 0): 15}
