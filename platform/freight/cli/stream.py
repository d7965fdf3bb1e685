"""`freight produce` and `freight consume`: move files, directories or lines through a stream."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TransferSpeedColumn

from freight.cli.common import Bootstrap, Json, RegistryUrl, settings_from
from freight.errors import ConfigError
from freight.output import err_console, print_json, print_table

GROUP = None
app = typer.Typer()

StoreDir = Annotated[
    Path | None, typer.Option("--store-dir", help="File store directory (default: FREIGHT_STORE_DIR).")
]
StoreName = Annotated[str, typer.Option("--store", help="Name of the store (published for consumers).")]


def _inputs(paths: list[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file())
        elif path.is_file():
            yield path
        else:
            raise ConfigError(f"{path} is neither a file nor a directory")


@app.command("produce")
def produce(
    topic: str,
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Files or directories; none: lines of stdin.")
    ] = None,
    stream: Annotated[str, typer.Option("--stream", "-s", help="Stream id (the Kafka key).")] = "default",
    store: StoreName = "local-files",
    store_dir: StoreDir = None,
    evict: Annotated[str, typer.Option(help="watermark | on-resolve | retention | never")] = "watermark",
    partitions: Annotated[int, typer.Option(help="Partitions if the topic must be created.")] = 1,
    end: Annotated[bool, typer.Option("--end/--no-end", help="Send END_OF_STREAM at the end.")] = True,
    bootstrap: Bootstrap = None,
    registry: RegistryUrl = None,
    json_: Json = False,
) -> None:
    """Send each file (or each stdin line) as one object of a stream, with a progress bar."""
    from freight.connectors.file import FileConnector
    from freight.stores import Store
    from freight.stream import StreamProducer

    settings = settings_from(bootstrap, registry)
    files = list(_inputs(paths)) if paths else None
    the_store = Store(store, FileConnector(store_dir or settings.store_dir))
    sent = 0
    with (
        StreamProducer(
            {None: the_store}, settings=settings, evict=evict, create_topics=partitions
        ) as producer,
        Progress(
            TextColumn("[bold]produce"),
            BarColumn(),
            MofNCompleteColumn(),
            TransferSpeedColumn(),
            console=err_console,
            disable=json_ or not sys.stderr.isatty(),
        ) as progress,
    ):
        if files is not None:
            task = progress.add_task("files", total=len(files))
            for path in files:
                producer.send(topic, path.read_bytes(), stream=stream, metadata={"filename": path.name})
                sent += 1
                progress.update(task, advance=1)
        else:
            task = progress.add_task("lines", total=None)
            for line in sys.stdin.buffer:
                producer.send(topic, line.rstrip(b"\n"), stream=stream)
                sent += 1
                progress.update(task, advance=1)
        if end:
            producer.end_stream(topic, stream)
        producer.flush()
        stats = producer.stats
    summary = {
        "topic": topic,
        "stream": stream,
        "objects": sent,
        "inline": stats.inline_objects,
        "stored": stats.objects - stats.inline_objects,
        "bulk_bytes": stats.bulk_bytes,
        "store": store,
    }
    if json_:
        print_json(summary)
    else:
        print_table("Produced", list(summary), [list(summary.values())])


def _timestamp_ms(text: str) -> int:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ConfigError(
            f"--timestamp expects ISO 8601 such as 2026-01-31T12:00:00+00:00, got {text!r}"
        ) from exc
    return int((moment if moment.tzinfo else moment.astimezone()).timestamp() * 1000)


def _to_bytes(obj: Any) -> bytes:
    if isinstance(obj, bytes | bytearray | memoryview):
        return bytes(obj)
    if hasattr(obj, "tobytes"):
        return bytes(obj.tobytes())
    return json.dumps(obj, default=str).encode()


@app.command("consume")
def consume(
    topic: str,
    group: Annotated[
        str | None, typer.Option("--group", "-g", help="Consumer group; none: read, no commits.")
    ] = None,
    from_beginning: Annotated[bool, typer.Option("--from-beginning", help="Start at the log start.")] = False,
    offset: Annotated[int | None, typer.Option(help="Start at this offset (every partition).")] = None,
    timestamp: Annotated[
        str | None, typer.Option(help="Start at the first event at/after this ISO time.")
    ] = None,
    max_: Annotated[int | None, typer.Option("--max", help="Stop after this many objects.")] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write objects into this directory.")
    ] = None,
    idle_timeout: Annotated[float, typer.Option(help="Stop after this many seconds without events.")] = 5.0,
    bootstrap: Bootstrap = None,
    registry: RegistryUrl = None,
    json_: Json = False,
) -> None:
    """Read objects to a directory (or stdout), with --json metadata lines for scripts."""
    from freight.stream import StreamConsumer

    settings = settings_from(bootstrap, registry)
    if sum(x is not None and x is not False for x in (from_beginning or None, offset, timestamp)) > 1:
        raise ConfigError("give at most one of --from-beginning, --offset, --timestamp")
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    count = 0
    with StreamConsumer(topic, group, settings=settings, idle_timeout=idle_timeout) as consumer:
        if from_beginning:
            consumer.seek("beginning")
        elif offset is not None:
            consumer.seek(offset=offset)
        elif timestamp is not None:
            consumer.seek(timestamp=_timestamp_ms(timestamp))
        for meta, obj in consumer.iter_objects_with_metadata():
            data = _to_bytes(obj)
            if out is not None:
                name = meta.metadata.get("filename") or f"{meta.stream}-{meta.sequence:08d}.bin"
                (out / Path(name).name).write_bytes(data)
            if json_:
                record = meta.to_dict() | {"bytes": len(data)}
                sys.stdout.write(json.dumps(record, default=str) + "\n")
            elif out is None:
                sys.stdout.buffer.write(data + b"\n")
            count += 1
            if max_ is not None and count >= max_:
                break
        consumer.commit()
    if not json_:
        err_console.print(f"[dim]consumed {count} object(s) from {topic}[/]", highlight=False)
