"""`freight produce` and `freight consume`: move files, directories or lines through a stream."""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
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

from freight.cli.common import (
    Bootstrap,
    CommandConfig,
    Json,
    RegistryCa,
    RegistryCert,
    RegistryKey,
    RegistryUrl,
    settings_from,
)
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
    key_separator: Annotated[
        str | None,
        typer.Option(
            "--key-separator",
            help="Lines are KEY<SEP>VALUE: the key is the line's stream (like kafka-console-producer's "
            "parse.key=true key.separator=SEP); each stream gets its END_OF_STREAM.",
        ),
    ] = None,
    bootstrap: Bootstrap = None,
    command_config: CommandConfig = None,
    registry: RegistryUrl = None,
    registry_ca: RegistryCa = None,
    registry_cert: RegistryCert = None,
    registry_key: RegistryKey = None,
    json_: Json = False,
) -> None:
    """Send each file (or each stdin line) as one object of a stream, with a progress bar."""
    from freight.connectors.file import FileConnector
    from freight.stores import Store
    from freight.stream import StreamProducer

    settings = settings_from(
        bootstrap,
        registry,
        command_config=command_config,
        registry_ca=registry_ca,
        registry_cert=registry_cert,
        registry_key=registry_key,
    )
    if evict not in ("watermark", "on-resolve", "retention", "never"):
        raise ConfigError(f"--evict must be watermark, on-resolve, retention or never, not {evict!r}")
    if key_separator is not None and paths:
        raise ConfigError(
            "--key-separator splits stdin lines; files are sent whole (use --stream for their key)"
        )
    if key_separator == "":
        raise ConfigError("--key-separator must not be empty (e.g. --key-separator ':')")
    files = list(_inputs(paths)) if paths else None
    directory = store_dir or settings.store_dir
    store = _store_name(store, directory, settings.store_dir)
    the_store = Store(store, FileConnector(directory))
    sent = 0
    streams: dict[str, None] = {stream: None} if key_separator is None else {}
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
                for number, line in enumerate(sys.stdin.buffer, 1):
                    key, value = _split_key(line.rstrip(b"\n"), key_separator, number, stream)
                    streams.setdefault(key)
                    producer.send(topic, value, stream=key)
                    sent += 1
                    progress.update(task, advance=1)
        except KeyboardInterrupt:
            interrupted = True  # what was sent is flushed and the stream ended, as documented
        if end:
            for name in streams:
                producer.end_stream(topic, name)
        producer.flush()
        stats = producer.stats
    summary = {
        "topic": topic,
        "stream": stream if key_separator is None else ",".join(streams),
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
            + (f", then END_OF_STREAM for {', '.join(map(repr, streams))}" if end and streams else ""),
            markup=False,
            highlight=False,
        )
        raise typer.Exit(130)


def _split_key(line: bytes, separator: str | None, number: int, stream: str) -> tuple[str, bytes]:
    """(stream, value) of one stdin line: `stream` for every line, or the key before `separator`.

    A line without the separator is a ConfigError naming the line (kafka-console-producer refuses it too).
    """
    if separator is None:
        return stream, line
    key, sep, value = line.partition(separator.encode())
    if not sep:
        raise ConfigError(
            f"line {number} has no key separator {separator!r}: write KEY{separator}VALUE on every line, "
            "or drop --key-separator to send lines whole"
        )
    try:
        return key.decode(), value
    except UnicodeDecodeError as exc:
        raise ConfigError(f"line {number}: the key before {separator!r} is not UTF-8 text") from exc


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


ON_BAD_EVENT_HELP = (
    "A record that is not a Freight event (written by another tool, garbage, a tombstone): "
    "raise (stop, exit 8), "
    "skip (count it and read on) or dead-letter (copy it to --dead-letter-topic and read on)."
)


