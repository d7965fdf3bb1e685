"""`freight bench` (no sub-command): every issue-9 scenario against one broker in one run.

Scenarios, in order: small objects, bulk objects, latency (stream.py), replay (replay.py), fan-out
(fanout.py), scaling (scaling.py); each states its setup with its figures. The run prints one table per
scenario (absolute figures, median/min/max over repetitions, and ratios against the baseline measured in
the same run) and writes `results.json` plus PNG plots (`<scenario>.png` and `summary.png`) to the results
directory. Sizes: `full` (default), `quick` (a smoke run, under two minutes on two cores) and `tiny` (the
test of the suite itself: every file, no meaningful numbers).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from freight.bench._common import figure_text, ranges_apart
from freight.bench._load import background_load
from freight.bench._procs import allow_store_roots
from freight.bench.stream import SHM_DIR, Scenario, Tick
from freight.config import FreightSettings

SCENARIOS = ("small", "bulk", "latency", "replay", "fanout", "scaling")
MODES = ("full", "quick", "tiny")


@dataclass
class SuiteConfig:
    """Sizes of one run (`for_mode` gives the standard ones)."""

    mode: str
    repetitions: int
    small_count: int
    small_proxystore_count: int
    bulk_sizes_mib: list[float]
    bulk_total_mib: float
    bulk_min_count: int
    latency_count: int
    latency_rate: float
    latency_size: int
    replay_count: int
    fanout_groups: list[int]
    scaling_processes: list[int]
    fleet_count: int
    fleet_size: int
    only: list[str] = field(default_factory=lambda: list(SCENARIOS))
    background_load: int = 0  # busy processes running beside the whole run (`--background-load`)

    @classmethod
    def for_mode(cls, mode: str, repetitions: int | None = None) -> SuiteConfig:
        if mode not in _SIZES:
            raise ValueError(f"unknown mode {mode!r}; one of {', '.join(MODES)}")
        cfg = cls(mode=mode, **_SIZES[mode])  # type: ignore[arg-type]
        if repetitions is not None:
            cfg.repetitions = repetitions
        return cfg


_FLEET = {"fanout_groups": [1, 2, 4], "scaling_processes": [1, 2, 4], "fleet_size": 64 * 1024}
_SIZES: dict[str, dict[str, object]] = {
    "full": {
        "repetitions": 3,
        **{"small_count": 20_000, "small_proxystore_count": 2_000},
        **{"bulk_sizes_mib": [1, 16, 64, 256], "bulk_total_mib": 512, "bulk_min_count": 4},
        **{"latency_count": 2_000, "latency_rate": 200, "latency_size": 1024},
        **{"replay_count": 100_000, "fleet_count": 4_000, **_FLEET},
    },
    "quick": {
        "repetitions": 1,
        **{"small_count": 5_000, "small_proxystore_count": 500},
        **{"bulk_sizes_mib": [1, 16, 64], "bulk_total_mib": 64, "bulk_min_count": 2},
        **{"latency_count": 400, "latency_rate": 200, "latency_size": 1024},
        **{"replay_count": 10_000, "fleet_count": 1_000, **_FLEET},
    },
    "tiny": {
        "repetitions": 1,
        **{"small_count": 200, "small_proxystore_count": 20},
        **{"bulk_sizes_mib": [1 / 16, 1 / 4], "bulk_total_mib": 1, "bulk_min_count": 2},
        **{"latency_count": 40, "latency_rate": 400, "latency_size": 1024},
        **{"replay_count": 500, "fleet_count": 60, "fanout_groups": [1, 2], "scaling_processes": [1, 2]},
        "fleet_size": 16 * 1024,
    },
}


def _run_scenario(
    name: str, settings: FreightSettings, workdir: Path, cfg: SuiteConfig, tick: Tick
) -> Scenario:
    from freight.bench import fanout, replay, scaling, stream

    reps = cfg.repetitions
    if name == "small":
        return stream.small(
            settings, workdir, count=cfg.small_count, proxystore_count=cfg.small_proxystore_count,
            repetitions=reps, tick=tick,
        )  # fmt: skip
    if name == "bulk":
        return stream.bulk(
            settings, workdir, sizes_mib=cfg.bulk_sizes_mib, total_mib=cfg.bulk_total_mib,
            min_count=cfg.bulk_min_count, repetitions=reps, tick=tick,
        )  # fmt: skip
    if name == "latency":
        return stream.latency(
            settings, workdir, count=cfg.latency_count, rate=cfg.latency_rate, size=cfg.latency_size,
            repetitions=reps, tick=tick,
        )  # fmt: skip
    if name == "replay":
        return replay.replay(settings, workdir, count=cfg.replay_count, repetitions=reps, tick=tick)
    if name == "fanout":
        return fanout.fanout(
            settings, workdir, groups=cfg.fanout_groups, count=cfg.fleet_count, size=cfg.fleet_size,
            repetitions=reps, tick=tick,
        )  # fmt: skip
    if name == "scaling":
        return scaling.scaling(
            settings, workdir, processes=cfg.scaling_processes, count=cfg.fleet_count, size=cfg.fleet_size,
            repetitions=reps, tick=tick,
        )  # fmt: skip
    raise ValueError(f"unknown scenario {name!r}")


def machine_info() -> dict[str, Any]:
    """Where the figures come from: cores, memory, load, versions, commit."""
    import confluent_kafka
    import numpy

    info: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "confluent_kafka": confluent_kafka.__version__,
        "librdkafka": confluent_kafka.libversion()[0],
        "numpy": numpy.__version__,
    }
    try:
        from importlib.metadata import version

        info["proxystore"] = version("proxystore")
    except Exception:  # the baseline is a dev extra; its absence is reported, not fatal
        info["proxystore"] = None
    info["git_commit"] = _git_commit()
    from freight.schemas import fastcodec

    # The per-event figures depend on it: `make native` builds the compiled codec (docs/benchmarks.md).
    info["event_codec"] = "compiled" if fastcodec.NATIVE is not None else "pure Python"
    return info


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def _git_commit() -> str | None:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
            cwd=Path(__file__).parent,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def command_line(cfg: SuiteConfig) -> str:
    """The `freight bench` command that repeats this run's sizes, scenarios and load."""
    parts = ["freight bench"]
    if cfg.mode != "full":
        parts.append(f"--{cfg.mode}")
    if cfg.repetitions != _SIZES[cfg.mode]["repetitions"]:
        parts.append(f"-r {cfg.repetitions}")
    if list(cfg.only) != list(SCENARIOS):
        parts += [f"--only {name}" for name in cfg.only]
    if cfg.background_load:
        parts.append(f"--background-load {cfg.background_load}")
    return " ".join(parts)


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def run_suite(
    settings: FreightSettings,
    cfg: SuiteConfig,
    out_dir: Path,
    *,
    tick: Tick,
    done: Callable[[str], None] | None = None,
    workdir: Path | None = None,
) -> dict[str, Any]:
    """Run the chosen scenarios, write results.json and the plots into `out_dir`; return the document."""
    from freight.bench._plots import write_plots

    started = dt.datetime.now(dt.UTC)
    load_start = _load()
    t0 = time.perf_counter()
    scenarios: dict[str, Scenario] = {}
    with (
        tempfile.TemporaryDirectory(prefix="freight-bench-", dir=workdir) as tmp,
        background_load(cfg.background_load),
    ):
        settings = allow_store_roots(settings, Path(tmp), SHM_DIR)
        for name in SCENARIOS:
            if name not in cfg.only:
                continue
            scenarios[name] = _run_scenario(name, settings, Path(tmp), cfg, tick)
            if done is not None:
                done(name)
    doc: dict[str, Any] = {
        "title": "freight bench",
        "command": command_line(cfg),
        "started_at": started.isoformat(timespec="seconds"),
        "elapsed_s": round(time.perf_counter() - t0, 1),
        "machine": machine_info() | {"load_average_start": load_start, "load_average_end": _load()},
        "broker": settings.kafka_bootstrap,
        "options": asdict(cfg),
        "scenarios": {
            name: {
                "title": sc.title,
                "setup": sc.setup,
                "unit": sc.unit,
                "higher_is_better": sc.higher_is_better,
                "results": [asdict(r) for r in sc.rows],
            }
            for name, sc in scenarios.items()
        },
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    doc["plots"] = {name: path.name for name, path in write_plots(doc, out_dir).items()}
    (out_dir / "results.json").write_text(json.dumps(doc, indent=2))
    (out_dir / "results.md").write_text(markdown(doc))
    return doc


def _ranges_apart(row: dict[str, Any], base: dict[str, Any] | None) -> bool:
    """Whether `row`'s min-max range and its baseline's do not overlap."""
    if base is None:
        return False
    return ranges_apart(row["minimum"], row["maximum"], base["minimum"], base["maximum"])


def markdown(doc: dict[str, Any]) -> str:
    """The run as Markdown (the README's Benchmarks table): one table, then each scenario's setup."""
    m = doc["machine"]
    smoke = doc["options"].get("mode", "full") != "full"
    lines = [
        *(
            [
                f"**Smoke run (`{doc['command']}`): too few repetitions and objects to compare; no ratio "
                "below is claimed or bolded. Use `freight bench` (full) for figures.**",
                "",
            ]
            if smoke
            else []
        ),
        f"`{doc['command']}` on {m['cpus']} cores, {m['memory_gib']} GiB, Python {m['python']}, "
        f"confluent-kafka {m['confluent_kafka']} (librdkafka {m['librdkafka']}), "
        f"ProxyStore {m['proxystore']}, event codec {m.get('event_codec', 'pure Python')}; "
        f"load average {m['load_average_start'][0]} at the start, {m['load_average_end'][0]} at the end"
        f"{_background(doc)}; "
        f"{doc['options']['repetitions']} repetition(s) per figure; commit {m['git_commit']}, "
        f"{doc['started_at']}.",
        "",
        "| scenario | subject | median | min - max | unit | vs (same run) | ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, sc in doc["scenarios"].items():
        by_subject = {r["subject"]: r for r in sc["results"]}
        for r in sc["results"]:
            ratio = "" if r["ratio"] is None else f"{r['ratio']:.2f}x"
            if ratio and not smoke and _ranges_apart(r, by_subject.get(r["baseline"])):
                ratio = f"**{ratio}**"  # only a difference the min-max ranges do not blur
            spread = f"{figure_text(r['minimum'])} - {figure_text(r['maximum'])}"
            lines.append(
                f"| {name} | {r['subject']} | {figure_text(r['median'])} | {spread} | {r['unit']} "
                f"| {r['baseline'] or ''} | {ratio} |"
            )
    lines += [
        "",
        "A ratio is bold only where the two min - max ranges do not overlap; an unbolded ratio is within "
        "the run-to-run spread and is not claimed as a difference.",
        "",
        "Setup of each scenario:",
        "",
    ]
    lines += [f"- **{name}** ({sc['title']}): {sc['setup']}." for name, sc in doc["scenarios"].items()]
    return "\n".join(lines) + "\n"


def _background(doc: dict[str, Any]) -> str:
    """The table header's note on a run made under `--background-load N` (empty for a quiet run)."""
    n = int(doc["options"].get("background_load", 0))
    if not n:
        return ""
    return f" (with {n} busy background process{'es' if n > 1 else ''} running through the whole run)"


def print_tables(doc: dict[str, Any]) -> None:
    """One table per scenario (setup as its caption), then where the files are."""
    from freight.output import print_table

    def fmt(x: float) -> str:
        return f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.2f}"

    for sc in doc["scenarios"].values():
        print_table(
            sc["title"],
            ["subject", "median", "min", "max", "unit", "vs", "ratio"],
            [
                (
                    r["subject"],
                    fmt(r["median"]),
                    fmt(r["minimum"]),
                    fmt(r["maximum"]),
                    r["unit"],
                    r["baseline"],
                    None if r["ratio"] is None else f"{r['ratio']:.2f}x",
                )
                for r in sc["results"]
            ],
            caption=sc["setup"],
        )
    m = doc["machine"]
    print_table(
        "Run",
        ["", ""],
        [
            ("command", doc["command"]),
            ("machine", f"{m['cpus']} cores, {m['memory_gib']} GiB, {m['platform']}"),
            ("load average (1, 5, 15 min)", f"{m['load_average_start']} -> {m['load_average_end']}"),
            ("background load", f"{doc['options'].get('background_load', 0)} busy process(es)"),
            ("elapsed", f"{doc['elapsed_s']} s"),
            (
                "ratio",
                "against the baseline in the same run; > 1 means Freight does better (also for latency)",
            ),
        ],
    )
