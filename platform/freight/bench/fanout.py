"""`freight bench fanout`: 1, 2, 4 consumer groups on one stream (one partition).

Each group is one consumer process that reads and resolves every object. Aggregate objects/s (objects
delivered to all groups / the slowest group's time) and the per-group figure; the ratio is against one
group. `freight bench scaling` (scaling.py) shares the setup and the worker processes.

Setup (not timed): the objects (numpy arrays, 64 KiB by default) are written to a file store and their
events to Kafka first, spread evenly over the partitions. The workers join their groups, wait until every
one is assigned its share, then start together; each times itself from the start signal to its last object
(records are fetched while waiting; decoding, resolving and reading every byte are timed).
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from freight.bench._common import Measurement, with_ratios
from freight.bench._procs import ConsumerFleet, drop_topics, new_topic, streams_for_partitions
from freight.bench.stream import Scenario, Tick, _no_tick
from freight.config import FreightSettings
from freight.errors import FreightError


def produce_arrays(
    settings: FreightSettings, topic: str, partitions: int, count: int, size: int, store_dir: Path
) -> None:
    """`count` arrays of `size` bytes, spread evenly over `partitions` (4 streams per partition)."""
    import numpy as np

    from freight.connectors.file import FileConnector
    from freight.stores import Store
    from freight.stream import StreamProducer

    streams = streams_for_partitions(partitions, 4)
    array = np.random.default_rng(1).integers(0, 255, size, dtype=np.uint8)
    store = Store(f"bench-{topic}", FileConnector(store_dir))
    with StreamProducer({None: store}, settings=settings) as producer:
        for i in range(count):
            producer.send(topic, array, stream=streams[i % len(streams)])
        producer.flush()


def _fleet_run(
    settings: FreightSettings, topic: str, groups: list[str], size: int, per_worker: int | None
) -> list[tuple[int, float, int]]:
    fleet = ConsumerFleet(settings, topic, groups, size)
    fleet.wait_ready(per_worker)
    return fleet.run()


def fanout(
    settings: FreightSettings,
    workdir: Path,
    *,
    groups: list[int],
    count: int,
    size: int,
    repetitions: int,
    tick: Tick = _no_tick,
) -> Scenario:
    """k consumer groups (one process each) on one stream: aggregate and per-group objects/s."""
    name = "fanout"
    sc = Scenario(
        name,
        f"fan-out: {', '.join(map(str, groups))} consumer groups on one stream",
        f"{count:,} numpy arrays of {size // 1024:,} KiB in the file store, one partition; each group is one "
        "consumer process (its own group id) reading and resolving every array and summing its bytes; all "
        "groups start together; aggregate = objects delivered to all groups / the slowest group's time",
        "objects/s",
    )
    topic = new_topic(settings, "fanout")
    store_dir = workdir / topic
    try:
        tick(f"{name}: writing {count:,} arrays")
        produce_arrays(settings, topic, 1, count, size, store_dir)
        base = None
        for k in groups:
            aggregate: list[float] = []
            per_group: list[float] = []
            for rep in range(repetitions):
                tick(f"{name}: {k} group(s) ({rep + 1}/{repetitions})")
                results = _fleet_run(
                    settings, topic, [f"g-{topic}-{k}-{rep}-{i}" for i in range(k)], size, None
                )
                if any(n != count for n, _, _ in results):
                    raise FreightError(
                        f"fan-out: a group got {[n for n, _, _ in results]} of {count} objects"
                    )
                aggregate.append(k * count / max(s for _, s, _ in results))
                per_group.append(statistics.median(count / s for _, s, _ in results))
            subject = f"{k} group{'s' if k > 1 else ''}"
            base = base or subject
            sc.rows.append(
                Measurement.of(
                    name,
                    subject,
                    "objects/s",
                    aggregate,
                    base if subject != base else None,
                    groups=k,
                    per_group_median=per_group,
                )
            )
    finally:
        shutil.rmtree(store_dir, ignore_errors=True)
        drop_topics(settings, topic)
    with_ratios(sc.rows)
    return sc


Count = Annotated[int, typer.Option("--count", "-n", help="Objects in the stream.")]
SizeKiB = Annotated[int, typer.Option("--size-kib", help="Object size in KiB.")]
Reps = Annotated[int, typer.Option("--repetitions", "-r", help="Repetitions per figure.")]
Out = Annotated[Path | None, typer.Option(help="Write the JSON results here.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def register(app: typer.Typer) -> None:
    @app.command("fanout")
    def fanout_cmd(
        groups: Annotated[str, typer.Option(help="Group counts, comma-separated.")] = "1,2,4",
        count: Count = 2_000,
        size_kib: SizeKiB = 64,
        repetitions: Reps = 3,
        out: Out = None,
        json_: AsJson = False,
    ) -> None:
        """1, 2, 4 consumer groups (one process each) on one stream."""
        from freight.bench._common import report
        from freight.bench.services import bench_services
        from freight.config import load_settings

        ks = [int(c) for c in groups.split(",") if c.strip()]
        with (
            bench_services(load_settings()) as settings,
            tempfile.TemporaryDirectory(prefix="freight-bench-") as tmp,
        ):
            sc = fanout(
                settings, Path(tmp), groups=ks, count=count, size=size_kib * 1024, repetitions=repetitions
            )
        report("freight bench fanout", sc.rows, out, json_)
