"""Stage decorators, composition, sources and argument validation of freight.pipeline."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from freight.errors import ConfigError, FreightError, PipelineError
from freight.pipeline import (
    BatchStage,
    ItemStage,
    IterableSource,
    MemoryDeadLetterSink,
    MemorySource,
    Pipeline,
    Retry,
    batch_stage,
    stage,
)


@stage
async def double(x: int) -> int:
    return 2 * x


@stage(concurrency=2)
def plus_one(x: int) -> int:
    return x + 1


@batch_stage(max_size=3)
async def negate(xs: list[int]) -> list[int]:
    return [-x for x in xs]


def test_decorators_make_stages_with_defaults() -> None:
    assert isinstance(double, ItemStage) and double.is_async and double.name == "double"
    assert isinstance(plus_one, ItemStage) and not plus_one.is_async and plus_one.concurrency == 2
    assert isinstance(negate, BatchStage) and negate.max_size == 3 and negate.min_size == 1
    assert double.on_error == "fail"
    assert stage(on_error="dead-letter")(plus_one.fn).on_error == "dead_letter"
    assert stage(on_error="retry")(plus_one.fn).on_error == Retry()


def test_composition_runs_stages_in_sequence() -> None:
    pipeline = double | plus_one | negate
    assert isinstance(pipeline, Pipeline)
    assert [s.name for s in pipeline.stages] == ["double", "plus_one", "negate"]
    assert asyncio.run(pipeline(range(5)).collect()) == [-1, -3, -5, -7, -9]
    # a pipeline composes with a pipeline, and a single stage runs on its own
    assert asyncio.run(((double | plus_one) | (negate | double))([1]).collect()) == [-6]
    assert asyncio.run(double([1, 2]).collect()) == [2, 4]
    assert sorted(asyncio.run(double.as_completed([1, 2]).collect())) == [2, 4]


def test_sync_functions_run_off_the_event_loop_thread() -> None:
    threads: list[str] = []

    @stage
    def where(x: int) -> int:
        threads.append(threading.current_thread().name)
        return x

    async def main() -> list[int]:
        return await where(range(3)).collect()

    assert asyncio.run(main()) == [0, 1, 2]
    assert threads and threading.main_thread().name not in threads


def test_a_given_executor_is_used() -> None:
    with ThreadPoolExecutor(1, thread_name_prefix="custom-pool") as pool:
        names: list[str] = []

        @stage(executor=pool)
        def where(x: int) -> int:
            names.append(threading.current_thread().name)
            return x

        assert asyncio.run(where([1, 2]).collect()) == [1, 2]
    assert all(n.startswith("custom-pool") for n in names)


def test_none_filters_items() -> None:
    @stage
    async def evens(x: int) -> int | None:
        return x if x % 2 == 0 else None

    run = evens(range(10))
    assert asyncio.run(run.collect()) == [0, 2, 4, 6, 8]
    assert run.stats.filtered == 5 and run.stats.yielded == 5


def test_async_iterable_source_and_with_execution_mode() -> None:
    async def numbers() -> AsyncIterator[int]:
        for i in range(6):
            await asyncio.sleep(0)
            yield i

    pipeline = (double | plus_one).with_execution_mode("as_completed")
    assert pipeline.options.mode == "as_completed"
    assert sorted(asyncio.run(pipeline(numbers()).collect())) == [1, 3, 5, 7, 9, 11]


def test_iterable_source_commits_synthetic_offsets() -> None:
    source = IterableSource(["a", "b", "c"])

    @stage
    async def upper(s: str) -> str:
        return s.upper()

    assert asyncio.run(upper(source).collect()) == ["A", "B", "C"]
    assert source.committed == {("<iterable>", 0): 3}


def test_memory_source_is_a_pipeline_source() -> None:
    source = MemorySource({("t", 0): [1, 2], ("t", 1): [3]}, start={("t", 0): 1})
    assert asyncio.run(double(source, commit_interval=0).collect()) == [4, 6]
    assert source.committed == {("t", 0): 2, ("t", 1): 1}
    assert source.restart().start == {("t", 0): 2, ("t", 1): 1}


def test_a_run_iterates_once() -> None:
    async def main() -> None:
        run = double([1])
        assert [x async for x in run] == [2]
        with pytest.raises(PipelineError, match="only once"):
            run.__aiter__()

    asyncio.run(main())


def test_early_break_with_async_with_stops_and_commits_done_prefix() -> None:
    source = MemorySource.single(list(range(100)))

    async def main() -> None:
        async with double(source, max_in_flight=4, commit_interval=0) as run:
            async for result in run:
                if result == 10:  # items 0..4 are done; 5 is in our hands, not done
                    break
        assert run.in_flight <= 4

    asyncio.run(main())
    assert source.committed == {("memory", 0): 5}


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: batch_stage(max_size=2, min_size=3)(negate.fn), "min_size"),
        (lambda: batch_stage(max_size=0)(negate.fn), "max_size"),
        (lambda: batch_stage(max_wait=0)(negate.fn), "max_wait"),
        (lambda: batch_stage(max_wait=float("inf"))(negate.fn), "max_wait"),
        (lambda: stage(concurrency=0)(plus_one.fn), "concurrency"),
        (lambda: stage(concurrency=True)(plus_one.fn), "concurrency"),
        (lambda: stage(on_error="ignore")(plus_one.fn), "on_error"),  # type: ignore[arg-type]
        (lambda: stage(timeout=-1)(plus_one.fn), "timeout"),
        (lambda: stage(executor=ThreadPoolExecutor(1))(double.fn), "async"),
        (lambda: Retry(attempts=0), "attempts"),
        (lambda: Retry(then="retry"), "then"),  # type: ignore[arg-type]
        (lambda: double(range(3), mode="fastest"), "execution mode"),  # type: ignore[arg-type]
        (lambda: double(range(3), max_in_flight=0), "max_in_flight"),
        (lambda: double(range(3), max_in_flight=4, resume_at=4), "resume_at"),
        (lambda: double(range(3), commit_interval=-1), "commit_interval"),
        (lambda: negate(range(3), max_in_flight=2), "max_in_flight"),
        (lambda: stage(on_error="dead_letter")(plus_one.fn)(range(3)), "dead_letter"),
        (lambda: double("abc"), "not str"),
        (lambda: double(42), "iterable"),  # type: ignore[arg-type]
        (lambda: Pipeline([]), "at least one stage"),
    ],
)
def test_bad_arguments_raise_config_errors(make: object, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        make()  # type: ignore[operator]
    assert isinstance(info.value, FreightError) and isinstance(info.value, ValueError)


def test_dead_letter_policy_runs_with_a_sink() -> None:
    sink = MemoryDeadLetterSink()
    run = stage(on_error="dead_letter")(plus_one.fn)(range(3), dead_letter=sink)
    assert asyncio.run(run.collect()) == [1, 2, 3] and len(sink) == 0


def test_aclose_from_another_task_stops_a_running_loop() -> None:
    source = MemorySource.single(list(range(1000)))

    @stage
    async def slow(x: int) -> int:
        await asyncio.sleep(0.001)
        return x

    async def main() -> list[int]:
        run = slow(source, max_in_flight=8, commit_interval=0)
        seen: list[int] = []

        async def consume() -> None:
            async for x in run:
                seen.append(x)

        task = asyncio.create_task(consume())
        while len(seen) < 5:
            await asyncio.sleep(0.001)
        await run.aclose()
        await asyncio.wait_for(task, 10)
        return seen

    seen = asyncio.run(main())
    assert seen == list(range(len(seen))) and len(seen) < 1000
    # done = every result the loop finished; the last one it got may or may not have been marked done
    assert len(seen) - 1 <= source.committed[("memory", 0)] <= len(seen)


def test_a_list_into_a_per_item_stage_says_how_to_fan_out() -> None:
    from freight.pipeline import StageError

    @stage
    async def search(query: str) -> list[dict[str, str]]:
        return [{"query": query, "result": "a"}, {"query": query, "result": "b"}]

    @stage
    async def rank(result: dict[str, str]) -> dict[str, object]:
        return {**result, "ranked": True}

    async def run() -> list[object]:
        return await (search | rank)(["python"]).collect()

    with pytest.raises(StageError, match=r"got a list of 2 item\(s\) as one item.*freight.compat.conveyor"):
        asyncio.run(run())
