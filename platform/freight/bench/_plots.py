"""PNG plots of a `freight bench` run (matplotlib, Agg backend: no display needed).

One figure per scenario (`<scenario>.png`) and all of them on one page (`summary.png`). Bars and points
are medians; the whiskers span min to max over the repetitions, and every chart says so. Bars always start
at zero on a linear axis (a log axis makes bar lengths meaningless). A `--quick` or `--tiny` run is a smoke
run: its charts say so in red across the top, so a figure from one is never mistaken for a measurement.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

Row = dict[str, Any]
COLORS = {"freight": "#1f6feb", "raw": "#6e7781", "proxystore": "#d1242f", "other": "#8250df"}


def _color(subject: str) -> str:
    for key, color in COLORS.items():
        if subject.startswith(key):
            return color
    return COLORS["other"]


def _shown(rows: list[Row]) -> list[Row]:
    """Rows that are measurements (not the same figure repeated against a second baseline)."""
    return [r for r in rows if " vs " not in r["subject"]]


def _errors(rows: list[Row]) -> list[list[float]]:
    return [[r["median"] - r["minimum"] for r in rows], [r["maximum"] - r["median"] for r in rows]]


def _smoke(doc: dict[str, Any]) -> bool:
    """Whether the run was a smoke run (`--quick`, `--tiny`), not a measurement."""
    return str(doc.get("options", {}).get("mode", "full")) != "full"


def _bars(ax: Any, sc: dict[str, Any]) -> None:
    rows = _shown(sc["results"])
    names = [r["subject"] for r in rows]
    ax.bar(
        range(len(rows)),
        [r["median"] for r in rows],
        yerr=_errors(rows),
        color=[_color(n) for n in names],
        capsize=4,
    )
    ax.set_xticks(range(len(rows)), names, rotation=15, ha="right", fontsize=8)
    for i, r in enumerate(rows):  # small bars next to large ones stay readable without a log axis
        ax.annotate(f"{r['median']:,.3g}", (i, r["median"]), ha="center", va="bottom", fontsize=6)
    ax.set_ylim(bottom=0)
    ax.set_ylabel(sc["unit"])


def _grouped(
    ax: Any, sc: dict[str, Any], group_of: Callable[[Row], str], subject_of: Callable[[Row], str]
) -> None:
    rows = _shown(sc["results"])
    groups = list(dict.fromkeys(group_of(r) for r in rows))
    subjects = list(dict.fromkeys(subject_of(r) for r in rows))
    width = 0.8 / max(len(subjects), 1)
    for j, subject in enumerate(subjects):
        mine = {group_of(r): r for r in rows if subject_of(r) == subject}
        xs = [i + (j - (len(subjects) - 1) / 2) * width for i, g in enumerate(groups) if g in mine]
        picked = [mine[g] for g in groups if g in mine]
        ax.bar(
            xs,
            [r["median"] for r in picked],
            width,
            yerr=_errors(picked),
            label=subject,
            color=_color(subject),
            capsize=3,
        )
    ax.set_xticks(range(len(groups)), groups)
    ax.set_ylabel(sc["unit"])
    ax.legend(fontsize=7)


def _lines(ax: Any, sc: dict[str, Any], key: str, xlabel: str, per_group: bool, cpus: int) -> None:
    rows = sorted(_shown(sc["results"]), key=lambda r: r["extra"][key])
    xs = [r["extra"][key] for r in rows]
    ax.errorbar(
        xs, [r["median"] for r in rows], yerr=_errors(rows), marker="o", capsize=4, label="all together"
    )
    if per_group:
        each = [statistics.median(r["extra"]["per_group_median"]) for r in rows]
        ax.plot(xs, each, marker="s", ls="--", label="each group (median)")
    elif rows:  # the ideal: linear while there is a core per process
        ideal = [rows[0]["median"] * min(x, cpus) / xs[0] for x in xs]
        ax.plot(xs, ideal, ls=":", color="gray", label=f"linear up to {cpus} cores")
    ax.set_xticks(xs)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(sc["unit"])
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=7)


def _size_of(row: Row) -> str:
    size = row["extra"]["size_bytes"]
    return f"{size / 2**20:g} MiB" if size >= 2**20 else f"{size / 1024:g} KiB"


def _draw(name: str, ax: Any, sc: dict[str, Any], cpus: int) -> None:
    if name == "bulk":
        _grouped(ax, sc, _size_of, lambda r: r["subject"].rsplit(" ", 2)[0])
    elif name == "latency":
        _grouped(ax, sc, lambda r: r["subject"].split()[-1], lambda r: r["subject"].split()[0])
    elif name == "fanout":
        _lines(ax, sc, "groups", "consumer groups", per_group=True, cpus=cpus)
    elif name == "scaling":
        _lines(ax, sc, "partitions", "partitions = consumer processes", per_group=False, cpus=cpus)
    else:
        _bars(ax, sc)
    ax.set_title(sc["title"], fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    ax.text(
        0.99,
        0.99,
        "median; whiskers: min-max",
        transform=ax.transAxes,
        ha="right",
        va="top",
        fontsize=6,
        color="gray",
    )


def write_plots(doc: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    """Write `<scenario>.png` for each scenario and `summary.png`; return name -> path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = doc["machine"]
    footer = (
        f"{doc['command']} - {m['cpus']} cores, {m['memory_gib']} GiB - load {m['load_average_start'][0]} to "
        f"{m['load_average_end'][0]} - {doc['started_at']}"
    )
    smoke = _smoke(doc)
    if smoke:
        footer = f"SMOKE RUN ({doc['command']}): not a measurement - " + footer
    paths: dict[str, Path] = {}
    scenarios = doc["scenarios"]
    cpus = int(m.get("cpus") or 1)
    for name, sc in scenarios.items():
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        _draw(name, ax, sc, cpus)
        fig.text(0.01, 0.005, footer, fontsize=6, color="red" if smoke else "gray")
        if smoke:
            _smoke_banner(fig)
        fig.tight_layout(rect=(0, 0.03, 1, 0.95 if smoke else 1))
        paths[name] = out_dir / f"{name}.png"
        fig.savefig(paths[name], dpi=110)
        plt.close(fig)
    if scenarios:
        cols = 3 if len(scenarios) > 2 else len(scenarios)
        rows = (len(scenarios) + cols - 1) // cols
        fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.9 * rows), squeeze=False)
        flat = [a for row in axes for a in row]
        for ax, (name, sc) in zip(flat, scenarios.items(), strict=False):
            _draw(name, ax, sc, cpus)
        for ax in flat[len(scenarios) :]:
            ax.axis("off")
        fig.suptitle(
            "freight bench: Freight vs raw confluent-kafka vs ProxyStore 1.1.0, same broker, same run"
        )
        fig.text(0.01, 0.005, footer, fontsize=7, color="red" if smoke else "gray")
        if smoke:
            _smoke_banner(fig)
        fig.tight_layout(rect=(0, 0.02, 1, 0.93 if smoke else 0.97))
        paths["summary"] = out_dir / "summary.png"
        fig.savefig(paths["summary"], dpi=100)
        plt.close(fig)
    return paths


def _smoke_banner(fig: Any) -> None:
    fig.text(
        0.5,
        0.995,
        "SMOKE RUN (--quick / --tiny): too few repetitions to compare; no ratio is claimed",
        ha="center",
        va="top",
        fontsize=8,
        color="red",
        weight="bold",
    )
