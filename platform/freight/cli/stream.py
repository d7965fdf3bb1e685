"""`freight produce` and `freight consume`: move files, directories or lines through a stream."""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TransferSpeedColumn,
)

from freight.cli.common import Bootstrap, Json, RegistryUrl, settings_from
from freight.connectors.keys import safe_key_part
from freight.errors import ConfigError
from freight.output import err_console, print_json, print_table

GROUP = None
app = typer.Typer()

StoreDir = Annotated[
    Path | None, typer.Option("--store-dir", help="File store directory (default: FREIGHT_STORE_DIR).")
]
StoreName = Annotated[
    str | None,
    typer.Option(
        "--store",
        help="Name of the store (published for consumers); default: 'local-files' for FREIGHT_STORE_DIR, "
        "else one derived from the directory.",
    ),
]


def _store_name(name: str | None, directory: Path, default_dir: Path) -> str:
    """The store name: given, 'local-files' for the default directory, else one derived from the directory
    (a catalog entry keeps its first location, so two directories must not share a name)."""
    if name:
        return name
    if directory.resolve() == default_dir.resolve():
        return "local-files"
    return f"files-{hashlib.sha256(str(directory.resolve()).encode()).hexdigest()[:12]}"


def _inputs(paths: list[Path]) -> Iterator[tuple[Path, str]]:
    """(file, name to record) per input: a file's own name, or its path relative to the directory given."""
    for path in paths:
        if path.is_dir():
            for p in sorted(p for p in path.rglob("*") if p.is_file()):
                yield p, p.relative_to(path).as_posix()
        elif path.is_file():
            yield path, path.name
        else:
            raise ConfigError(f"{path} is neither a file nor a directory")


def _mapped(path: Path) -> memoryview:
    """The file's bytes, memory-mapped: a large file goes to the store without being read into memory whole.

    The map is unmapped when the last view of it goes (the producer may still hold one until it is done).
    """
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            return memoryview(b"")
        return memoryview(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ))


def _safe_relative(name: str) -> Path | None:
    """`name` as a relative path with no '..', absolute or empty part; None if nothing safe is left."""
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".", "..")]
    return Path(*parts) if parts else None


def _free_path(path: Path) -> Path:
    """`path`, or `path` with -1, -2, ... before its suffix when that file exists already."""
    if not path.exists():
        return path
    for n in range(1, 1_000_000):
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
        if not candidate.exists():
            return candidate
    raise ConfigError(f"too many files named like {path}")


