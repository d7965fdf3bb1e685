"""`freight bench` runs the whole suite on tiny sizes and writes the table, results.json and the plots.

Timings are not checked (they are meaningless at these sizes and on a shared machine); the files are.
"""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

SCENARIOS = {"small", "bulk", "latency", "replay", "fanout", "scaling"}
MEASUREMENT_KEYS = {
    "scenario",
    "subject",
    "unit",
    "median",
    "minimum",
    "maximum",
    "repetitions",
    "baseline",
    "ratio",
}


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk (raises if the file is not a PNG)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert data.rstrip(b"\x00").endswith(b"IEND\xaeB`\x82"), f"{path} is truncated"
    return width, height


@pytest.mark.long
def test_bench_suite_writes_results_json_and_plots(
    kafka_bootstrap: str, registry_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "results"
    before = set(httpx.get(f"{registry_url}/subjects", timeout=10).json())
    env = {**os.environ, "FREIGHT_BENCH_TINY": "1"}
    done = subprocess.run(
        [
            sys.executable, "-m", "freight.cli", "bench", "--out", str(out), "--workdir", str(tmp_path),
            "--bootstrap", kafka_bootstrap, "--registry", registry_url,
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    # The run removed the registry subjects of the topics it created (as it removed the topics).
    left = {s for s in httpx.get(f"{registry_url}/subjects", timeout=10).json() if s.startswith("bench-")}
    assert left <= before, sorted(left - before)

    # The table: one per scenario, with the ratios column and the run's machine.
    for title in ("small objects (128 B) end to end", "replay", "fan-out", "scaling", "latency"):
        assert title in done.stdout
    assert "ratio" in done.stdout and "load average" in done.stdout

    doc = json.loads((out / "results.json").read_text())
    assert doc["options"]["mode"] == "tiny"
    assert set(doc["scenarios"]) == SCENARIOS
    assert {"cpus", "memory_gib", "load_average_start", "load_average_end"} <= set(doc["machine"])
    for name, scenario in doc["scenarios"].items():
        assert scenario["setup"] and scenario["unit"], name
        assert scenario["results"], name
        for row in scenario["results"]:
            assert set(row) >= MEASUREMENT_KEYS, (name, row)
            assert row["minimum"] <= row["median"] <= row["maximum"], (name, row)
    subjects = {r["subject"] for r in doc["scenarios"]["small"]["results"]}
    assert {"freight", "raw-kafka", "proxystore-1.1.0"} <= subjects
    bulk = {r["subject"] for r in doc["scenarios"]["bulk"]["results"]}
    assert any(s.startswith("raw file") for s in bulk) and any(s.startswith("proxystore") for s in bulk)
    assert any(r["ratio"] is not None for r in doc["scenarios"]["small"]["results"])

    table = (out / "results.md").read_text()
    assert "| scenario | subject | median |" in table and "Setup of each scenario" in table
    # A tiny run is a smoke run: marked as one, and no ratio is bolded (claimed).
    assert table.startswith("**Smoke run") and not re.search(r"\*\*[0-9.,]+x\*\*", table)

    assert set(doc["plots"]) == SCENARIOS | {"summary"}
    for name in doc["plots"].values():
        width, height = png_size(out / name)
        assert width > 100 and height > 100


def test_bench_without_a_broker_exits_3_and_names_the_command(tmp_path: Path) -> None:
    from freight.dev.procs import free_port

    done = subprocess.run(
        [
            sys.executable, "-m", "freight.cli", "bench", "--tiny", "--out", str(tmp_path),
            "--bootstrap", f"127.0.0.1:{free_port()}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    assert done.returncode == 3
    assert "freight dev up" in done.stderr
    assert not (tmp_path / "results.json").exists()


def test_bench_scenario_commands_are_still_there() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "freight.cli", "bench", "--help"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0
    for command in ("stream", "replay", "fanout", "scaling", "--quick", "--out"):
        assert command in done.stdout
