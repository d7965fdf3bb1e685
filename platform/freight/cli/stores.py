"""`freight stores ls | show | cleanup`: look into a store from the command line.

A store is named by its connector kind and options, as in a store config: `freight stores ls file -o
root=/data/freight`. Credentials come from the environment, never from options.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from freight.errors import ConfigError
from freight.output import console, print_json, print_kv, print_table

GROUP = "stores"
app = typer.Typer(help="List, inspect and clean up stored objects.", no_args_is_help=True)

Kind = Annotated[str, typer.Argument(help="Connector kind: file, s3, memory, tensor.")]
Options = Annotated[
    list[str] | None,
    typer.Option("--option", "-o", help="Connector option key=value (JSON values allowed); repeatable."),
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def _options(pairs: list[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--option expects key=value, got {pair!r}")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


@app.command("ls")
def ls_cmd(
    kind: Kind,
    option: Options = None,
    prefix: Annotated[str, typer.Option(help="Only keys starting with this.")] = "",
    limit: Annotated[int, typer.Option(min=1, help="At most this many objects.")] = 1000,
    json_: Json = False,
) -> None:
    """List the objects of a store (key, size, last modification)."""
    from freight.stores import build_connector

    connector = build_connector(kind, _options(option))
    busy = console.status(f"listing the {kind} store ...") if console.is_terminal and not json_ else None
    if busy is not None:
        busy.start()
    try:
        rows = []
        for info in connector.list(prefix):
            rows.append(info)
            if len(rows) >= limit:
                break
    finally:
        if busy is not None:
            busy.stop()
        connector.close()
    if json_:
        print_json([{"key": i.key, "size": i.size, "modified": i.modified} for i in rows])
        return
    print_table(
        f"{kind} store",
        ["key", "size", "modified"],
        [(i.key, f"{i.size:,}", datetime.fromtimestamp(i.modified, UTC).isoformat()) for i in rows],
        caption=f"{len(rows)} object(s)" + (" (limit reached)" if len(rows) >= limit else ""),
    )


@app.command("show")
def show_cmd(
    kind: Kind,
    key: Annotated[str, typer.Argument(help="Object key.")],
    option: Options = None,
    json_: Json = False,
) -> None:
    """Read one object's header and verify its checksum (IntegrityError, exit 5, if it is corrupt)."""
    from freight.stores import Store, build_connector
    from freight.stores.framing import decode_header

    connector = build_connector(kind, _options(option))
    store = Store("cli", connector, checksum=None)
    try:
        raw = connector.get(key)
        frame = decode_header(raw, f"object {key!r}")
        store.get(key)  # verifies the payload against the header's checksum
    finally:
        store.close()
    desc = frame.descriptor
    if json_:
        print_json(
            {
                "key": key,
                "serializer": frame.serializer,
                "size": frame.total,
                "header_bytes": frame.header_len,
                "payload_bytes": frame.payload_len,
                "checksum": frame.checksum,
                "verified": True,
                "dtype": desc.dtype if desc else None,
                "shape": list(desc.shape) if desc else None,
                "device": desc.device if desc else None,
            }
        )
        return
    print_kv(
        f"object {key}",
        {
            "serializer": frame.serializer,
            "size": f"{frame.total:,} bytes ({frame.header_len} header + {frame.payload_len:,} payload)",
            "checksum": f"{frame.checksum} (verified)" if frame.checksum else "none",
            "dtype": desc.dtype if desc else None,
            "shape": list(desc.shape) if desc else None,
            "device": desc.device if desc else None,
        },
    )


@app.command("cleanup")
def cleanup_cmd(
    root: Annotated[
        Path | None, typer.Option(help="File store directory: remove dead writers' temp files.")
    ] = None,
    older_than: Annotated[
        float, typer.Option(help="Also remove temp files older than this (seconds).")
    ] = 3600,
    shm: Annotated[
        bool, typer.Option("--shm", help="Remove shared memory of dead tensor-store owners.")
    ] = False,
    json_: Json = False,
) -> None:
    """Remove what crashed writers left: partial temp files, shared-memory segments."""
    if root is None and not shm:
        raise ConfigError("nothing to clean: give --root DIR (file store) and/or --shm (tensor stores)")
    result: dict[str, int] = {}
    if root is not None:
        from freight.connectors import FileConnector

        result["temp_files_removed"] = FileConnector(root).cleanup_temp(older_than)
    if shm:
        from freight.connectors import shm as shared

        result["segments_removed"] = shared.sweep_stale()
    if json_:
        print_json(result)
    else:
        print_kv("cleanup", result)
