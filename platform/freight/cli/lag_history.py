"""Consumer lag over time, as `freight status --watch` sees it, and its chart (`--plot FILE.png`).

Each refresh adds one point per consumer group (its total lag over the partitions shown) and one per
group and partition. The chart is a line chart of the groups' total lag against wall-clock seconds since
the first refresh, redrawn at every refresh so that an interrupted watch still leaves a current picture.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from freight.errors import ConfigError

if TYPE_CHECKING:
    from freight.overview import StatusReport

#: What matplotlib writes, by file suffix.
CHART_SUFFIXES = (".png", ".svg", ".pdf")


@dataclass
class LagHistory:
    """Lag per group (and per group and partition) at each refresh."""

    started: float = field(default_factory=time.time)
    times: list[float] = field(default_factory=list)  # seconds since `started`
    totals: dict[str, list[int | None]] = field(default_factory=dict)  # group -> total lag per refresh
    partitions: dict[tuple[str, str, int], list[int | None]] = field(default_factory=dict)

    def add(self, report: StatusReport, at: float | None = None) -> None:
        """Record one refresh (groups missing from it get no point: a gap in their line).

        Args:
            report: what `freight.overview.collect` returned.
            at: wall-clock time of the refresh (default: now).
        """
        index = len(self.times)
        self.times.append((time.time() if at is None else at) - self.started)
        for group in report.groups:
            series = self.totals.setdefault(group.group, [None] * index)
            series.append(group.total_lag)
            for p in group.partitions:
                lags = self.partitions.setdefault((group.group, p.topic, p.partition), [None] * index)
                lags.append(p.lag)
        for series in (*self.totals.values(), *self.partitions.values()):
            if len(series) < len(self.times):
                series.append(None)

    def plot(self, path: Path) -> None:
        """Write the chart of the groups' total lag (PNG, SVG or PDF, by suffix).

        Args:
            path: the file to write (replaced).
        """
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(9, 4.5))
        for group, lags in sorted(self.totals.items()):
            points = [(t, v) for t, v in zip(self.times, lags, strict=True) if v is not None]
            if points:
                ax.plot([t for t, _ in points], [v for _, v in points], marker="o", markersize=3, label=group)
        ax.set_xlabel("seconds since the first refresh")
        ax.set_ylabel("total lag (records)")
        ax.set_title(f"consumer lag, {len(self.times)} refreshes (freight status --watch)")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        if self.totals:
            ax.legend(loc="upper right", fontsize="small")
        fig.tight_layout()
        fig.savefig(path)
        plt.close(fig)


def check_chart_path(path: Path) -> Path:
    """Where `--plot` may write: a known suffix, an existing directory, and matplotlib installed.

    Args:
        path: the path given.

    Returns:
        The path.

    Raises:
        ConfigError: what is wrong and what to do.
    """
    if path.suffix.lower() not in CHART_SUFFIXES:
        raise ConfigError(f"--plot {path}: the chart file must end in {', '.join(CHART_SUFFIXES)}")
    if not path.parent.is_dir():
        raise ConfigError(f"--plot {path}: directory {path.parent} does not exist; create it first")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ConfigError(
            "--plot needs matplotlib, which this installation lacks: pip install matplotlib "
            "(or install Freight with its `bench` or `dev` extra)"
        ) from None
    return path
