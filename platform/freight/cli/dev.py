"""`freight dev up | down | status`: the local Kafka broker and the other development services."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Annotated

import typer

from freight.config import load_settings
from freight.dev import BrokerOptions, DevOptions, ServiceStatus, down, status, up
from freight.errors import ConfigError
from freight.output import console, print_json, print_table

GROUP = "dev"
app = typer.Typer(help="Start, stop and inspect the local development services.", no_args_is_help=True)

StateDir = Annotated[
    Path | None, typer.Option("--state-dir", help="State directory (default: FREIGHT_STATE_DIR or .freight).")
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def _state_dir(value: Path | None) -> Path:
    return value if value is not None else load_settings().state_dir


def _parse_overrides(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value (a server.properties entry), got {pair!r}")
        out[key.strip()] = value.strip()
    return out


def _busy(message: str, quiet: bool) -> AbstractContextManager[object]:
    """A spinner on a terminal, a plain line elsewhere, nothing with --json."""
    if quiet:
        return nullcontext()
    if console.is_terminal:
        return console.status(message)
    console.print(f"[dim]{message}[/]")
    return nullcontext()


def _print(results: list[ServiceStatus], title: str) -> None:
    print_table(
        title,
        ["service", "state", "address", "pid", "detail"],
        [
            (
                r.name,
                r.state,
                r.record.address if r.record else None,
                r.record.pid if r.record else None,
                r.detail,
            )
            for r in results
        ],
    )


@app.command("up")
def up_cmd(
    port: Annotated[int | None, typer.Option(help="Kafka client port (default 9092, or a free one).")] = None,
    controller_port: Annotated[int | None, typer.Option(help="KRaft controller port.")] = None,
    registry_port: Annotated[int | None, typer.Option(help="Schema registry port (default 8081).")] = None,
    s3_port: Annotated[int | None, typer.Option(help="Local S3 endpoint port (default 9000).")] = None,
    service: Annotated[list[str] | None, typer.Option("--service", help="Start only these services.")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Extra broker property key=value.")] = None,
    heap: Annotated[str | None, typer.Option(help="Broker JVM max heap, e.g. 512m.")] = None,
    brokers: Annotated[
        int,
        typer.Option(
            min=1,
            max=5,
            help="Kafka nodes: 3 starts a replicated KRaft cluster (combined nodes, RF 3, ISR 2).",
        ),
    ] = 1,
    state_dir: StateDir = None,
    json_: Json = False,
) -> None:
    """Start the local services (idempotent) and print the environment to export."""
    if brokers > 1 and (port is not None or controller_port is not None):
        raise ConfigError("--port and --controller-port apply to one broker; a cluster picks free ports")
    broker = BrokerOptions(port=port, controller_port=controller_port, overrides=_parse_overrides(set_ or []))
    if heap:
        broker.heap = heap
    opts = DevOptions(
        state_dir=_state_dir(state_dir),
        services=service or None,
        kafka=broker,
        brokers=brokers,
        registry_port=registry_port,
        s3_port=s3_port,
    )
    with _busy("starting local services (the first run downloads the Kafka jars) ...", json_):
        results = up(opts)
    env = {k: v for r in results for k, v in r.env.items()}
    if json_:
        print_json({"services": [r.as_dict() for r in results], "env": env})
        return
    _print(results, "Freight dev services")
    console.print("Export this environment to use them:")
    for key, value in env.items():
        console.print(f"  export {key}={value}", highlight=False, soft_wrap=True)


@app.command("down")
def down_cmd(
    purge: Annotated[bool, typer.Option(help="Also delete the services' data directories.")] = False,
    state_dir: StateDir = None,
    json_: Json = False,
) -> None:
    """Stop what `up` started: SIGTERM, then SIGKILL after a grace period."""
    with _busy("stopping local services ...", json_):
        results = down(_state_dir(state_dir), purge=purge)
    if json_:
        print_json({"services": [r.as_dict() for r in results]})
    elif not results:
        console.print("nothing to stop: no services are recorded in this state directory")
    else:
        _print(results, "Stopped")


@app.command("status")
def status_cmd(state_dir: StateDir = None, json_: Json = False) -> None:
    """Health of the recorded services; exits 3 if any is down or stale."""
    results = status(_state_dir(state_dir))
    if json_:
        print_json({"services": [r.as_dict() for r in results]})
    elif not results:
        console.print("no services recorded: start them with `freight dev up`")
    else:
        _print(results, "Freight dev services")
    if any(r.state != "running" for r in results):
        raise typer.Exit(3)