@app.command("consume")
def consume(
    topic: str,
    group: Annotated[
        str | None, typer.Option("--group", "-g", help="Consumer group; none: read, no commits.")
    ] = None,
    from_beginning: Annotated[
        bool,
        typer.Option(
            "--from-beginning", help="Start at the log start (already the default without a group)."
        ),
    ] = False,
    offset: Annotated[
        int | None, typer.Option(help="Start at this offset (in every partition, or in --partition's).")
    ] = None,
    timestamp: Annotated[
        str | None, typer.Option(help="Start at the first event at/after this ISO time.")
    ] = None,
    partition: Annotated[
        int | None,
        typer.Option(
            "--partition", min=0, help="Read only this partition (no --group; with --offset: start there)."
        ),
    ] = None,
    max_: Annotated[int | None, typer.Option("--max", help="Stop after this many objects.")] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write objects into this directory.")
    ] = None,
    idle_timeout: Annotated[float, typer.Option(help="Stop after this many seconds without events.")] = 5.0,
    follow: Annotated[
        bool, typer.Option("--follow", help="Keep waiting for new events (no idle exit); Ctrl-C stops.")
    ] = False,
    on_bad_event: Annotated[str, typer.Option("--on-bad-event", help=ON_BAD_EVENT_HELP)] = "raise",
    dead_letter_topic: Annotated[
        str | None,
        typer.Option(
            "--dead-letter-topic", help="Where --on-bad-event dead-letter copies (default: TOPIC.dlq)."
        ),
    ] = None,
    skip_evicted: Annotated[
        bool,
        typer.Option("--skip-evicted", help="Count and skip objects already evicted from their store."),
    ] = False,
    raw: Annotated[
        bool,
        typer.Option(
            "--raw", help="Print the records as Kafka has them (offset, key, headers, value), no decoding."
        ),
    ] = False,
    raw_encoding: Annotated[
        str | None,
        typer.Option(
            "--raw-encoding",
            help="How --raw (and -f) show bytes: repr, hex, base64 or text "
            "(default: repr; base64 with --json).",
        ),
    ] = None,
    format_: Annotated[
        str | None,
        typer.Option(
            "--format",
            "-f",
            help="kcat-style line per record: %t topic, %p partition, %o offset, %k key (the stream), "
            "%s value, %S value size, %K key size, %T timestamp ms, %h headers, %% a %; escapes \\n \\t.",
        ),
    ] = None,
    bootstrap: Bootstrap = None,
    command_config: CommandConfig = None,
    registry: RegistryUrl = None,
    registry_ca: RegistryCa = None,
    registry_cert: RegistryCert = None,
    registry_key: RegistryKey = None,
    json_: Json = False,
) -> None:
    """Read objects to a directory (or stdout), with --json metadata lines for scripts.

    Start position: the group's committed offset, else the EARLIEST offset (unlike kafka-console-consumer,
    which starts at the latest); --offset / --timestamp / --from-beginning choose another one.
    """
    from freight.cli.record_format import RecordFormat, check_encoding
    from freight.stream.decode import BAD_EVENT_POLICIES

    settings = settings_from(
        bootstrap,
        registry,
        command_config=command_config,
        registry_ca=registry_ca,
        registry_cert=registry_cert,
        registry_key=registry_key,
    )
    if sum(x is not None and x is not False for x in (from_beginning or None, offset, timestamp)) > 1:
        raise ConfigError("give at most one of --from-beginning, --offset, --timestamp")
    if max_ is not None and max_ < 0:
        raise ConfigError(f"--max must be 0 or more, got {max_}")
    if on_bad_event not in BAD_EVENT_POLICIES:
        raise ConfigError(f"--on-bad-event must be raise, skip or dead-letter, not {on_bad_event!r}")
    if dead_letter_topic is not None and on_bad_event != "dead-letter":
        raise ConfigError("--dead-letter-topic goes with --on-bad-event dead-letter")
    if partition is not None and group is not None:
        raise ConfigError(
            "--partition reads one partition without a consumer group (as kafka-console-consumer does); "
            "drop --group, or drop --partition to read the group's assignment"
        )
    if raw and (group is not None or out is not None or on_bad_event != "raise" or skip_evicted):
        raise ConfigError(
            "--raw only looks at records (no group, no commits, nothing decoded): "
            "it does not combine with --group, --out, --on-bad-event or --skip-evicted"
        )
    if out is not None and format_ is not None:
        raise ConfigError("--format prints records to stdout; it does not combine with --out")
    if json_ and format_ is not None:
        raise ConfigError("give either --json or --format, not both")
    encoding = check_encoding(raw_encoding) if raw_encoding is not None else None
    if encoding is not None and not (raw or format_):
        raise ConfigError("--raw-encoding applies to --raw and --format output")
    fmt = RecordFormat(format_, encoding) if format_ is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    if max_ == 0:
        err_console.print(f"consumed 0 object(s) from {topic} (--max 0)", markup=False, highlight=False)
        return
    wait = None if follow else idle_timeout
    stamp = _timestamp_ms(timestamp) if timestamp is not None else None
    if raw:
        _consume_raw(topic, settings, partition, offset, stamp, wait, max_, json_, fmt, encoding)
        return
    _consume_objects(
        topic,
        group,
        settings,
        _Start(from_beginning, offset, stamp, partition),
        _Output(out, json_, fmt, max_),
        wait=wait,
        on_bad_event=on_bad_event,
        dead_letter_topic=dead_letter_topic,
        skip_evicted=skip_evicted,
    )


