"""`freight bench broker`: local broker cold start to ready, and its resident memory once ready.

Each start is a fresh data directory (format included) on free ports, timed from spawning the JVM to an
AdminClient seeing the broker ready. Freight's fast-start JVM flags are compared with the JVM's defaults at
the same heap, measured in the same run.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress

from freight.bench._common import Measurement, report, with_ratios
from freight.dev.kafka_broker import DEFAULT_JVM_OPTS, BrokerOptions, KafkaBroker
from freight.dev.procs import free_port, stop_process


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_once(jvm_opts: str) -> tuple[float, float]:
    """(seconds to ready, RSS MiB when ready) of one cold start."""
    with tempfile.TemporaryDirectory(prefix="freight-bench-broker-") as tmp:
        broker = KafkaBroker(
            Path(tmp), BrokerOptions(port=free_port(), controller_port=free_port(), jvm_opts=jvm_opts)
        )
        t0 = time.perf_counter()
        record = broker.start()
        elapsed = time.perf_counter() - t0
        rss = _rss_mib(record.pid)
        stop_process(record.pid, grace_s=20)
        return elapsed, rss


def run(starts: int) -> list[Measurement]:
    rows: list[Measurement] = []
    profiles = {"fast-start flags": DEFAULT_JVM_OPTS, "JVM defaults": "-Djava.awt.headless=true"}
    with Progress(transient=True) as progress:
        task = progress.add_task("broker starts", total=starts * len(profiles))
        for name, opts in profiles.items():
            samples = []
            for _ in range(starts):
                samples.append(start_once(opts))
                progress.advance(task)
            ready = [s for s, _ in samples]
            rss = [r for _, r in samples]
            base = None if name == "JVM defaults" else "JVM defaults"
            rows.append(
                Measurement(
                    "cold start to ready",
                    name,
                    "s",
                    statistics.median(ready),
                    min(ready),
                    max(ready),
                    starts,
                    baseline=base,
                )
            )
            rows.append(
                Measurement(
                    "RSS when ready",
                    name,
                    "MiB",
                    statistics.median(rss),
                    min(rss),
                    max(rss),
                    starts,
                    baseline=base,
                )
            )
    return with_ratios(rows, higher_is_better=False)


def register(app: typer.Typer) -> None:
    @app.command("broker")
    def broker_cmd(
        starts: Annotated[int, typer.Option(help="Cold starts per JVM profile.")] = 5,
        out: Annotated[Path | None, typer.Option(help="Write the JSON results here.")] = None,
        json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """Cold start to ready and RSS of the local broker (ratio: defaults / fast-start, >1 is better)."""
        report("freight bench broker", run(starts), out, json_)
