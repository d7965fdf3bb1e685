"""The `freight` command: one Typer app with a sub-command group per area.

Errors raised as `FreightError` print one clear line on stderr and exit with the error's documented code
(see README: 1 generic, 2 configuration, 3 service unavailable, 4 dev services, 5 store, 6 serialization,
7 schema, 8 event decode, 9 delivery); tracebacks are for bugs only.
"""

from __future__ import annotations

import sys

import typer

from freight.cli import demo, dev
from freight.cli.output import error
from freight.errors import FreightError

app = typer.Typer(
    name="freight",
    help="Freight: stream large objects through Kafka.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(dev.app, name="dev")
app.registered_commands += demo.app.registered_commands


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `freight` console script."""
    try:
        app(args=argv, prog_name="freight")
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    except FreightError as exc:
        error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        error("interrupted")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())


def _console_main() -> None:
    sys.exit(main())
