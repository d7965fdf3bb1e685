"""Error policies: fail, skip, retry with backoff, dead-letter; nothing is swallowed in either mode."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping

import pytest

from freight.errors import PipelineError
from freight.pipeline import (
    ErrorReport,
    MemoryDeadLetterSink,
    MemorySource,
    PartitionKey,
    Retry,
    SourceItem,
    StageError,
    batch_stage,
    stage,
)

MODES = ["ordered", "as_completed"]


class BoomError(ValueError):
    pass


def failing_on(*bad: int, concurrency: int = 4, on_error: object = "fail") -> object:
    @stage(concurrency=concurrency, on_error=on_error)  # type: ignore[call-overload]
    async def work(x: int) -> int:
        await asyncio.sleep(0.001 * (x % 3))
        if x in bad:
            raise BoomError(f"bad item {x}")
        return x

    return work


async def _consume(run: object) -> list[int]:
    out: list[int] = []
    async with run as r:  # type: ignore[attr-defined]
        async for x in r:
            out.append(x)
    return out


def test_fail_in_ordered_mode_yields_everything_before_then_raises() -> None:
    source = MemorySource.single(list(range(20)))
    got: list[int] = []

    async def main() -> None:
        async for x in failing_on(5)(source, commit_interval=0):  # type: ignore[operator]
            got.append(x)

    with pytest.raises(StageError) as info:
        asyncio.run(main())
    assert got == [0, 1, 2, 3, 4]
    report = info.value.report
    assert (report.stage, report.partition_key, report.offset) == ("work", ("memory", 0), 5)
    assert report.attempts == 1
    assert report.action == "fail" and report.error_type.endswith("BoomError")
    assert isinstance(info.value.__cause__, BoomError)
    assert "'work' failed on memory[0]@5" in str(info.value)
    assert source.committed == {("memory", 0): 5}  # nothing at or past the failed item


def test_fail_in_as_completed_mode_raises_and_commits_nothing_past_the_failed_item() -> None:
    source = MemorySource({("t", 0): list(range(0, 40, 2)), ("t", 1): list(range(1, 40, 2))})
    got: list[int] = []

    async def main() -> None:
        async for x in failing_on(13)(source, mode="as_completed", commit_interval=0):  # type: ignore[operator]
            got.append(x)

    with pytest.raises(StageError, match=r"t\[1\]@6"):
        asyncio.run(main())
    assert 13 not in got and len(got) == len(set(got))
    assert source.committed.get(("t", 1), 0) <= 6  # 13 is offset 6 of partition 1
    # every committed item of either partition was yielded
    for (topic, p), position in source.committed.items():
        assert all(v in got for v in source.partitions[(topic, p)][:position])


@pytest.mark.parametrize("mode", MODES)
def test_fail_before_a_slow_batch_still_surfaces_promptly(mode: str) -> None:
    @stage(concurrency=2)
    async def check(x: int) -> int:
        if x == 3:
            raise BoomError("three")
        return x

    @batch_stage(max_size=8, min_size=8, max_wait=60)
    async def batch(xs: list[int]) -> list[int]:
        return xs

    with pytest.raises(StageError, match="three"):
        asyncio.run(asyncio.wait_for(_consume((check | batch)(range(20), mode=mode)), 10))  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", MODES)
def test_skip_counts_logs_and_records(mode: str, caplog: pytest.LogCaptureFixture) -> None:
    source = MemorySource.single(list(range(10)))
    run = failing_on(2, 7, on_error="skip")(source, mode=mode)  # type: ignore[operator]
    with caplog.at_level(logging.WARNING, logger="freight.pipeline"):
        results = asyncio.run(run.collect())
    assert sorted(results) == [0, 1, 3, 4, 5, 6, 8, 9]
    assert run.stats.skipped == 2 and run.stats.errors_by_stage == {"work": 2}
    assert sorted(r.offset for r in run.errors) == [2, 7]
    assert {r.action for r in run.errors} == {"skip"}
    assert "skipped memory[0]@2" in caplog.text and "skipped memory[0]@7" in caplog.text
    assert source.committed == {("memory", 0): 10}  # skipped items count as done


def test_retry_backs_off_exponentially_and_then_succeeds() -> None:
    delays: list[float] = []
    calls: dict[int, int] = {}

    async def record(delay: float) -> None:
        delays.append(delay)

    @stage(on_error=Retry(attempts=5, backoff=0.1, factor=2.0, max_backoff=0.3, sleep=record))
    async def flaky(x: int) -> int:
        calls[x] = calls.get(x, 0) + 1
        if calls[x] < 5:
            raise ConnectionError("try again")
        return x

    run = flaky([7])
    assert asyncio.run(run.collect()) == [7]
    assert delays == pytest.approx([0.1, 0.2, 0.3, 0.3])  # capped at max_backoff
    assert run.stats.retries == 4 and not run.errors


@pytest.mark.parametrize("mode", MODES)
def test_retry_exhausted_goes_to_then_policy(mode: str) -> None:
    delays: list[float] = []

    async def record(delay: float) -> None:
        delays.append(delay)

    sink = MemoryDeadLetterSink()
    policy = Retry(attempts=3, backoff=0.5, factor=3.0, then="dead_letter", sleep=record)
    run = failing_on(1, on_error=policy)(range(3), mode=mode, dead_letter=sink)  # type: ignore[operator]
    assert sorted(asyncio.run(run.collect())) == [0, 2]
    assert delays == pytest.approx([0.5, 1.5])
    ((item, report),) = sink.records
    assert item.value == 1 and report.attempts == 3 and report.action == "dead_letter"


def test_retry_only_retries_matching_exceptions() -> None:
    delays: list[float] = []

    async def record(delay: float) -> None:
        delays.append(delay)

    policy = Retry(attempts=5, retry_on=(ConnectionError,), then="skip", sleep=record)
    run = failing_on(0, on_error=policy)([0, 1])  # type: ignore[operator]
    assert asyncio.run(run.collect()) == [1]
    assert delays == [] and run.errors[0].attempts == 1


def test_retry_jitter_stays_within_its_fraction() -> None:
    policy = Retry(backoff=1.0, factor=2.0, jitter=0.25)
    for n in range(1, 5):
        assert 2.0 ** (n - 1) <= policy.delay(n) <= 2.0 ** (n - 1) * 1.25


@pytest.mark.parametrize("mode", MODES)
def test_dead_letter_gets_the_event_and_the_error_and_the_pipeline_goes_on(mode: str) -> None:
    source = MemorySource({("t", 0): list(range(10)), ("t", 1): list(range(10, 20))})
    sink = MemoryDeadLetterSink()
    run = failing_on(3, 15, on_error="dead_letter")(source, mode=mode, dead_letter=sink)  # type: ignore[operator]
    results = asyncio.run(run.collect())
    assert sorted(results) == [x for x in range(20) if x not in (3, 15)]
    items = sorted(sink.records, key=lambda r: r[0].value)
    assert [(i.value, i.partition_key, i.offset, i.raw) for i, _ in items] == [
        (3, ("t", 0), 3, ("memory", ("t", 0), 3)),
        (15, ("t", 1), 5, ("memory", ("t", 1), 5)),
    ]
    report = items[0][1]
    assert isinstance(report, ErrorReport)
    assert report.stage == "work" and report.message == "bad item 3" and "raise BoomError" in report.traceback
    assert report.to_dict()["topic"] == "t" and report.to_dict()["offset"] == 3
    assert run.stats.dead_lettered == 2
    assert source.committed == {("t", 0): 10, ("t", 1): 10}


def test_a_failing_dead_letter_sink_stops_the_pipeline() -> None:
    class BrokenSink:
        async def send(self, item: SourceItem[object], report: ErrorReport) -> None:
            raise OSError("DLQ topic unreachable")

    source = MemorySource.single(list(range(10)))
    work = failing_on(4, concurrency=1, on_error="dead_letter")
    run = work(source, dead_letter=BrokenSink(), commit_interval=0)  # type: ignore[operator]
    with pytest.raises(PipelineError, match="dead-letter sink failed for memory") as info:
        asyncio.run(run.collect())
    assert isinstance(info.value.__cause__, OSError)
    assert source.committed.get(("memory", 0), 0) <= 4


def test_timeout_is_an_error_under_the_policy() -> None:
    @stage(timeout=0.01, on_error="skip")
    async def sleepy(x: int) -> int:
        if x == 1:
            await asyncio.sleep(5)
        return x

    run = sleepy([0, 1, 2])
    assert asyncio.run(asyncio.wait_for(run.collect(), 10)) == [0, 2]
    assert run.errors[0].error_type == "builtins.TimeoutError"
    assert "'sleepy' took longer than 0.01s" in run.errors[0].message


def test_own_timeout_error_of_a_stage_is_reported_as_is() -> None:
    @stage(timeout=10, on_error="skip")
    async def own(x: int) -> int:
        raise TimeoutError("upstream service timed out")

    run = own([0])
    assert asyncio.run(run.collect()) == []
    assert run.errors[0].message == "upstream service timed out"


@pytest.mark.parametrize("mode", MODES)
def test_a_stage_raising_cancelled_error_does_not_hang_or_vanish(mode: str) -> None:
    @stage(concurrency=1)
    async def weird(x: int) -> int:
        if x == 2:
            raise asyncio.CancelledError
        return x

    with pytest.raises(PipelineError, match="cancelled"):
        asyncio.run(asyncio.wait_for(_consume(weird(range(5), mode=mode)), 10))  # type: ignore[arg-type]


def test_source_errors_propagate_and_the_done_prefix_is_committed() -> None:
    async def broken() -> AsyncIterator[int]:
        for i in range(5):
            yield i
        raise RuntimeError("broker gone")

    @stage
    async def ident(x: int) -> int:
        return x

    got: list[int] = []

    async def main() -> None:
        async for x in ident(broken(), max_in_flight=2):
            got.append(x)

    with pytest.raises(RuntimeError, match="broker gone"):
        asyncio.run(main())
    assert got == list(range(len(got)))


def test_commit_failures_are_raised() -> None:
    class FailingCommits(MemorySource[int]):
        async def commit(self, offsets: Mapping[PartitionKey, int]) -> None:
            raise OSError("coordinator not available")

    @stage
    async def ident(x: int) -> int:
        return x

    with pytest.raises(PipelineError, match=r"committing offsets .* failed: coordinator not available"):
        asyncio.run(ident(FailingCommits({("t", 0): [1, 2, 3]})).collect())
