"""Parsing of `groups reset-offsets --by-duration` and the `--export` / `--from-file` CSV."""

from __future__ import annotations

from pathlib import Path

import pytest

from freight.cli.offset_reset import ResetRow, parse_duration_ms, plan_csv, read_plan_csv
from freight.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("PT10M", 600_000),
        ("PT1H30M", 5_400_000),
        ("P1DT2H", 93_600_000),
        ("PT0.5S", 500),
        ("P2D", 172_800_000),
    ],
)
def test_iso_durations_as_kafka_takes_them(text: str, ms: int) -> None:
    assert parse_duration_ms(text) == ms


@pytest.mark.parametrize("text", ["10m", "P", "PT", "1h", "PT-5M", ""])
def test_a_bad_duration_shows_examples(text: str) -> None:
    with pytest.raises(ConfigError, match="PT10M"):
        parse_duration_ms(text)


def test_export_csv_reads_back(tmp_path: Path) -> None:
    rows = [ResetRow("a", 0, 5, 3), ResetRow("a", 1, None, 0), ResetRow("b", 0, 1, 9)]
    path = tmp_path / "plan.csv"
    path.write_text("topic,partition,offset\n" + plan_csv(rows) + "\n")
    assert read_plan_csv(path) == {("a", 0): 3, ("a", 1): 0, ("b", 0): 9}


@pytest.mark.parametrize(
    ("text", "named"), [("a,0\n", "line 1"), ("a,0,1\nb,x,2\n", "line 2"), ("\n", "no topic")]
)
def test_a_bad_csv_names_the_line(tmp_path: Path, text: str, named: str) -> None:
    path = tmp_path / "plan.csv"
    path.write_text(text)
    with pytest.raises(ConfigError, match=named):
        read_plan_csv(path)
