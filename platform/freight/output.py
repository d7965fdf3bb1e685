"""Terminal output shared by the CLI, the demo and the benchmarks: readable tables, JSON for scripts."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

# Not a terminal (CI logs, pipes): a fixed 140 columns instead of rich's 80, so tables stay readable.
console = Console(width=None if sys.stdout.isatty() else 140)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 140)


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def print_json(data: Any) -> None:
    """Machine-readable output on stdout (one JSON document)."""
    sys.stdout.write(json.dumps(data, indent=2, default=_default) + "\n")
    sys.stdout.flush()


def print_table(
    title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]], *, caption: str | None = None
) -> None:
    """A rich table; None cells print as '-'."""
    table = Table(title=title, caption=caption, header_style="bold", title_justify="left")
    for col in columns:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*("-" if c is None else str(c) for c in row))
    console.print(table)


def print_kv(title: str, pairs: Mapping[str, Any]) -> None:
    """A two-column key/value table."""
    print_table(title, ["", ""], [(k, v) for k, v in pairs.items()])


def error(message: str) -> None:
    """Print an error; the message is text, never markup (a schema error's `[...]` must survive)."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


def note(message: str) -> None:
    """Print a dimmed note (text, never markup)."""
    err_console.print(f"[dim]{escape(message)}[/]", highlight=False, soft_wrap=True)
