"""`freight bench`: the whole benchmark suite, or one scenario module with `freight bench <scenario>`.

With no sub-command it runs every issue-9 scenario against one broker (freight.bench.suite): a table per
scenario, `results.json` and PNG plots in `--out`. Scenario modules in `freight.bench` each define
`register(app: typer.Typer) -> None` to add their own command(s) to this group.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
from contextlib import AbstractContextManager
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
)

if TYPE_CHECKING:
    from freight.config import FreightSettings

GROUP = "bench"
app = typer.Typer(
    help="Benchmarks with baselines measured in the same run; no sub-command: the whole suite.",
    invoke_without_command=True,
)


@app.callback()
def suite(
    ctx: typer.Context,
    quick: Annotated[
        bool, typer.Option("--quick", help="Small sizes, one repetition (under two minutes).")
    ] = False,
    tiny: Annotated[
        bool, typer.Option("--tiny", hidden=True, help="Tiny sizes, for testing the suite.")
    ] = False,
    out: Annotated[Path, typer.Option("--out", help="Results directory (results.json, *.png).")] = Path(
        "bench-results"
    ),
    repetitions: Annotated[
        int | None,
        typer.Option("--repetitions", "-r", min=1, help="Repetitions per figure (default 3; quick 1)."),
    ] = None,
    only: Annotated[
        list[str] | None,
        typer.Option(
            "--only", help="Run only these scenarios: small, bulk, latency, replay, fanout, scaling."
        ),
    ] = None,
    workdir: Annotated[
        Path | None,
        typer.Option("--workdir", help="Where the file stores live during the run (default: /tmp)."),
    ] = None,
    background: Annotated[
        int,
        typer.Option(
            "--background-load",
            min=0,
            help="Busy processes (one core each) running beside the whole run, to measure under load.",
        ),
    ] = 0,
    bootstrap: Bootstrap = None,
    command_config: CommandConfig = None,
    registry: RegistryUrl = None,
    registry_ca: RegistryCa = None,
    registry_cert: RegistryCert = None,
    registry_key: RegistryKey = None,
    json_: Json = False,
) -> None:
    """Every scenario against one broker: small and bulk objects, latency, replay, fan-out, scaling.

    Prints a table per scenario (median, min, max, ratio against the baseline of the same run) and writes
    results.json and PNG plots into --out. Without --bootstrap, an unreachable FREIGHT_KAFKA_BOOTSTRAP makes
    it start a local broker and registry for the run.
    """
    if ctx.invoked_subcommand is not None:
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from freight.bench.suite import MODES, SCENARIOS, SuiteConfig, print_tables, run_suite
    from freight.errors import ConfigError
    from freight.output import err_console, note, print_json

    tiny = tiny or os.environ.get("FREIGHT_BENCH_TINY", "") not in ("", "0")
    mode = "tiny" if tiny else "quick" if quick else "full"
    assert mode in MODES
    cfg = SuiteConfig.for_mode(mode, repetitions)
    if only:
        unknown = [s for s in only if s not in SCENARIOS]
        if unknown:
            raise ConfigError(f"unknown scenario(s) {unknown}; choose from {', '.join(SCENARIOS)}")
        cfg.only = list(only)
    cfg.background_load = background
    interactive = err_console.is_terminal and not json_
    with (
        _services(
            bootstrap, registry, command_config, (registry_ca, registry_cert, registry_key)
        ) as settings,
        Progress(
            TextColumn("[bold]bench"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} scenarios"),
            TimeElapsedColumn(),
            TextColumn("{task.description}"),
            console=err_console,
            disable=not interactive,
        ) as progress,
    ):
        task = progress.add_task("starting", total=len(cfg.only))

        def tick(label: str) -> None:
            progress.update(task, description=label)
            if not interactive:
                note(f"bench: {label}")

        doc = run_suite(
            settings, cfg, out, tick=tick, done=lambda _name: progress.advance(task), workdir=workdir
        )
    if json_:
        print_json(doc)
    else:
        print_tables(doc)
        plots = ", ".join(str(out / p) for p in doc["plots"].values())
        note(f"results: {out / 'results.json'}; plots: {plots}")
    sys.stdout.flush()


def _services(
    bootstrap: str | None,
    registry: str | None,
    command_config: Path | None = None,
    registry_tls: tuple[Path | None, Path | None, Path | None] = (None, None, None),
) -> AbstractContextManager[FreightSettings]:
    """Services given explicitly must answer; otherwise the configured ones, or local ones for the run."""
    from contextlib import nullcontext

    from freight.bench.services import bench_services
    from freight.cli.common import settings_from
    from freight.kafka import KafkaAdmin

    ca, cert, key = registry_tls
    settings = settings_from(
        bootstrap,
        registry,
        command_config=command_config,
        registry_ca=ca,
        registry_cert=cert,
        registry_key=key,
    )
    if bootstrap is None:
        return bench_services(settings)
    KafkaAdmin(settings, timeout=5).ping(5)  # BrokerUnavailableError (exit 3) names `freight dev up`
    return nullcontext(settings)


def _register_scenarios() -> None:
    import freight.bench as bench_pkg

    for info in sorted(pkgutil.iter_modules(bench_pkg.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"freight.bench.{info.name}")
        register = getattr(module, "register", None)
        if callable(register):
            register(app)


_register_scenarios()
