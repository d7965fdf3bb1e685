"""`freight bench <scenario>`: benchmarks that print ratios against their baselines, measured in one run.

Scenario modules live in `freight.bench`; each defines `register(app: typer.Typer) -> None` that adds its
command(s) to this group. `freight bench` with no scenario lists them.
"""

from __future__ import annotations

import importlib
import pkgutil

import typer

GROUP = "bench"
app = typer.Typer(help="Benchmarks with baselines measured in the same run.", no_args_is_help=True)


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
