"""`freight bench bulk --profile` times every stage of one object's path (timings are not checked)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

STAGES = (
    "serialize",
    "checksum",
    "write",
    "write (one call)",
    "put",
    "produce (512 B event)",
    "fetch (512 B event)",
    "map",
    "verify (first touch)",
    "touch (sum)",
    "first touch (sum, unverified)",
    "get (mmap, verified) + sum",
    "raw tofile",
    "raw fromfile + sum",
)


def test_bench_bulk_profile_reports_every_stage(
    kafka_bootstrap: str, registry_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "profile.json"
    env = {
        **os.environ,
        "FREIGHT_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "FREIGHT_SCHEMA_REGISTRY_URL": registry_url,
    }
    done = subprocess.run(
        [
            sys.executable, "-m", "freight.cli", "bench", "bulk", "--profile", "--sizes", "0.25,1",
            "-r", "2", "--workdir", str(tmp_path), "--out", str(out),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads(out.read_text())["results"]
    subjects = {r["subject"] for r in rows}
    for size in ("0.25 MiB", "1 MiB"):
        for stage in STAGES:
            assert f"{size} {stage}" in subjects
    assert all(r["repetitions"] == 2 and r["minimum"] <= r["median"] <= r["maximum"] for r in rows)
    assert all(len(r["extra"]["load_average"]) == 2 for r in rows)
    assert not list(tmp_path.glob("freight-bench-*")), "the profile's files are removed"
