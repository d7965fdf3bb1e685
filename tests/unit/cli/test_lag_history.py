"""`freight status --watch`'s lag history: one point per group and refresh, gaps where a group is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

from freight.cli.lag_history import LagHistory, check_chart_path
from freight.errors import ConfigError
from freight.overview import GroupPartition, GroupStatus, ServiceHealth, StatusReport


def _report(groups: dict[str, int]) -> StatusReport:
    up = ServiceHealth("broker", "127.0.0.1:9092", True, "")
    return StatusReport(
        broker=up,
        registry=up,
        s3=up,
        groups=[
            GroupStatus(g, "Stable", 1, [GroupPartition("t", 0, 0, lag, lag)]) for g, lag in groups.items()
        ],
    )


def test_history_keeps_series_aligned_with_refreshes(tmp_path: Path) -> None:
    history = LagHistory(started=100.0)
    history.add(_report({"a": 5}), at=100.0)
    history.add(_report({"a": 3, "b": 9}), at=101.0)
    history.add(_report({"b": 4}), at=102.5)
    assert history.times == [0.0, 1.0, 2.5]
    assert history.totals == {"a": [5, 3, None], "b": [None, 9, 4]}
    assert history.partitions[("b", "t", 0)] == [None, 9, 4]
    chart = tmp_path / "lag.svg"
    history.plot(chart)
    assert chart.read_text().lstrip().startswith("<?xml")


def test_chart_path_is_checked(tmp_path: Path) -> None:
    assert check_chart_path(tmp_path / "x.png") == tmp_path / "x.png"
    with pytest.raises(ConfigError, match="must end in"):
        check_chart_path(tmp_path / "x.jpg")
    with pytest.raises(ConfigError, match="does not exist"):
        check_chart_path(tmp_path / "nope" / "x.png")
