"""`freight bench compare BEFORE AFTER`: every row of two suite runs side by side, generated, not typed.

A change's note has to list before/after for every figure it touched. Copying medians by hand into a
document invites slips and hides the spread; this reads two `results.json` files written by `freight bench`
and prints, per (scenario, subject): both medians with their min - max, after/before (oriented so that > 1
is better, as the suite's ratios are), and the ratio against the row's baseline in each run. A change is
bold only where the two runs' ranges do not overlap, and each run's load average is printed beside it,
since two runs at different loads compare machines as much as code.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from freight.bench._common import figure_text, ranges_apart
from freight.errors import ConfigError


@dataclass(frozen=True)
class Figure:
    """One row of one run: median with its min - max, and its ratio against the row's baseline."""

    median: float
    minimum: float
    maximum: float
    ratio: float | None
    baseline: str | None


@dataclass(frozen=True)
class Change:
    """One (scenario, subject) across two runs; a side is None where that run has no such row."""

    scenario: str
    subject: str
    unit: str
    higher_is_better: bool
    before: Figure | None
    after: Figure | None

    @property
    def factor(self) -> float | None:
        """after / before, oriented so that > 1 is better (before / after where lower is better)."""
        if self.before is None or self.after is None or not self.before.median or not self.after.median:
            return None
        if self.higher_is_better:
            return self.after.median / self.before.median
        return self.before.median / self.after.median

    @property
    def apart(self) -> bool:
        """Whether the two runs' min - max ranges do not overlap (only then is a change claimed)."""
        if self.before is None or self.after is None:
            return False
        b, a = self.before, self.after
        return ranges_apart(a.minimum, a.maximum, b.minimum, b.maximum)


def load_run(path: Path) -> dict[str, Any]:
    """A `results.json` written by `freight bench`.

    Args:
        path: the file, or the directory holding it.

    Returns:
        The run's document.

    Raises:
        ConfigError: the file is missing or is not a suite run's results.
    """
    file = path / "results.json" if path.is_dir() else path
    try:
        doc = json.loads(file.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{file} does not exist; give a results.json written by `freight bench`") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{file} is not readable JSON ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("scenarios"), dict):
        raise ConfigError(
            f"{file} is not a `freight bench` suite run (no 'scenarios'); single-scenario files written by "
            "`freight bench <scenario> --out` are not comparable here"
        )
    return doc


def _figures(doc: dict[str, Any]) -> dict[tuple[str, str], tuple[str, bool, Figure]]:
    rows: dict[tuple[str, str], tuple[str, bool, Figure]] = {}
    for name, sc in doc["scenarios"].items():
        better = bool(sc.get("higher_is_better", True))
        for r in sc.get("results", []):
            fig = Figure(r["median"], r["minimum"], r["maximum"], r.get("ratio"), r.get("baseline"))
            rows[(name, r["subject"])] = (r["unit"], better, fig)
    return rows


def compare(before: dict[str, Any], after: dict[str, Any]) -> list[Change]:
    """Every (scenario, subject) of either run, in the after run's order, then rows only the before run has.

    Args:
        before: the earlier run's document (`load_run`).
        after: the later run's document.

    Returns:
        One `Change` per row.
    """
    old, new = _figures(before), _figures(after)
    keys = list(new) + [k for k in old if k not in new]
    changes = []
    for key in keys:
        unit, better, _ = new.get(key) or old[key]
        changes.append(
            Change(
                key[0],
                key[1],
                unit,
                better,
                old[key][2] if key in old else None,
                new[key][2] if key in new else None,
            )
        )
    return changes


def _fig(f: Figure | None) -> str:
    if f is None:
        return "-"
    return f"{figure_text(f.median)} ({figure_text(f.minimum)} - {figure_text(f.maximum)})"


def _ratio(f: Figure | None) -> str:
    return "" if f is None or f.ratio is None else f"{f.ratio:.2f}x"


def _run_line(label: str, doc: dict[str, Any]) -> str:
    m = doc.get("machine", {})
    start, end = m.get("load_average_start", ["?"]), m.get("load_average_end", ["?"])
    return (
        f"- {label}: `{doc.get('command', 'freight bench')}`, commit {m.get('git_commit', '?')}, "
        f"{doc.get('started_at', '?')}, load average {start[0]} -> {end[0]}, "
        f"{doc.get('options', {}).get('repetitions', '?')} repetition(s)"
    )


def markdown(before: dict[str, Any], after: dict[str, Any], changes: list[Change]) -> str:
    """The comparison as a Markdown table (bold: a change whose ranges do not overlap)."""
    lines = [
        _run_line("before", before),
        _run_line("after", after),
        "",
        "| scenario | subject | unit | before: median (min - max) | after | after vs before "
        "| ratio vs baseline, before -> after |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in changes:
        factor = "" if c.factor is None else f"{c.factor:.2f}x"
        if factor and c.apart:
            factor = f"**{factor}**"
        ratios = f"{_ratio(c.before) or '-'} -> {_ratio(c.after) or '-'}"
        if not (_ratio(c.before) or _ratio(c.after)):
            ratios = ""
        lines.append(
            f"| {c.scenario} | {c.subject} | {c.unit} | {_fig(c.before)} | {_fig(c.after)} | {factor} "
            f"| {ratios} |"
        )
    lines += [
        "",
        "after vs before is oriented so that > 1 is better (for latency: before / after). It is bold only "
        "where the two runs' min - max ranges do not overlap; the runs' load averages differ, so an "
        "unbolded change is not claimed. '-' marks a row the run did not have.",
    ]
    return "\n".join(lines) + "\n"


def register(app: typer.Typer) -> None:
    @app.command("compare")
    def compare_cmd(
        before: Annotated[Path, typer.Argument(help="The earlier run's results.json (or its directory).")],
        after: Annotated[Path, typer.Argument(help="The later run's results.json (or its directory).")],
        out: Annotated[Path | None, typer.Option(help="Also write the Markdown table here.")] = None,
        json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """Two suite runs row by row: before, after, after/before, and each run's ratio to its baseline."""
        from freight.output import print_json, print_table

        old, new = load_run(before), load_run(after)
        changes = compare(old, new)
        if out is not None:
            out.write_text(markdown(old, new, changes))
        if json_:
            print_json(
                {
                    "before": str(before),
                    "after": str(after),
                    "rows": [asdict(c) | {"factor": c.factor, "ranges_apart": c.apart} for c in changes],
                }
            )
            return
        print_table(
            "freight bench compare",
            ["scenario", "subject", "unit", "before", "after", "after vs before", "vs baseline"],
            [
                (
                    c.scenario,
                    c.subject,
                    c.unit,
                    _fig(c.before),
                    _fig(c.after),
                    "" if c.factor is None else f"{c.factor:.2f}x{' (apart)' if c.apart else ''}",
                    f"{_ratio(c.before) or '-'} -> {_ratio(c.after) or '-'}",
                )
                for c in changes
            ],
            caption="after vs before > 1 is better; '(apart)': the two runs' min-max ranges do not overlap",
        )