@dataclass(frozen=True)
class _Start:
    """Where `consume` starts: the log start, an offset or a time, in every partition or one."""

    from_beginning: bool
    offset: int | None
    timestamp_ms: int | None
    partition: int | None


@dataclass(frozen=True)
class _Output:
    """Where `consume` puts objects: --out, --json lines, a --format line, or the bytes on stdout."""

    out: Path | None
    json_: bool
    fmt: Any
    max_: int | None


def _consume_raw(
    topic: str,
    settings: Any,
    partition: int | None,
    offset: int | None,
    stamp: int | None,
    wait: float | None,
    max_: int | None,
    json_: bool,
    fmt: Any,
    encoding: Any,
) -> None:
    """`consume --raw`: every record as Kafka has it, one line (or JSON document) each."""
    from freight.cli.raw_records import read_raw, start_offsets
    from freight.cli.record_format import RecordFormat, row_dict
    from freight.kafka import KafkaAdmin

    starts = start_offsets(
        KafkaAdmin(settings), topic, partition=partition, offset=offset, timestamp_ms=stamp
    )
    line = fmt or RecordFormat("%p\t%o\t%T\tkey=%k\theaders=%h\tvalue=%s", encoding or "repr")
    count = 0
    interrupted = False
    try:
        for row in read_raw(settings, topic, starts, idle_timeout=wait):
            if json_:
                sys.stdout.write(json.dumps(row_dict(row, encoding or "base64")) + "\n")
                sys.stdout.flush()
            else:
                sys.stdout.buffer.write(line.render(row))
                sys.stdout.buffer.flush()
            count += 1
            if max_ is not None and count >= max_:
                break
    except KeyboardInterrupt:
        interrupted = True
    err_console.print(
        f"{'interrupted: ' if interrupted else ''}read {count} raw record(s) from {topic}",
        markup=False,
        highlight=False,
    )
    if interrupted:
        raise typer.Exit(130)


