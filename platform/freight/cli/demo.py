"""`freight demo`: the README's main job, run against local services it starts and stops itself."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from freight.demo import run_demo

GROUP = None
app = typer.Typer()


@app.command("demo")
def demo_cmd(
    state_dir: Annotated[Path, typer.Option(help="Where the demo's services keep their data.")] = Path(
        ".freight/demo"
    ),
    keep_services: Annotated[bool, typer.Option(help="Leave the services it started running.")] = False,
) -> None:
    """Stream numpy arrays through local Kafka + a file store, two groups, a replay, verified; then stop."""
    run_demo(state_dir=state_dir, keep_services=keep_services)
