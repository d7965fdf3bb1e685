"""Stages dispatched to a real Dask `LocalCluster` with worker processes.

The dispatcher submits tasks and awaits them without blocking its event loop; the workers run the stage
functions. Items travel untouched: a `Tripwire` (which counts every probe a lazy proxy would answer by
resolving itself) goes out and comes back without the dispatcher probing it, and proxies of 1 MiB arrays
read from a real StreamConsumer are resolved by the workers only (the dispatcher reads no bulk bytes).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import numpy as np
import pytest

from freight.config import FreightSettings
from freight.kafka import KafkaAdmin
from freight.pipeline import DaskExecutor, MemoryDeadLetterSink, MemorySource, batch_stage, stage
from freight.stores.resolver import default_resolver
from freight.stream import StreamConsumer, is_resolved

distributed = pytest.importorskip("distributed")
cloudpickle = pytest.importorskip("cloudpickle")

# Workers unpickle this module's functions and classes by value: they need not import the test package.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def client(stream_settings: FreightSettings) -> Iterator[Any]:
    # Workers resolve proxies only for the cluster they are configured for (docs/security.md), as a
    # deployment's workers would be: give them the session's broker and registry.
    env = {
        "FREIGHT_KAFKA_BOOTSTRAP": stream_settings.kafka_bootstrap,
        "FREIGHT_SCHEMA_REGISTRY_URL": stream_settings.schema_registry_url,
    }
    cluster = distributed.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=":0", silence_logs=40, env=env
    )
    with distributed.Client(cluster) as dask_client:
        yield dask_client
    cluster.close()


def square_with_pid(x: int) -> tuple[int, int]:
    time.sleep(0.02)
    return x * x, os.getpid()


def rendezvous(x: int) -> bool:
    """Item 0 waits on its worker until item 1 ran on the other: only concurrent dispatch gets there."""
    event = distributed.Event("freight-test-rendezvous")
    if x == 1:
        event.set()
        return True
    return bool(event.wait(timeout=20)) if x == 0 else True


def test_dispatch_is_concurrent_and_does_not_block_the_loop(client: Any) -> None:
    meet = stage(rendezvous, concurrency=2, executor=DaskExecutor(client))
    assert asyncio.run(asyncio.wait_for(meet(range(4)).collect(), 60)) == [True] * 4


def test_stage_runs_on_worker_processes_in_order(client: Any) -> None:
    work = stage(square_with_pid, concurrency=4, executor=DaskExecutor(client))
    results = asyncio.run(work(range(24)).collect())
    assert [r for r, _ in results] == [x * x for x in range(24)]
    worker_pids = set(client.run(os.getpid).values())
    pids = {pid for _, pid in results}
    assert os.getpid() not in pids and pids <= worker_pids
    assert len(pids) == 2  # both worker processes took tasks


def test_batch_stage_and_numpy_arrays_on_dask(client: Any) -> None:
    @batch_stage(max_size=4, max_wait=0.01, concurrency=2, executor=DaskExecutor(client))
    def norms(arrays: list[np.ndarray]) -> list[float]:
        return [float(np.linalg.norm(a)) for a in arrays]

    arrays = [np.full(1000, float(i)) for i in range(10)]
    run = norms(arrays, mode="as_completed")
    results = asyncio.run(run.collect())
    assert sorted(results) == pytest.approx(sorted(float(np.linalg.norm(a)) for a in arrays))
    assert run.stats.batches >= 3


def reject_odd(x: int) -> int:
    if x % 2:
        raise ValueError(f"odd {x}")
    return x


@pytest.mark.parametrize("mode", ["ordered", "as_completed"])
def test_worker_errors_go_through_the_error_policy(client: Any, mode: str) -> None:
    sink = MemoryDeadLetterSink()
    work = stage(reject_odd, concurrency=4, on_error="dead_letter", executor=DaskExecutor(client))
    source = MemorySource.single(list(range(10)))
    run = work(source, mode=mode, dead_letter=sink)  # type: ignore[arg-type]
    assert sorted(asyncio.run(run.collect())) == [0, 2, 4, 6, 8]
    assert sorted(item.value for item, _ in sink.records) == [1, 3, 5, 7, 9]
    report = sink.records[0][1]
    assert report.error_type == "builtins.ValueError" and report.message.startswith("odd")
    assert source.committed == {("memory", 0): 10}


class Tripwire:
    """Pickles to its payload; any probe in this (the dispatching) process is counted."""

    touches: ClassVar[list[str]] = []
    __slots__ = ("payload",)

    def __init__(self, payload: int) -> None:
        object.__setattr__(self, "payload", payload)

    def __reduce_ex__(self, protocol: object) -> tuple[Any, tuple[int]]:
        return (Tripwire, (object.__getattribute__(self, "payload"),))

    def __getattr__(self, name: str) -> Any:
        Tripwire.touches.append(f"getattr {name}")
        raise AttributeError(name)

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        Tripwire.touches.append("__class__")
        return Tripwire

    def __bool__(self) -> bool:
        Tripwire.touches.append("bool")
        return True

    def __eq__(self, other: object) -> bool:
        Tripwire.touches.append("eq")
        return self is other

    def __hash__(self) -> int:
        Tripwire.touches.append("hash")
        return id(self)

    def __len__(self) -> int:
        Tripwire.touches.append("len")
        return 0


def resolve_on_worker(t: Tripwire) -> Tripwire:
    x = object.__getattribute__(t, "payload")
    return Tripwire(x + 1000)


def test_dispatcher_does_not_probe_items(client: Any) -> None:
    Tripwire.touches.clear()
    work = stage(resolve_on_worker, concurrency=4, executor=DaskExecutor(client))

    async def main() -> list[int]:
        return [object.__getattribute__(t, "payload") async for t in work([Tripwire(i) for i in range(8)])]

    assert asyncio.run(main()) == [i + 1000 for i in range(8)]
    assert Tripwire.touches == []


def test_asynchronous_client(client: Any) -> None:
    async def main() -> list[tuple[int, int]]:
        async with distributed.Client(client.scheduler.address, asynchronous=True) as aclient:
            work = stage(square_with_pid, concurrency=4, executor=DaskExecutor(aclient))
            return await work(range(6)).collect()

    assert [r for r, _ in asyncio.run(main())] == [x * x for x in range(6)]


def bytes_read_here() -> int:
    """Bulk bytes the stores of this process have read (the dispatcher's must stay 0)."""
    return sum(store.stats.bytes_read for store in default_resolver().stores())


def reduce_array(array: Any) -> tuple[float, int, int]:
    """Runs on a worker: resolve the proxy there (its store is rebuilt from the catalog topic) and reduce."""
    values = np.asarray(array)
    return float(values.sum()), int(values.nbytes), os.getpid()


def test_proxies_of_megabyte_arrays_from_kafka_are_resolved_only_by_the_workers(
    client: Any,
    stream_settings: FreightSettings,
    make_topic: Callable[..., str],
    make_producer: Callable[..., Any],
    file_store: Any,
    group_id: str,
) -> None:
    topic = make_topic(partitions=2)
    producer = make_producer({None: file_store}, inline_threshold=0)
    arrays = [np.full(131072, float(i)) for i in range(12)]  # 1 MiB each
    for i, array in enumerate(arrays):
        producer.send(topic, array, stream=f"s{i % 3}")
    producer.flush()
    stores_before, read_before = {s.name for s in default_resolver().stores()}, bytes_read_here()
    workers_before = sum(client.run(bytes_read_here).values())
    passed: list[Any] = []

    @stage
    async def hand_over(proxy: Any) -> Any:
        passed.append(proxy)  # the dispatcher keeps the proxy, never looks at it
        return proxy

    reduce_on_workers = stage(reduce_array, concurrency=4, executor=DaskExecutor(client))

    async def main() -> list[tuple[float, int, int]]:
        with StreamConsumer(
            topic, group_id, settings=stream_settings, auto_commit=False, until_high_watermark=True
        ) as consumer:
            return await (hand_over | reduce_on_workers)(consumer, mode="as_completed").collect()

    results = asyncio.run(asyncio.wait_for(main(), 120))
    assert sorted(total for total, _, _ in results) == [131072.0 * i for i in range(12)]
    assert all(nbytes == 1 << 20 for _, nbytes, _ in results)
    pids = {pid for _, _, pid in results}
    assert os.getpid() not in pids and pids <= set(client.run(os.getpid).values())
    # The dispatcher moved no bulk bytes: its stores read nothing, no store was even built for the proxies,
    # and every proxy it handed over is still unresolved. The workers read at least every array once.
    assert bytes_read_here() == read_before and {s.name for s in default_resolver().stores()} == stores_before
    assert len(passed) == 12 and not any(is_resolved(p) for p in passed)
    assert sum(client.run(bytes_read_here).values()) - workers_before >= 12 << 20
    watermarks = KafkaAdmin(stream_settings).watermarks(topic)
    ends = {(topic, p): high for p, (_low, high) in watermarks.items() if high}  # empty ones: no commit
    assert KafkaAdmin(stream_settings).committed(group_id, topic) == ends
