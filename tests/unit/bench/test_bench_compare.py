"""`freight bench compare`: two suite runs row by row, a change claimed only where the ranges are apart."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from freight.bench.compare import compare, load_run, markdown
from freight.errors import ConfigError


def _row(
    subject: str, fig: tuple[float, float, float], base: str | None = None, ratio: float | None = None
) -> dict[str, Any]:
    med, lo, hi = fig
    return {"subject": subject, "median": med, "minimum": lo, "maximum": hi, "unit": "u",
            "baseline": base, "ratio": ratio}  # fmt: skip


def _run(
    commit: str, small: tuple[float, float, float], p50: tuple[float, float, float], extra: bool
) -> dict[str, Any]:
    bulk = [_row("freight 1 MiB", (100, 90, 110))] + (
        [_row("freight 256 MiB", (50, 40, 60))] if extra else []
    )
    return {
        "command": "freight bench -r 5",
        "started_at": "2026-12-05T00:00:00+00:00",
        "machine": {"git_commit": commit, "load_average_start": [0.5], "load_average_end": [0.9]},
        "options": {"repetitions": 5},
        "scenarios": {
            "small": {"higher_is_better": True, "results": [_row("freight", small, "raw", 0.1)]},
            "latency": {"higher_is_better": False, "results": [_row("freight p50", p50)]},
            "bulk": {"higher_is_better": True, "results": bulk},
        },
    }  # fmt: skip


def test_changes_are_oriented_and_claimed_only_when_ranges_are_apart() -> None:
    before = _run("a", (100, 90, 110), (10, 9, 11), extra=False)
    after = _run("b", (200, 190, 210), (8, 7, 10), extra=True)
    by = {(c.scenario, c.subject): c for c in compare(before, after)}
    small = by[("small", "freight")]
    assert small.factor == pytest.approx(2.0) and small.apart
    p50 = by[("latency", "freight p50")]  # lower is better: before / after
    assert p50.factor == pytest.approx(1.25) and not p50.apart  # 7-10 overlaps 9-11
    new = by[("bulk", "freight 256 MiB")]
    assert new.before is None and new.factor is None

    table = markdown(before, after, list(by.values()))
    assert "**2.00x**" in table and "| 1.25x |" in table
    assert "commit a" in table and "commit b" in table and "load average 0.5 -> 0.9" in table
    assert "0.10x -> 0.10x" in table
    assert "| bulk | freight 256 MiB | u | - | 50.0 (40.0 - 60.0) |" in table


def test_a_missing_or_foreign_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_run(tmp_path / "nope.json")
    single = tmp_path / "replay.json"
    single.write_text(json.dumps({"title": "freight bench replay", "results": []}))
    with pytest.raises(ConfigError, match="not a `freight bench` suite run"):
        load_run(single)
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ConfigError, match="not readable JSON"):
        load_run(tmp_path / "bad.json")


def test_cli_writes_the_table_and_prints_json(tmp_path: Path) -> None:
    for name, run in (
        ("old", _run("a", (100, 90, 110), (10, 9, 11), False)),
        ("new", _run("b", (200, 190, 210), (8, 7, 10), True)),
    ):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps(run))
    out = tmp_path / "compare.md"
    cli = [sys.executable, "-m", "freight.cli", "bench", "compare"]
    done = subprocess.run(
        [*cli, str(tmp_path / "old"), str(tmp_path / "new"), "--out", str(out), "--json"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)["rows"]
    assert {(r["scenario"], r["subject"], r["ranges_apart"]) for r in rows} >= {("small", "freight", True)}
    assert "**2.00x**" in out.read_text()
    missing = subprocess.run(
        [*cli, str(tmp_path / "none"), str(tmp_path / "new")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert missing.returncode == 2 and "does not exist" in missing.stderr
