"""`freight status`: services, topics, groups with lag, stores and the eviction watermark on one screen."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from freight.cli.common import (
    Bootstrap,
    CommandConfig,
    Json,
    RegistryCa,
    RegistryCert,
    RegistryKey,
    RegistryUrl,
    settings_from,
)
from freight.errors import ConfigError
from freight.output import console, error, print_json, print_table

if TYPE_CHECKING:
    from freight.config import FreightSettings
    from freight.overview import StatusOptions, StatusReport

GROUP = None
app = typer.Typer()


def _size(n: int | None) -> str | None:
    if n is None:
        return None
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1024
    return str(n)


def _render(report: StatusReport) -> None:
    def state(ok: bool | None) -> str:
        return "[green]up[/]" if ok else "[dim]-[/]" if ok is None else "[bold red]down[/]"

    print_table(
        "Services",
        ["service", "state", "address", "detail"],
        [(s.name, state(s.ok), s.address, s.detail) for s in (report.broker, report.registry, report.s3)],
    )
    if not report.broker.ok:
        return
    if report.topics:
        print_table(
            "Topics",
            ["topic", "partitions", "records", "log start..high watermark per partition"],
            [
                (
                    t.topic,
                    t.partitions,
                    f"{t.records:,}",
                    ", ".join(f"{o['partition']}: {o['low']}..{o['high']}" for o in t.offsets[:8])
                    + (" ..." if len(t.offsets) > 8 else ""),
                )
                for t in report.topics
            ],
        )
    else:
        console.print("[dim]no topics[/]")
    rows = []
    for g in report.groups:
        head = (g.group, g.state, g.members)
        if not g.partitions:
            rows.append((*head, None, None, None, None, g.error or "no committed offsets"))
        for i, p in enumerate(g.partitions):
            rows.append(
                (
                    *(head if i == 0 else ("", "", "")),
                    f"{p.topic}[{p.partition}]",
                    p.committed,
                    p.high,
                    p.lag,
                    "",
                )
            )
    if rows:
        print_table(
            "Consumer groups",
            ["group", "state", "members", "partition", "committed", "high watermark", "lag", "note"],
            rows,
            caption=f"total lag {sum(g.total_lag for g in report.groups):,}",
        )
    else:
        console.print("[dim]no consumer groups[/]")
    if report.stores:
        print_table(
            "Stores",
            ["store", "kind", "location", "objects", "bytes", "note"],
            [
                (
                    s.name,
                    s.kind,
                    s.location,
                    None if s.objects is None else f"{s.objects:,}" + ("+" if s.truncated else ""),
                    _size(s.bytes) if s.bytes is not None else None,
                    s.detail,
                )
                for s in report.stores
            ],
        )
    else:
        console.print(f"[dim]stores: {report.stores_detail or 'none in the catalog'}[/]")
    for warning in report.replication_warnings:
        console.print(f"warning: {warning}", style="yellow", markup=False, highlight=False)
    if report.rejected_records:
        shown = report.rejected_records[-5:]
        console.print(
            f"[yellow]skipped {len(report.rejected_records)} record(s) of Freight's internal topics "
            "(written by someone else? see docs/security.md); latest:[/]",
            highlight=False,
        )
        for r in shown:
            console.print(f"  {r['topic']}@{r['offset']} key {r['key']!r}: {r['reason']}", markup=False)
    ev = report.eviction
    if ev is not None:
        if ev.error:
            console.print(f"[yellow]eviction: {ev.error}[/]")
        if ev.watermarks:
            print_table(
                "Eviction watermark",
                [
                    "partition",
                    "source",
                    "watermark",
                    "log start",
                    "checkpoint",
                    "evictable",
                    "groups",
                    "blocking",
                ],
                [
                    (
                        f"{w.topic}[{w.partition}]",
                        w.source,
                        w.offset,
                        w.low,
                        w.checkpoint,
                        w.evictable,
                        ", ".join(w.groups),
                        "; ".join(w.blocking),
                    )
                    for w in ev.watermarks
                ],
                caption=ev.detail,
            )
        else:
            console.print("[dim]eviction: no committed offsets on the topics shown[/]")
    console.print(f"[dim]gathered in {report.elapsed_s:.2f}s[/]")


@app.command("status")
def status_cmd(
    topic: Annotated[
        list[str] | None, typer.Option("--topic", "-t", help="Only these topics (repeatable).")
    ] = None,
    group: Annotated[
        list[str] | None, typer.Option("--group", "-g", help="Only these groups (repeatable).")
    ] = None,
    internal: Annotated[bool, typer.Option(help="Also show topics whose name starts with '_'.")] = False,
    stores: Annotated[
        bool, typer.Option("--stores/--no-stores", help="List the stores of the catalog.")
    ] = True,
    store: Annotated[
        list[str] | None, typer.Option("--store", "-s", help="Only these stores (repeatable).")
    ] = None,
    store_limit: Annotated[
        int, typer.Option(min=1, help="Stop listing a store after this many objects.")
    ] = 100_000,
    store_seconds: Annotated[float, typer.Option(help="Stop listing a store after this many seconds.")] = 2.0,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each service.")] = 3.0,
    watch: Annotated[
        float | None,
        typer.Option(
            "--watch",
            "-w",
            metavar="SECONDS",
            help="Refresh every SECONDS until Ctrl-C (with --json: one JSON document per line).",
        ),
    ] = None,
    count: Annotated[
        int | None, typer.Option(min=1, help="With --watch: stop after this many refreshes.")
    ] = None,
    plot: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE.png",
            help="With --watch: draw each group's total lag over time into this chart (.png, .svg, .pdf), "
            "redrawn at every refresh.",
        ),
    ] = None,
    bootstrap: Bootstrap = None,
    command_config: CommandConfig = None,
    registry: RegistryUrl = None,
    registry_ca: RegistryCa = None,
    registry_cert: RegistryCert = None,
    registry_key: RegistryKey = None,
    json_: Json = False,
) -> None:
    """Health of the broker, registry and S3 endpoint; topics; groups with lag; stores; eviction watermark.

    Exits 3 if a configured service does not answer (the message says which command starts it; with
    --watch, if it did not answer at the last refresh).
    """
    from freight.overview import StatusOptions

    options = StatusOptions(
        topics=topic or None,
        groups=group or None,
        internal=internal,
        timeout=timeout,
        store_objects=store_limit,
        store_seconds=store_seconds,
        stores=stores,
        store_names=store or None,
    )
    settings = settings_from(
        bootstrap,
        registry,
        command_config=command_config,
        registry_ca=registry_ca,
        registry_cert=registry_cert,
        registry_key=registry_key,
    )
    if watch is None:
        if count is not None or plot is not None:
            raise ConfigError("--count and --plot need --watch SECONDS (a refreshing view)")
        report = _collect_once(settings, options, spinner=not json_)
        if json_:
            print_json(report.as_dict())
        else:
            _render(report)
    else:
        report = _watch(settings, options, watch, count, plot, json_)
    if report.down:
        for service in report.down:
            error(f"the {service.name} at {service.address} is not answering: {service.hint}")
        raise typer.Exit(3)


def _collect_once(settings: FreightSettings, options: StatusOptions, *, spinner: bool) -> StatusReport:
    from rich.status import Status

    from freight.overview import collect

    status = Status("asking the services ...", console=console)
    if spinner and console.is_terminal:
        status.start()
    try:
        return collect(settings, options)
    finally:
        status.stop()


def _watch(
    settings: FreightSettings,
    options: StatusOptions,
    every: float,
    count: int | None,
    plot: Path | None,
    json_: bool,
) -> StatusReport:
    """Refresh until Ctrl-C or `count` refreshes; returns the last report."""
    from freight.cli.lag_history import LagHistory, check_chart_path
    from freight.overview import collect

    if not every > 0:
        raise ConfigError(f"--watch takes seconds > 0 between refreshes, got {every:g}")
    if plot is not None:
        check_chart_path(plot)
    history = LagHistory()
    report: StatusReport | None = None
    try:
        while True:
            report = collect(settings, options)
            history.add(report)
            if json_:
                sys.stdout.write(json.dumps(report.as_dict(), default=str) + "\n")
                sys.stdout.flush()
            else:
                if console.is_terminal:
                    console.clear()
                stamp = time.strftime("%H:%M:%S")
                console.print(
                    f"[bold]freight status[/] at {stamp}, every {every:g}s "
                    f"(refresh {len(history.times)}; Ctrl-C stops)",
                    highlight=False,
                )
                _render(report)
            if plot is not None:
                history.plot(plot)
            if count is not None and len(history.times) >= count:
                break
            time.sleep(every)
    except KeyboardInterrupt:
        pass
    if report is None:  # interrupted before the first report: nothing to show
        raise KeyboardInterrupt
    if not json_:
        where = f"; lag chart in {plot}" if plot is not None else ""
        console.print(f"[dim]{len(history.times)} refresh(es){where}[/]", highlight=False)
    return report
