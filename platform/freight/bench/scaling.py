"""`freight bench scaling`: 1, 2, 4 partitions consumed by as many consumer processes of one group.

Each process is assigned one partition; together they read and resolve every object once. Objects/s; the
ratio is against one partition and one process. Setup and worker processes are those of `fanout`.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from freight.bench._common import Measurement, with_ratios
from freight.bench._procs import drop_topics, new_topic
from freight.bench.fanout import AsJson, Count, Out, Reps, SizeKiB, _fleet_run, produce_arrays
from freight.bench.stream import Scenario, Tick, _no_tick
from freight.config import FreightSettings
from freight.errors import FreightError


def scaling(
    settings: FreightSettings,
    workdir: Path,
    *,
    processes: list[int],
    count: int,
    size: int,
    repetitions: int,
    tick: Tick = _no_tick,
) -> Scenario:
    """P partitions consumed by P processes of one group: objects/s."""
    name = "scaling"
    sc = Scenario(
        name,
        f"scaling: {', '.join(map(str, processes))} partitions and consumer processes",
        f"{count:,} numpy arrays of {size // 1024:,} KiB in the file store, spread evenly over P partitions; "
        "P consumer processes in one group, one partition each, together read, resolve and sum every array "
        "once; objects/s = all objects / the slowest process's time",
        "objects/s",
    )
    base = None
    for p in processes:
        topic = new_topic(settings, f"scaling-{p}", partitions=p)
        store_dir = workdir / topic
        try:
            tick(f"{name}: writing {count:,} arrays over {p} partition(s)")
            produce_arrays(settings, topic, p, count, size, store_dir)
            runs = []
            for rep in range(repetitions):
                tick(f"{name}: {p} partition(s) x {p} process(es) ({rep + 1}/{repetitions})")
                results = _fleet_run(settings, topic, [f"g-{topic}-{rep}"] * p, size, 1)
                got = sum(n for n, _, _ in results)
                if got != count:
                    raise FreightError(f"scaling: the processes got {got} of {count} objects")
                runs.append(count / max(s for _, s, _ in results))
            subject = f"{p} partition{'s' if p > 1 else ''} x {p} process{'es' if p > 1 else ''}"
            base = base or subject
            sc.rows.append(
                Measurement.of(
                    name, subject, "objects/s", runs, base if subject != base else None, partitions=p
                )
            )
        finally:
            shutil.rmtree(store_dir, ignore_errors=True)
            drop_topics(settings, topic)
    with_ratios(sc.rows)
    return sc


def register(app: typer.Typer) -> None:
    @app.command("scaling")
    def scaling_cmd(
        processes: Annotated[str, typer.Option(help="Partition/process counts, comma-separated.")] = "1,2,4",
        count: Count = 2_000,
        size_kib: SizeKiB = 64,
        repetitions: Reps = 3,
        out: Out = None,
        json_: AsJson = False,
    ) -> None:
        """1, 2, 4 partitions consumed by as many processes of one group."""
        from freight.bench._common import report
        from freight.bench.services import bench_services
        from freight.config import load_settings

        ks = [int(c) for c in processes.split(",") if c.strip()]
        with (
            bench_services(load_settings()) as settings,
            tempfile.TemporaryDirectory(prefix="freight-bench-") as tmp,
        ):
            sc = scaling(
                settings, Path(tmp), processes=ks, count=count, size=size_kib * 1024, repetitions=repetitions
            )
        report("freight bench scaling", sc.rows, out, json_)
