"""`freight bench pipeline`: what the pipeline engine costs per item, and how Dask dispatch scales.

1. Overhead: the same in-memory source and the same trivial async function, driven by a hand-written
   asyncio loop (the baseline) and by pipelines (one stage ordered / as-completed, three stages, a batch
   stage). Reported in microseconds per item; `extra.overhead_us` is the difference to the loop.
2. I/O-bound: a stage awaiting 1 ms per item, sequentially in the hand loop and with concurrency 32 in a
   pipeline (items/s): the reason to pay that overhead.
3. Dask: a CPU-bound stage (a fixed amount of pure-Python work, calibrated to about `--task-ms` on one core)
   dispatched to a `LocalCluster` of 1, 2, 4 worker processes (items/s, ratio against 1 worker), next to
   the same work in a plain loop in this process. `extra.ideal_items_per_s` is that loop's rate times
   min(workers, cpus). The scheduler and the dispatcher share the machine with the workers.

Part 2 of the pipeline work switches the overhead source to the real `StreamConsumer`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import statistics
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from freight.pipeline import DaskExecutor, MemorySource, Pipeline, batch_stage, stage

if TYPE_CHECKING:
    from freight.bench._common import Measurement

# freight.bench._common (and the CLI it pulls in) is imported inside the functions: Dask workers import this
# module to find `burn`, and must not need the CLI for that.


async def _identity(x: int) -> int:
    return x


async def _identity_batch(xs: list[int]) -> list[int]:
    return xs


async def _io_wait(x: int) -> int:
    await asyncio.sleep(0.001)
    return x


def burn(iterations: int) -> int:
    """A fixed amount of CPU work (pure Python, holds the GIL): the Dask benchmark's task."""
    total = 0
    for i in range(iterations):
        total += i * i
    return total


def calibrate(task_ms: float) -> int:
    """Iterations of `burn` that take about `task_ms` on one core of this machine."""
    n = 100_000
    while True:
        t0 = time.perf_counter()
        burn(n)
        elapsed = time.perf_counter() - t0
        if elapsed > 0.05:
            return max(1, int(n * task_ms / 1000 / elapsed))
        n *= 2


async def _hand_loop(source: MemorySource[int], fn: Callable[[int], Coroutine[Any, Any, int]]) -> int:
    """The baseline: pull, await the function, use the result; commit at the end."""
    count = 0
    last = None
    async for item in source:
        result = await fn(item.value)
        count += result >= 0
        last = item
    if last is not None:
        await source.commit({last.partition_key: last.offset + 1})
    return count


async def _through(pipeline: Pipeline[int, int], source: MemorySource[int], **options: Any) -> int:
    count = 0
    async for result in pipeline(source, **options):
        count += result >= 0
    return count


def _timed(make: Callable[[], Coroutine[Any, Any, int]], n: int) -> float:
    t0 = time.perf_counter()
    done = asyncio.run(make())
    elapsed = time.perf_counter() - t0
    if done != n:
        raise RuntimeError(f"benchmark run processed {done} of {n} items")
    return elapsed


def _row(
    scenario: str, subject: str, unit: str, values: list[float], baseline: str | None, **extra: Any
) -> Measurement:
    from freight.bench._common import Measurement

    return Measurement(
        scenario,
        subject,
        unit,
        statistics.median(values),
        min(values),
        max(values),
        len(values),
        baseline=baseline,
        extra=extra,
    )


def overhead(n: int, repetitions: int) -> list[Measurement]:
    """Microseconds per item: hand-written loop against pipelines over the same source."""
    from freight.bench._common import with_ratios

    one = stage(_identity, concurrency=8)
    subjects: dict[str, Callable[[MemorySource[int]], Coroutine[Any, Any, int]]] = {
        "asyncio loop": lambda src: _hand_loop(src, _identity),
        "pipeline ordered, 1 stage": lambda src: _through(one.pipeline, src),
        "pipeline as_completed, 1 stage": lambda src: _through(one.pipeline, src, mode="as_completed"),
        "pipeline ordered, 3 stages": lambda src: _through(one | one | one, src),
        "pipeline batch_stage(64)": lambda src: _through(
            batch_stage(max_size=64, max_wait=0.01)(_identity_batch).pipeline, src
        ),
    }
    rows: list[Measurement] = []
    loop_us = 0.0
    for subject, run in subjects.items():
        values = []
        for _ in range(repetitions):
            source = MemorySource.single(list(range(n)))
            values.append(_timed(lambda run=run, source=source: run(source), n) / n * 1e6)  # type: ignore[misc]
        median = statistics.median(values)
        if subject == "asyncio loop":
            loop_us = median
            rows.append(_row("per-item cost", subject, "us/item", values, None, items=n))
        else:
            rows.append(
                _row(
                    "per-item cost",
                    subject,
                    "us/item",
                    values,
                    "asyncio loop",
                    items=n,
                    overhead_us=round(median - loop_us, 2),
                )
            )
    return with_ratios(rows, higher_is_better=False)


