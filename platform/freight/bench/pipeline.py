"""`freight bench pipeline`: what the pipeline engine costs per item, and how Dask dispatch scales.

1. Overhead over a real `StreamConsumer` (the broker from `bench_services`): a topic of small inline events,
   read by a fresh consumer group per run, driven by a hand-written asyncio loop (the baseline: batches of
   records from the consumer on one thread, a trivial async function per proxy, one commit at the end) and
   by pipelines (one stage ordered / as-completed, three stages, a batch stage) over the same consumer.
   The group is joined (and the topic prefetched) before the clock starts; timed are decoding, hand-off,
   processing and commits. "consumer alone" is the same consumer drained by a plain loop, no asyncio.
   Reported in wall-clock microseconds per item; `extra.overhead_us` is the difference to the hand-written
   loop, `extra.cpu_us` the CPU time of this process per item (steadier than wall time on a busy machine).
2. The same comparison over an in-memory source: the engine's own cost, without Kafka.
3. I/O-bound: a stage awaiting 1 ms per item, sequentially in the hand loop and with concurrency 32 in a
   pipeline (items/s): the reason to pay that overhead.
4. Dask over proxies: 1 MiB float64 arrays written to a file store, their events read by a StreamConsumer,
   and a stage that sorts each array (calibrated to ~`--task-ms` on one core) dispatched to a `LocalCluster`
   of 1, 2, 4 worker processes (items/s, the same figure as MiB/s). The dispatcher passes proxies only;
   `extra.dispatcher_bytes_read` is what this process read from the store meanwhile (0). Next to it: the
   same work in this process without Dask, and Dask's own ceiling, one `client.map` over the same (boxed)
   proxies with no pipeline and no commits.
5. With `--cpu-dask`, part 1's scenario: a CPU-bound pure-Python stage (~`--task-ms` on one core) on Dask.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import statistics
import time
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from freight.bench._common import Measurement
from freight.pipeline import ConsumerSource, DaskExecutor, MemorySource, Pipeline, batch_stage, stage
from freight.pipeline.dask import _Box, _call_boxed

if TYPE_CHECKING:
    from freight.config import FreightSettings
    from freight.stream import StreamConsumer, StreamRecord

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


def overhead(n: int, repetitions: int) -> list[Measurement]:
    """Microseconds per item: hand-written loop against pipelines over the same in-memory source."""
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
            rows.append(
                Measurement.of("per-item cost, in-memory source", subject, "us/item", values, None, items=n)
            )
        else:
            rows.append(
                Measurement.of(
                    "per-item cost, in-memory source",
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
        rows.append(Measurement.of("1 ms await per item", subject, "items/s", values, base, items=n))
    return with_ratios(rows, higher_is_better=True)


def _dask_client(stack: contextlib.ExitStack, workers: int, settings: FreightSettings | None = None) -> Any:
    """A client of a fresh local cluster of `workers` single-threaded processes, closed with `stack`.

    With `settings`, the workers are configured for that cluster and registry (they resolve proxies only
    for the cluster they are configured for).
    """
    from distributed import Client, LocalCluster

    env = {}
    if settings is not None:
        env = {
            "FREIGHT_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
            "FREIGHT_SCHEMA_REGISTRY_URL": settings.schema_registry_url,
        }
    cluster = stack.enter_context(
        LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=workers,
            processes=True,
            threads_per_worker=1,
            dashboard_address=":0",
            silence_logs=logging.ERROR,
            env=env,
        )
    )
    return stack.enter_context(Client(cluster))  # type: ignore[no-untyped-call]


def dask_scaling(n: int, repetitions: int, workers: list[int], task_ms: float) -> list[Measurement]:
    """Items/s of a CPU-bound stage on LocalClusters of `workers` processes, and in-process.

    All clusters are started first and the repetitions are interleaved (in-process, 1, 2, 4 workers, again),
    so that load from other processes on the machine falls on every configuration alike.
    """
    from freight.bench._common import with_ratios

    iterations = calibrate(task_ms)
    cpus = os.cpu_count() or 1
    scenario = f"Dask, CPU-bound stage (~{task_ms:g} ms/item)"
    local_name = "in-process loop (no Dask)"
    samples: dict[str, list[float]] = {local_name: []}
    with contextlib.ExitStack() as stack:
        stages: dict[str, Any] = {}
        for count in workers:
            client = _dask_client(stack, count)
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
        Measurement.of(
            scenario, "in-process loop (no Dask)", "items/s", samples["in-process loop (no Dask)"], None
        )
    ]
    first = f"Dask {workers[0]} worker(s)"
    for count in workers:
        subject = f"Dask {count} worker(s)"
        rows.append(
            Measurement.of(
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


# -- over a real StreamConsumer -----------------------------------------------------------------------------


async def _pass(proxy: Any) -> Any:
    return proxy  # never touches the proxy: nothing is resolved


async def _pass_batch(proxies: list[Any]) -> list[Any]:
    return proxies


def _take(consumer: StreamConsumer, limit: int) -> list[StreamRecord]:
    """Consumer thread: up to `limit` records, waiting (briefly) only for the first."""
    records = []
    record = consumer.next_record(0.1, include_end=False)
    while record is not None:
        records.append(record)
        if len(records) >= limit:
            break
        record = consumer.next_record(0, include_end=False)
    return records


async def _hand_loop_consumer(consumer: StreamConsumer, n: int) -> int:
    """The baseline: batches of records on one thread, a trivial async call per proxy, one final commit."""
    import concurrent.futures

    loop = asyncio.get_running_loop()
    done = 0
    positions: dict[tuple[str, int], int] = {}
    with concurrent.futures.ThreadPoolExecutor(1) as thread:
        while done < n:
            for record in await loop.run_in_executor(thread, _take, consumer, 500):
                result = await _pass(record.proxy)
                done += result is not None
                positions[(record.topic, record.partition)] = record.offset + 1
        await loop.run_in_executor(thread, consumer.commit, positions)
    return done


def _drain(consumer: StreamConsumer, n: int) -> int:
    """The consumer alone: a plain loop over next_record, one final commit."""
    done = 0
    positions: dict[tuple[str, int], int] = {}
    while done < n:
        record = consumer.next_record(1.0, include_end=False)
        if record is None:
            continue
        done += record.proxy is not None
        positions[(record.topic, record.partition)] = record.offset + 1
    consumer.commit(positions)
    return done


async def _through_consumer(pipeline: Pipeline[Any, Any], consumer: StreamConsumer, **options: Any) -> int:
    count = 0
    async for result in pipeline(ConsumerSource(consumer), **options):
        count += result is not None
    return count


def consumer_overhead(settings: FreightSettings, n: int, repetitions: int) -> list[Measurement]:
    """Microseconds per item: hand-written asyncio loop against pipelines over the same real consumer."""
    from freight.bench._common import with_ratios
    from freight.bench._procs import drop_topics, new_topic, streams_for_partitions
    from freight.stream import StreamConsumer, StreamProducer

    topic = new_topic(settings, "pipeline", partitions=4)
    streams = streams_for_partitions(4, 4)
    with StreamProducer(settings=settings, inline_threshold=1024) as producer:
        for i in range(n):
            producer.send(topic, b"x" * 64, stream=streams[i % len(streams)])
        producer.flush()

    one = stage(_pass, concurrency=8)
    asyncio_subjects: dict[str, Callable[[StreamConsumer], Coroutine[Any, Any, int]]] = {
        "asyncio loop (hand-written)": lambda c: _hand_loop_consumer(c, n),
        "pipeline ordered, 1 stage": lambda c: _through_consumer(one.pipeline, c),
        "pipeline as_completed, 1 stage": lambda c: _through_consumer(one.pipeline, c, mode="as_completed"),
        "pipeline ordered, 3 stages": lambda c: _through_consumer(one | one | one, c),
        "pipeline batch_stage(64)": lambda c: _through_consumer(
            batch_stage(max_size=64, max_wait=0.01)(_pass_batch).pipeline, c
        ),
    }
    consumer_alone = "consumer alone (plain loop, no asyncio)"
    samples: dict[str, list[float]] = {consumer_alone: [], **{name: [] for name in asyncio_subjects}}
    cpu: dict[str, list[float]] = {name: [] for name in samples}
    scenario = "per-item cost, StreamConsumer"
    try:
        for _ in range(repetitions):  # subjects interleaved, so machine load falls on all alike
            for subject in samples:
                with StreamConsumer(
                    topic,
                    f"{topic}-{uuid.uuid4().hex[:8]}",
                    settings=settings,
                    auto_commit=False,
                    until_high_watermark=True,
                ) as consumer:
                    consumer.wait_for_assignment(30)  # join the group (and prefetch) before the clock starts
                    t0, c0 = time.perf_counter(), time.process_time()
                    if subject == consumer_alone:
                        done = _drain(consumer, n)
                    else:
                        done = asyncio.run(asyncio_subjects[subject](consumer))
                    elapsed, cpu_s = time.perf_counter() - t0, time.process_time() - c0
                if done != n:
                    raise RuntimeError(f"{subject} processed {done} of {n} items")
                samples[subject].append(elapsed / n * 1e6)
                cpu[subject].append(cpu_s / n * 1e6)
    finally:
        drop_topics(settings, topic)
    base = "asyncio loop (hand-written)"
    base_us = statistics.median(samples[base])
    base_cpu = statistics.median(cpu[base])
    rows = []
    for subject in samples:
        extra: dict[str, Any] = {"items": n, "cpu_us": round(statistics.median(cpu[subject]), 2)}
        if subject.startswith("pipeline"):
            extra["overhead_us"] = round(statistics.median(samples[subject]) - base_us, 2)
            extra["cpu_overhead_us"] = round(statistics.median(cpu[subject]) - base_cpu, 2)
        baseline = base if subject.startswith("pipeline") else None
        rows.append(Measurement.of(scenario, subject, "us/item", samples[subject], baseline, **extra))
    return with_ratios(rows, higher_is_better=False)


def sort_rounds(array: Any, rounds: int) -> float:
    """The Dask-over-proxies task: resolve the array (on the worker), sort it `rounds` times, sum it."""
    import numpy as np

    values = np.asarray(array)
    ordered = values
    for _ in range(rounds):
        ordered = np.sort(values)
    return float(ordered.sum())


def calibrate_sorts(task_ms: float) -> int:
    """Sorts of a 1 MiB float64 array that take about `task_ms` on one core of this machine."""
    import numpy as np

    values = np.random.default_rng(1).random((1 << 20) // 8)
    np.sort(values)  # warm up
    t0 = time.perf_counter()
    for _ in range(10):
        np.sort(values)
    one_ms = (time.perf_counter() - t0) / 10 * 1000
    return max(1, round(task_ms / one_ms))


def _bytes_read_here() -> int:
    from freight.stores.resolver import default_resolver

    return sum(store.stats.bytes_read for store in default_resolver().stores())


def dask_proxies(
    settings: FreightSettings, n: int, repetitions: int, workers: list[int], task_ms: float
) -> list[Measurement]:
    """Items/s of a stage over proxies of 1 MiB arrays from a StreamConsumer, on 1, 2, 4 Dask workers."""
    import functools
    import tempfile

    import numpy as np

    from freight.bench._common import with_ratios
    from freight.bench._procs import drop_topics, new_topic, streams_for_partitions
    from freight.connectors.file import FileConnector
    from freight.stores import Store
    from freight.stream import StreamConsumer, StreamProducer, extract

    rounds = calibrate_sorts(task_ms)
    task = functools.partial(sort_rounds, rounds=rounds)
    scenario = f"Dask over proxies of 1 MiB arrays ({rounds} sorts/item, ~{task_ms:g} ms)"
    mib = 1 << 20
    topic = new_topic(settings, "pipeline-dask", partitions=4)
    warm = new_topic(settings, "pipeline-dask-warm", partitions=1)
    streams = streams_for_partitions(4, 2)
    rng = np.random.default_rng(0)
    samples: dict[str, list[float]] = {}
    dispatcher_read: dict[str, int] = {}
    clients: dict[str, Any] = {}
    local = "this process, no Dask (resolves here)"

    def group() -> str:
        return f"{topic}-{uuid.uuid4().hex[:8]}"

    def consumer(name: str) -> StreamConsumer:
        c = StreamConsumer(name, group(), settings=settings, auto_commit=False, until_high_watermark=True)
        c.wait_for_assignment(30)
        return c

    with (
        tempfile.TemporaryDirectory(prefix="freight-bench-pipeline-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        store = Store(f"bench-pipeline-{uuid.uuid4().hex[:8]}", FileConnector(Path(tmp)))
        with StreamProducer({None: store}, settings=settings, inline_threshold=0) as producer:
            for i in range(n):
                producer.send(topic, rng.random(mib // 8), stream=streams[i % len(streams)])
            for _ in range(8):
                producer.send(warm, rng.random(mib // 8))
            producer.flush()
        stages: dict[str, Any] = {}
        for count in workers:
            client = _dask_client(stack, count, settings)
            work = stage(task, name="sort_rounds", concurrency=4 * count, executor=DaskExecutor(client))
            with consumer(warm) as c:  # every worker builds the store from the catalog once
                asyncio.run(work(ConsumerSource(c), mode="as_completed").collect())
            subject = f"Dask {count} worker(s)"
            stages[subject] = work
            samples[subject] = []
            dispatcher_read[subject] = 0
            clients[subject] = client
            samples[f"{subject}, client.map"] = []
        samples[local] = []
        try:
            for _ in range(repetitions):
                for subject, work in stages.items():
                    with consumer(topic) as c:
                        before = _bytes_read_here()
                        t0 = time.perf_counter()
                        results = asyncio.run(work(ConsumerSource(c), mode="as_completed").collect())
                        elapsed = time.perf_counter() - t0
                        dispatcher_read[subject] += _bytes_read_here() - before
                    if len(results) != n:
                        raise RuntimeError(f"{subject} processed {len(results)} of {n} items")
                    samples[subject].append(n / elapsed)
                    # Dask's own ceiling: the same proxies, boxed, one client.map (no pipeline, no commits).
                    with consumer(topic) as c:
                        boxes: list[_Box] = []
                        while len(boxes) < n:
                            boxes += [_Box(r.proxy) for r in _take(c, n - len(boxes)) if r.proxy is not None]
                    client = clients[subject]
                    t0 = time.perf_counter()
                    client.gather(client.map(_call_boxed, [task] * len(boxes), boxes, pure=False))
                    samples[f"{subject}, client.map"].append(len(boxes) / (time.perf_counter() - t0))
                with consumer(topic) as c:
                    t0 = time.perf_counter()
                    done = 0
                    while done < n:
                        record = c.next_record(1.0, include_end=False)
                        if record is not None and record.proxy is not None:
                            task(extract(record.proxy))
                            done += 1
                    samples[local].append(n / (time.perf_counter() - t0))
        finally:
            drop_topics(settings, topic, warm)
    first = f"Dask {workers[0]} worker(s)"
    rows = [Measurement.of(scenario, local, "items/s", samples[local], None, items=n)]
    for count in workers:
        subject = f"Dask {count} worker(s)"
        rows.append(
            Measurement.of(
                scenario,
                subject,
                "items/s",
                samples[subject],
                None if subject == first else first,
                items=n,
                workers=count,
                cpus=os.cpu_count(),
                dispatcher_bytes_read=dispatcher_read[subject],
            )
        )
        reference = f"{subject}, client.map"
        rows.append(
            Measurement.of(scenario, reference, "items/s", samples[reference], None, items=n, workers=count)
        )
    return with_ratios(rows, higher_is_better=True)


def register(app: typer.Typer) -> None:
    @app.command("pipeline")
    def pipeline_cmd(
        quick: Annotated[bool, typer.Option("--quick", help="Fewer items and repetitions.")] = False,
        dask: Annotated[bool, typer.Option("--dask/--no-dask", help="Run the Dask scenario.")] = True,
        cpu_dask: Annotated[
            bool, typer.Option("--cpu-dask", help="Also run the CPU-bound pure-Python Dask scenario.")
        ] = False,
        workers: Annotated[str, typer.Option(help="Dask worker process counts, comma-separated.")] = "1,2,4",
        task_ms: Annotated[float, typer.Option(help="CPU time of one Dask task on one core.")] = 20.0,
        out: Annotated[Path | None, typer.Option(help="Write the JSON results here.")] = None,
        json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """Pipeline per-item overhead against a hand-written asyncio loop over the same StreamConsumer;
        Dask throughput over proxies by worker count."""
        from freight.bench._common import report
        from freight.bench.services import bench_services
        from freight.config import load_settings

        n, reps = (5_000, 3) if quick else (50_000, 5)
        counts = [int(w) for w in workers.split(",") if w.strip()]
        with bench_services(load_settings()) as settings:
            rows = consumer_overhead(settings, 10_000 if quick else 50_000, reps)
            rows += overhead(n, reps)
            rows += io_bound(200 if quick else 2_000, 2 if quick else 3)
            if dask:
                rows += dask_proxies(settings, 40 if quick else 160, 1 if quick else 3, counts, task_ms)
            if cpu_dask:
                rows += dask_scaling(40 if quick else 200, 1 if quick else 3, counts, task_ms)
        report("freight bench pipeline", rows, out, json_)