@app.command("produce")
def produce(
    topic: str,
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Files or directories; none: lines of stdin.")
    ] = None,
    stream: Annotated[str, typer.Option("--stream", "-s", help="Stream id (the Kafka key).")] = "default",
    store: StoreName = None,
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
    if evict not in ("watermark", "on-resolve", "retention", "never"):
        raise ConfigError(f"--evict must be watermark, on-resolve, retention or never, not {evict!r}")
    files = list(_inputs(paths)) if paths else None
    directory = store_dir or settings.store_dir
    store = _store_name(store, directory, settings.store_dir)
    the_store = Store(store, FileConnector(directory))
    sent = 0
    with (
        StreamProducer(
            {None: the_store}, settings=settings, evict=evict, create_topics=partitions
        ) as producer,
        Progress(
            TextColumn("[bold]produce"),
            BarColumn(),
            DownloadColumn() if files is not None else MofNCompleteColumn(),
            TransferSpeedColumn(),
            console=err_console,
            disable=json_ or not sys.stderr.isatty(),
        ) as progress,
    ):
        interrupted = False
        try:
            if files is not None:
                task = progress.add_task("bytes", total=sum(p.stat().st_size for p, _ in files))
                for path, name in files:
                    data = _mapped(path)
                    size = data.nbytes
                    producer.send(topic, data, stream=stream, metadata={"filename": name}).result()
                    del data
                    sent += 1
                    progress.update(task, advance=size)
            else:
                task = progress.add_task("lines", total=None)
                for line in sys.stdin.buffer:
                    producer.send(topic, line.rstrip(b"\n"), stream=stream)
                    sent += 1
                    progress.update(task, advance=1)
        except KeyboardInterrupt:
            interrupted = True  # what was sent is flushed and the stream ended, as documented
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
        print_json(summary | {"interrupted": interrupted})
    else:
        print_table("Produced", list(summary), [list(summary.values())])
    if interrupted:
        err_console.print(
            f"interrupted: {sent} object(s) were sent and acknowledged"
            + (f", then END_OF_STREAM for {stream!r}" if end else ""),
            markup=False,
            highlight=False,
        )
        raise typer.Exit(130)


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
    follow: Annotated[
        bool, typer.Option("--follow", help="Keep waiting for new events (no idle exit); Ctrl-C stops.")
    ] = False,
    bootstrap: Bootstrap = None,
    registry: RegistryUrl = None,
    json_: Json = False,
) -> None:
    """Read objects to a directory (or stdout), with --json metadata lines for scripts.

    Start position: the group's committed offset, else the EARLIEST offset (unlike kafka-console-consumer,
    which starts at the latest); --offset / --timestamp / --from-beginning choose another one.
    """
    from freight.stream import StreamConsumer

    settings = settings_from(bootstrap, registry)
    if sum(x is not None and x is not False for x in (from_beginning or None, offset, timestamp)) > 1:
        raise ConfigError("give at most one of --from-beginning, --offset, --timestamp")
    if max_ is not None and max_ < 0:
        raise ConfigError(f"--max must be 0 or more, got {max_}")
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    counts = [0, 0]
    if max_ == 0:
        err_console.print(f"consumed 0 object(s) from {topic} (--max 0)", markup=False, highlight=False)
        return
    wait = None if follow else idle_timeout
    with StreamConsumer(topic, group, settings=settings, idle_timeout=wait) as consumer:
        if from_beginning:
            consumer.seek("beginning")
        elif offset is not None:
            consumer.seek(offset=offset)
        elif timestamp is not None:
            consumer.seek(timestamp=_timestamp_ms(timestamp))
        interrupted = False
        try:
            _consume_into(consumer, out, json_, max_, counts)
        except KeyboardInterrupt:
            interrupted = True  # what was handed out is committed below; the rest is read again next time
        count, renamed = counts
        consumer.commit()
    if not json_ or interrupted:
        note = f"; {renamed} written under a new name (-N suffix) since the name was taken" if renamed else ""
        head = "interrupted: " if interrupted else ""
        err_console.print(
            f"{head}consumed {count} object(s) from {topic}{note}" + (" (committed)" if group else ""),
            markup=False,
            highlight=False,
        )
    if interrupted:
        raise typer.Exit(130)


def _consume_into(consumer: Any, out: Path | None, json_: bool, max_: int | None, counts: list[int]) -> None:
    """Hand out objects to --out, --json lines or stdout; counts = [objects, renamed] as it goes."""
    for meta, obj in consumer.iter_objects_with_metadata():
        data = _to_bytes(obj)
        if out is not None:
            # The recorded name is untrusted (anyone may write the topic): keep it under --out, and never
            # overwrite a file already there (a suffix is added and counted).
            default = f"{safe_key_part(meta.stream)}-{meta.sequence:08d}.bin"
            rel = _safe_relative(meta.metadata.get("filename") or "") or Path(default)
            target = _free_path(out / rel)
            counts[1] += target != out / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        if json_:
            record = meta.to_dict() | {"bytes": len(data)}
            sys.stdout.write(json.dumps(record, default=str) + "\n")
            sys.stdout.flush()  # a reader of a pipe sees each object as it arrives (--follow)
        elif out is None:
            sys.stdout.buffer.write(data + b"\n")
            sys.stdout.buffer.flush()
        counts[0] += 1
        if max_ is not None and counts[0] >= max_:
            break
