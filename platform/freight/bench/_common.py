"""Shared benchmark helpers: repeated timing with median/min/max, a results table, JSON output."""

from __future__ import annotations

import json
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from freight.output import print_table


@dataclass
class Measurement:
    """One figure: median of repetitions, with min and max, in `unit`; `ratio` is against `baseline`."""

    scenario: str
    subject: str
    unit: str
    median: float
    minimum: float
    maximum: float
    repetitions: int
    baseline: str | None = None
    ratio: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        scenario: str,
        subject: str,
        unit: str,
        figures: Sequence[float],
        baseline: str | None = None,
        **extra: Any,
    ) -> Measurement:
        """The row of one subject: median, min and max of its repetitions' figures (the one row builder).

        The figures themselves are kept in `extra["values"]`, so a reader of the JSON can re-check them.

        Args:
            scenario: What was measured (rows of one scenario are compared).
            subject: Who was measured.
            unit: The figures' unit (e.g. "MB/s", "ms").
            figures: One figure per repetition.
            baseline: The subject of the same scenario this row's ratio is taken against.
            **extra: Anything else worth keeping in the JSON document.

        Returns:
            The measurement (its ratio is filled by `with_ratios`).
        """
        if not figures:
            raise ValueError(f"no figures for {subject!r} in {scenario!r}")
        return cls(
            scenario,
            subject,
            unit,
            float(statistics.median(figures)),
            float(min(figures)),
            float(max(figures)),
            len(figures),
            baseline=baseline,
            extra={"values": [float(v) for v in figures], **extra},
        )


def figure_text(x: float) -> str:
    """A figure as the Markdown tables print it: thousands separated, 1-2 decimals below 100."""
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.2f}" if abs(x) < 10 else f"{x:,.1f}"


def ranges_apart(low: float, high: float, other_low: float, other_high: float) -> bool:
    """Whether the range [low, high] and [other_low, other_high] do not overlap (only then is a
    difference claimed)."""
    return low > other_high or high < other_low


def repeat(fn: Callable[[], float], repetitions: int) -> tuple[float, float, float]:
    """Run `fn` (which returns one figure) `repetitions` times: (median, min, max)."""
    values = [fn() for _ in range(repetitions)]
    return statistics.median(values), min(values), max(values)


def timed(fn: Callable[[], object]) -> float:
    """Seconds one call of `fn` takes."""
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def machine() -> dict[str, Any]:
    import os

    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
    }


def with_ratios(rows: list[Measurement], higher_is_better: bool = True) -> list[Measurement]:
    """Fill `ratio` for rows that name a baseline measured in the same list (same scenario)."""
    by_key = {(m.scenario, m.subject): m for m in rows}
    for m in rows:
        if m.baseline is not None:
            base = by_key.get((m.scenario, m.baseline))
            if base is not None and base.median:
                m.ratio = m.median / base.median if higher_is_better else base.median / m.median
    return rows


def report(title: str, rows: list[Measurement], out: Path | None = None, as_json: bool = False) -> None:
    """Print a table (or JSON) and optionally write the JSON document to `out`."""
    doc = {"title": title, "machine": machine(), "results": [asdict(r) for r in rows]}
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(doc, indent=2))
    if as_json:
        print(json.dumps(doc, indent=2))
        return
    print_table(
        title,
        ["scenario", "subject", "median", "min", "max", "unit", "vs", "ratio"],
        [
            (
                m.scenario,
                m.subject,
                f"{m.median:,.2f}",
                f"{m.minimum:,.2f}",
                f"{m.maximum:,.2f}",
                m.unit,
                m.baseline,
                None if m.ratio is None else f"{m.ratio:.2f}x",
            )
            for m in rows
        ],
    )
