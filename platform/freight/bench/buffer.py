"""`freight bench buffer`: chunks per second of every chunk policy against plain list slicing.

Pure logic, no Kafka: the same pre-built items go through a `StreamBuffer` (put, has_chunk_ready, pop_chunk,
END_OF_STREAM) and, as the baseline, through list slicing that produces the very same chunk boundaries. The
difference, divided by the number of chunks, is the buffer's added cost per chunk. Items are 128-byte and
1 MiB numpy views over one preallocated block, so the figures measure the buffer, not allocation (the buffer
never copies values: a chunk references them). A last scenario feeds 16 interleaved streams through
`PartitionBuffers` and computes a commit point (offset + resume metadata) after every chunk, as the Kafka
driver will. Timings are printed and written to JSON, never asserted.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from freight.bench._common import Measurement, repeat, report, timed, with_ratios

SIZES = {"128B": 128, "1MiB": 1 << 20}
CHUNK = 64  # items per chunk (window size) in every scenario


def _items(n: int, item_bytes: int, streams: int = 1) -> list[Any]:
    """n BufferItems over one preallocated block (1 MiB items reuse 64 rows: views, no copies)."""
    import numpy as np

    from freight.buffer import BufferItem

    rows = min(n, max(1, (64 << 20) // item_bytes))
    block = np.zeros((rows, item_bytes), dtype=np.uint8)
    out = []
    for i in range(n):
        seq, stream = divmod(i, streams)
        out.append(
            BufferItem(
                value=block[i % rows],
                sequence=seq,
                partition=0,
                offset=i,
                nbytes=item_bytes,
                timestamp=float(seq // CHUNK),  # sessions of CHUNK items, 1 s apart
                store="bench",
                key=f"{stream}/{seq}",
            )
        )
    return out


def _policies(item_bytes: int) -> dict[str, Any]:
    from freight.buffer import Bytes, Count, LeftContext, Ramp, SessionGap, SlidingWindow, Time

    return {
        f"Count({CHUNK})": Count(CHUNK),
        f"SlidingWindow({CHUNK},16)": SlidingWindow(CHUNK, 16),
        f"LeftContext({CHUNK - 16},16)": LeftContext(CHUNK - 16, 16),
        f"Ramp(8,16,2,{CHUNK})": Ramp(8, 16, 2.0, CHUNK),
        f"Bytes({CHUNK}x item)": Bytes(CHUNK * item_bytes),
        "SessionGap(0.5)": SessionGap(0.5),
        f"Time(50ms,{CHUNK})": Time(0.05, CHUNK),
    }


def _through_buffer(policy: Any, items: list[Any]) -> list[Any]:
    from freight.buffer import StreamBuffer

    buf = StreamBuffer("bench", policy)
    put, ready, pop = buf.put, buf.has_chunk_ready, buf.pop_chunk
    chunks = []
    for item in items:
        put(item)
        while ready():
            chunks.append(pop())
    buf.signal_done(len(items))
    while ready():
        chunks.append(pop())
    return chunks


def _through_partition(policy: Any, items: list[Any], streams: int) -> int:
    from freight.buffer import PartitionBuffers

    pb = PartitionBuffers("bench", 0, policy, metadata_limit=1 << 20)
    count = 0
    for item in items:
        pb.put(f"s{item.key.split('/', 1)[0]}", item)
        for _chunk in pb.drain():
            count += 1
            pb.commit_point()
    ends = len(items)
    for s in range(streams):
        pb.end(f"s{s}", len(items) // streams, ends + s)
    for _chunk in pb.drain():
        count += 1
        pb.commit_point()
    return count


def _slicer(spans: list[tuple[int, int]], values: list[Any]) -> Callable[[], object]:
    def run() -> object:
        return [values[a:b] for a, b in spans]

    return run


def _scenario(
    rows: list[Measurement],
    name: str,
    n_chunks: int,
    fn: Callable[[], object],
    base: Callable[[], object],
    reps: int,
) -> None:
    t_buf = repeat(lambda: timed(fn), reps)
    t_base = repeat(lambda: timed(base), reps)
    per_s = (n_chunks / t_buf[0], n_chunks / t_buf[2], n_chunks / t_buf[1])
    base_per_s = (n_chunks / t_base[0], n_chunks / t_base[2], n_chunks / t_base[1])
    added = [(t_buf[i] - t_base[i]) / n_chunks * 1e6 for i in range(3)]
    extra = {"chunks": n_chunks}
    rows.append(Measurement(name, "list-slice", "chunks/s", *base_per_s, reps, extra=extra))
    rows.append(
        Measurement(name, "freight.buffer", "chunks/s", *per_s, reps, baseline="list-slice", extra=extra)
    )
    rows.append(
        Measurement(name, "added per chunk", "us", added[0], min(added), max(added), reps, extra=extra)
    )


def run_bench(n_items: int, repetitions: int, streams: int = 16) -> list[Measurement]:
    """All scenarios; returns the measurements (chunks/s of buffer and baseline, added microseconds/chunk)."""
    from freight.buffer import SlidingWindow

    rows: list[Measurement] = []
    for label, item_bytes in SIZES.items():
        items = _items(n_items, item_bytes)
        values = [it.value for it in items]
        for pname, policy in _policies(item_bytes).items():
            chunks = _through_buffer(policy, items)  # warm-up, and the boundaries the baseline must reproduce
            spans = [(c.start_offset, c.end_offset) for c in chunks]
            _scenario(
                rows,
                f"{label} {pname}",
                len(chunks),
                functools.partial(_through_buffer, policy, items),
                _slicer(spans, values),
                repetitions,
            )
        mixed = _items(n_items - n_items % streams, item_bytes, streams)
        policy = SlidingWindow(CHUNK, 16)
        n_chunks = _through_partition(policy, mixed, streams)
        per_stream = [values[: len(mixed) // streams]] * streams
        one_stream = _through_buffer(policy, items[: len(mixed) // streams])
        spans = [(c.start_offset, c.end_offset) for c in one_stream]
        if len(one_stream) * streams != n_chunks:
            raise AssertionError(f"baseline has {len(one_stream) * streams} chunks, the buffers {n_chunks}")

        def base(per_stream: list[list[Any]] = per_stream, spans: list[tuple[int, int]] = spans) -> object:
            return [[v[a:b] for a, b in spans] for v in per_stream]

        _scenario(
            rows,
            f"{label} {streams} streams/partition SlidingWindow({CHUNK},16) + commit per chunk",
            n_chunks,
            functools.partial(_through_partition, policy, mixed, streams),
            base,
            repetitions,
        )
    return rows


def register(app: typer.Typer) -> None:
    @app.command("buffer")
    def buffer_bench(
        items: Annotated[int, typer.Option(help="Items per stream run.", min=1024)] = 65536,
        repetitions: Annotated[int, typer.Option(help="Timed repetitions per figure.", min=1)] = 5,
        streams: Annotated[
            int, typer.Option(help="Streams sharing the partition in the last scenario.")
        ] = 16,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
        out: Annotated[Path | None, typer.Option(help="Also write the JSON document here.")] = None,
    ) -> None:
        """Stream buffers: chunks/s of each chunk policy vs list slicing, 128 B and 1 MiB items (no Kafka)."""
        rows = with_ratios(run_bench(items, repetitions, streams))
        report("freight.buffer: chunks per second vs plain list slicing (pure logic)", rows, out, as_json)
