"""The `freight` command: one Typer app assembled from the modules of this package.

Each module `freight.cli.<name>` defines `app` (a `typer.Typer`) and either `GROUP = "<name>"` (mounted as
`freight <name> ...`) or `GROUP = None` (its commands are added at the top level, like `freight demo`).
Modules keep heavy imports (numpy, torch, FastAPI) inside their command functions so `freight --help` stays
fast.

Errors raised as `FreightError` print one clear line on stderr and exit with the error's documented code
(README, "CLI exit codes"); tracebacks are for bugs only.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import click
import typer
from confluent_kafka import KafkaException

from freight.errors import FreightError
from freight.output import error

app = typer.Typer(
    name="freight",
    help="Freight: stream large objects through Kafka.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _show_version(value: bool) -> None:
    if value:
        from freight import __version__

        typer.echo(f"freight {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_show_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Freight: stream large objects through Kafka."""


_SKIP = {"output", "common", "record_format", "raw_records", "offset_reset"}
_mounted = False


def _mount_all() -> None:
    """Mount every command module; done on first use, so importing `freight.output` stays cheap."""
    global _mounted
    if _mounted:
        return
    _mounted = True
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_") or info.name in _SKIP:
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        sub = getattr(module, "app", None)
        if not isinstance(sub, typer.Typer):
            continue
        group = getattr(module, "GROUP", info.name)
        if group is None:
            app.registered_commands += sub.registered_commands
        else:
            app.add_typer(sub, name=group)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code."""
    _mount_all()
    try:
        # Not standalone: click would turn Ctrl-C into "Aborted!" and exit 1 before Freight could say what
        # was done; here every exit path is ours.
        result = app(args=argv, prog_name="freight", standalone_mode=False)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except (KeyboardInterrupt, click.exceptions.Abort):
        error("interrupted")
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except KafkaException as exc:  # raised by a client constructor: a property librdkafka does not know
        error(
            f"Kafka client configuration refused: {str(exc.args[0].str() if exc.args else exc).rstrip('.')}. "
            "Check the properties in FREIGHT_KAFKA_PROPERTIES or FREIGHT_KAFKA_CONFIG_FILE "
            "(librdkafka names, e.g. sasl.username; a Java-only property such as sasl.jaas.config has no "
            "librdkafka equivalent: use sasl.username / sasl.password)"
        )
        return 2
    except FreightError as exc:
        error(str(exc))
        return exc.exit_code
    return result if isinstance(result, int) else 0


def _console_main() -> None:
    sys.exit(main())