def io_bound(n: int, repetitions: int) -> list[Measurement]:
    """Items/s with a 1 ms await per item: sequential loop against a concurrent pipeline."""
    from freight.bench._common import with_ratios

    wait = stage(_io_wait, concurrency=32)
    rows = []
    for subject, make in (
        ("asyncio loop (sequential)", lambda src: _hand_loop(src, _io_wait)),
        ("pipeline, concurrency 32", lambda src: _through(wait.pipeline, src)),
    ):
        values = []
        for _ in range(repetitions):
            source = MemorySource.single(list(range(n)))
            values.append(n / _timed(lambda make=make, source=source: make(source), n))  # type: ignore[misc]
        base = None if subject.startswith("asyncio") else "asyncio loop (sequential)"
        rows.append(_row("1 ms await per item", subject, "items/s", values, base, items=n))
    return with_ratios(rows, higher_is_better=True)


def dask_scaling(n: int, repetitions: int, workers: list[int], task_ms: float) -> list[Measurement]:
    """Items/s of a CPU-bound stage on LocalClusters of `workers` processes, and in-process.

    All clusters are started first and the repetitions are interleaved (in-process, 1, 2, 4 workers, again),
    so that load from other processes on the machine falls on every configuration alike.
    """
    from distributed import Client, LocalCluster

    from freight.bench._common import with_ratios

    iterations = calibrate(task_ms)
    cpus = os.cpu_count() or 1
    scenario = f"Dask, CPU-bound stage (~{task_ms:g} ms/item)"
    local_name = "in-process loop (no Dask)"
    samples: dict[str, list[float]] = {local_name: []}
    with contextlib.ExitStack() as stack:
        stages: dict[str, Any] = {}
        for count in workers:
            cluster = stack.enter_context(
                LocalCluster(  # type: ignore[no-untyped-call]
                    n_workers=count,
                    processes=True,
                    threads_per_worker=1,
                    dashboard_address=":0",
                    silence_logs=logging.ERROR,
                )
            )
            client = stack.enter_context(Client(cluster))  # type: ignore[no-untyped-call]
            work = stage(burn, concurrency=4 * count, executor=DaskExecutor(client))
            asyncio.run(work([iterations] * (2 * count)).collect())  # warm up the workers
            stages[f"Dask {count} worker(s)"] = work
            samples[f"Dask {count} worker(s)"] = []
        for _ in range(repetitions):
            t0 = time.perf_counter()
            for _ in range(n):
                burn(iterations)
            samples[local_name].append(n / (time.perf_counter() - t0))
            for subject, work in stages.items():

                async def run_all(work: Any = work) -> int:
                    done = 0
                    async for _ in work([iterations] * n, mode="as_completed"):
                        done += 1
                    return done

                samples[subject].append(n / _timed(run_all, n))
    local = statistics.median(samples[local_name])
    rows = [
        _row(scenario, "in-process loop (no Dask)", "items/s", samples["in-process loop (no Dask)"], None)
    ]
    first = f"Dask {workers[0]} worker(s)"
    for count in workers:
        subject = f"Dask {count} worker(s)"
        rows.append(
            _row(
                scenario,
                subject,
                "items/s",
                samples[subject],
                None if subject == first else first,
                items=n,
                workers=count,
                cpus=cpus,
                ideal_items_per_s=round(local * min(count, cpus), 1),
            )
        )
    return with_ratios(rows, higher_is_better=True)


def register(app: typer.Typer) -> None:
    @app.command("pipeline")
    def pipeline_cmd(
        quick: Annotated[bool, typer.Option("--quick", help="Fewer items and repetitions.")] = False,
        dask: Annotated[bool, typer.Option("--dask/--no-dask", help="Run the Dask scaling scenario.")] = True,
        workers: Annotated[str, typer.Option(help="Dask worker process counts, comma-separated.")] = "1,2,4",
        task_ms: Annotated[float, typer.Option(help="CPU time of one Dask task on one core.")] = 20.0,
        out: Annotated[Path | None, typer.Option(help="Write the JSON results here.")] = None,
        json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """Pipeline per-item overhead against a hand-written asyncio loop; Dask throughput by worker count."""
        n, reps = (5_000, 3) if quick else (50_000, 5)
        rows = overhead(n, reps)
        rows += io_bound(200 if quick else 2_000, 2 if quick else 3)
        if dask:
            counts = [int(w) for w in workers.split(",") if w.strip()]
            rows += dask_scaling(40 if quick else 200, 1 if quick else 3, counts, task_ms)
        from freight.bench._common import report

        report("freight bench pipeline", rows, out, json_)
