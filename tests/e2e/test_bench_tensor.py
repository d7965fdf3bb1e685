"""`freight bench tensor`: every transport at every size in one run, GB/s and ratios, written to --out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from freight.connectors import transfer

pytest.importorskip("torch")
pytestmark = pytest.mark.e2e


def test_bench_tensor_writes_every_transport_with_ratios(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "freight.cli", "bench", "tensor", "--quick", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    doc = json.loads((tmp_path / "tensor.json").read_text())
    subjects = {(r["scenario"], r["subject"]) for r in doc["results"]}
    expected = {"socket (TCP) fallback", "shared memory (mapping)", "shared memory + first read"}
    if transfer.available():
        expected |= {"transfer engine (NIXL, UCX default: cma+tcp)", "transfer engine (NIXL, UCX_TLS=tcp)"}
    for size in ("tensor 1 MiB", "tensor 4 MiB"):
        assert {(size, s) for s in expected} <= subjects
    for row in doc["results"]:
        assert row["unit"] == "GB/s" and row["minimum"] <= row["median"] <= row["maximum"]
        assert row["repetitions"] == 3
        assert (row["ratio"] is None) == (row["subject"] == "socket (TCP) fallback")
    assert set(doc["load_average"]) == {"1 MiB", "4 MiB"} and doc["not_run"]
    page = (tmp_path / "tensor.md").read_text()
    assert "ratio vs socket" in page and "Load average" in page and "Not run here" in page
    assert "load average" in done.stdout