def _consume_objects(
    topic: str,
    group: str | None,
    settings: Any,
    start: _Start,
    output: _Output,
    *,
    wait: float | None,
    on_bad_event: Any,
    dead_letter_topic: str | None,
    skip_evicted: bool,
) -> None:
    """`consume` of Freight objects: decode, resolve, hand out, commit what was handed out."""
    from freight.errors import EventDecodeError, ObjectEvictedError
    from freight.stream import StreamConsumer

    counts = _Counts()
    with StreamConsumer(
        topic,
        group,
        settings=settings,
        idle_timeout=wait,
        on_bad_event=on_bad_event,
        dead_letter_topic=dead_letter_topic,
        skip_evicted=skip_evicted,
    ) as consumer:
        _seek(consumer, topic, start)
        interrupted = False
        try:
            _consume_into(consumer, output, start.partition, skip_evicted, counts)
        except KeyboardInterrupt:
            interrupted = True  # what was handed out is committed below; the rest is read again next time
        except EventDecodeError as exc:
            raise EventDecodeError(
                f"{str(exc).split(' The consumer moves')[0]}: not a Freight event. Rerun with "
                "--on-bad-event skip (or dead-letter) to read past it, or look at it with "
                f"`freight consume {topic} --raw`"
            ) from exc
        except ObjectEvictedError as exc:
            raise ObjectEvictedError(
                f"{exc}; rerun with --skip-evicted to read past evicted objects"
            ) from exc
        consumer.commit()
        stats = consumer.stats
    if not output.json_ or interrupted:
        notes = []
        if counts.renamed:
            notes.append(f"{counts.renamed} written under a new name (-N suffix) since the name was taken")
        if stats.bad_events:
            verb = "dead-lettered" if on_bad_event == "dead-letter" else "skipped"
            notes.append(f"{stats.bad_events} record(s) that are not Freight events {verb}")
        if stats.evicted_skipped:
            notes.append(f"{stats.evicted_skipped} evicted object(s) skipped")
        head = "interrupted: " if interrupted else ""
        err_console.print(
            f"{head}consumed {counts.objects} object(s) from {topic}"
            + "".join(f"; {n}" for n in notes)
            + (" (committed)" if group else ""),
            markup=False,
            highlight=False,
        )
    if interrupted:
        raise typer.Exit(130)


def _seek(consumer: Any, topic: str, start: _Start) -> None:
    """Move to the start position; with --partition, every other partition goes to its end."""
    if start.partition is not None:
        from freight.cli.raw_records import check_partition

        parts = consumer.admin.partitions(topic)
        check_partition(consumer.admin, topic, start.partition)
        for p in parts:
            if p != start.partition:
                consumer.seek("end", topic=topic, partition=p)
    where: dict[str, Any] = (
        {"topic": topic, "partition": start.partition} if start.partition is not None else {}
    )
    if start.from_beginning:
        consumer.seek("beginning", **where)
    elif start.offset is not None:
        consumer.seek(offset=start.offset, **where)
    elif start.timestamp_ms is not None:
        consumer.seek(timestamp=start.timestamp_ms, **where)


@dataclass
class _Counts:
    objects: int = 0
    renamed: int = 0


def _consume_into(
    consumer: Any, output: _Output, partition: int | None, skip_evicted: bool, counts: _Counts
) -> None:
    """Hand out objects to --out, --json lines, --format lines or stdout, counting as it goes."""
    from freight.cli.record_format import Row, metadata_headers
    from freight.errors import ObjectEvictedError
    from freight.stream.proxy import extract

    while True:
        record = consumer.next_record(include_end=False)
        if record is None:
            return
        if partition is not None and record.partition != partition:
            continue  # written to another partition after the start (--follow)
        meta = record.metadata
        try:
            data = _to_bytes(extract(record.proxy))
        except ObjectEvictedError:
            if not skip_evicted:
                raise
            consumer.stats.evicted_skipped += 1
            continue
        if output.out is not None:
            # The recorded name is untrusted (anyone may write the topic): keep it under --out, and never
            # overwrite a file already there (a suffix is added and counted).
            default = f"{safe_key_part(meta.stream)}-{meta.sequence:08d}.bin"
            rel = _safe_relative(meta.metadata.get("filename") or "") or Path(default)
            target = _free_path(output.out / rel)
            counts.renamed += target != output.out / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        if output.json_:
            doc = meta.to_dict() | {"bytes": len(data)}
            sys.stdout.write(json.dumps(doc, default=str) + "\n")
            sys.stdout.flush()  # a reader of a pipe sees each object as it arrives (--follow)
        elif output.fmt is not None:
            row = Row(
                topic=meta.topic,
                partition=meta.partition,
                offset=meta.offset,
                timestamp=meta.timestamp,
                key=meta.stream.encode(),
                value=data,
                headers=metadata_headers(meta.metadata),
            )
            sys.stdout.buffer.write(output.fmt.render(row))
            sys.stdout.buffer.flush()
        elif output.out is None:
            sys.stdout.buffer.write(data + b"\n")
            sys.stdout.buffer.flush()
        counts.objects += 1
        if output.max_ is not None and counts.objects >= output.max_:
            return
