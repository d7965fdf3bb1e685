"""Helpers of the eviction tests, and child processes run as scripts: an evictor that pauses between deleting
a batch and committing its checkpoint (to be SIGKILLed there), and a producer that crashes between writing an
object and producing its event (to leave an orphan)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from freight.config import FreightSettings
from freight.connectors.keys import safe_key_part
from freight.schemas.events import EvictionMode
from freight.stream import StreamConsumer


@dataclass(frozen=True)
class Ref:
    """Where an event is and which object it names."""

    partition: int
    offset: int
    key: str
    mode: EvictionMode
    size: int
    stream: str
    sequence: int


def payload(i: int, size: int) -> np.ndarray:
    """A numpy object above the inline threshold that names its index."""
    arr = np.full(size // 8, i, dtype=np.int64)
    return arr


def send(
    producer: Any,
    topic: str,
    n: int,
    *,
    size: int = 8192,
    streams: int = 4,
    start: int = 0,
    evict: str | None = None,
) -> None:
    """Send `n` stored objects round-robin over `streams` streams and wait for every acknowledgement."""
    for i in range(start, start + n):
        producer.send(topic, payload(i, size), stream=f"s{i % streams}", evict=evict)
    producer.flush()


def events(settings: FreightSettings, topic: str) -> dict[tuple[int, int], Ref]:
    """Every stored-object event of `topic` by (partition, offset), read without a group (commits nothing)."""
    out: dict[tuple[int, int], Ref] = {}
    with StreamConsumer(topic, None, settings=settings, until_high_watermark=True, idle_timeout=10) as c:
        for rec in c.iter_records():
            ref = rec.event.object
            if ref is not None:
                part, off = rec.metadata.partition, rec.metadata.offset
                out[(part, off)] = Ref(
                    part, off, ref.key, ref.eviction, ref.size, rec.event.stream, rec.event.sequence
                )
    return out


def consume_all(settings: FreightSettings, topic: str, group: str) -> int:
    """A group that keeps up: read everything there is and commit it; returns the items read."""
    n = 0
    with StreamConsumer(topic, group, settings=settings, until_high_watermark=True, idle_timeout=10) as c:
        for _ in c:
            n += 1
        c.commit()
    return n


def commit_at(settings: FreightSettings, topic: str, group: str, offsets: dict[int, int]) -> None:
    """A group with manual commits (as a stream buffer): read what there is, commit exactly `offsets`."""
    with StreamConsumer(
        topic, group, settings=settings, until_high_watermark=True, idle_timeout=10, auto_commit=False
    ) as c:
        for _ in c:
            pass
        c.commit({(topic, p): o for p, o in offsets.items()})


def stored_keys(store: Any, topic: str) -> set[str]:
    """Keys of the objects of `topic` in `store` right now."""
    return {info.key for info in store.connector.list(safe_key_part(topic) + "/")}


def keys_at_or_above(refs: dict[tuple[int, int], Ref], marks: dict[int, int]) -> set[str]:
    """Keys of the events at or above each partition's mark."""
    return {r.key for (p, o), r in refs.items() if o >= marks.get(p, 0)}


def keys_below(refs: dict[tuple[int, int], Ref], marks: dict[int, int]) -> set[str]:
    return {r.key for (p, o), r in refs.items() if o < marks.get(p, 0)}


def wait_for(predicate: Any, timeout: float, what: str, step: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(step)


# -- child processes -------------------------------------------------------------------------------------


def _evict(args: argparse.Namespace) -> None:
    """Run one pass with small batches; after deleting each batch (before its commit) log it and sleep."""
    from freight.eviction import BatchEvent, Evictor

    log = open(args.progress, "a")  # noqa: SIM115 - kept open for the life of the process

    def hook(event: BatchEvent) -> None:
        line = {
            "phase": event.phase,
            "keys": [k for _, k in event.keys],
            "checkpoints": {str(p): o for (_t, p), o in event.checkpoints.items()},
            "watermarks": {str(p): o for (_t, p), o in event.watermarks.items()},
        }
        log.write(json.dumps(line) + "\n")
        log.flush()
        os.fsync(log.fileno())
        if event.phase == "deleted":
            time.sleep(args.pause)

    with Evictor(batch_size=args.batch_size, on_batch=hook) as evictor:
        report = evictor.run_once([args.topic])
    log.write(json.dumps({"phase": "done", "deleted": report.deleted}) + "\n")
    log.close()


def _crash_producer(args: argparse.Namespace) -> None:
    """Send `--ok` objects normally, then write one more object and die (SIGKILL) before its event goes."""
    from freight.connectors.file import FileConnector
    from freight.stores import Store
    from freight.stream import StreamProducer

    if args.s3_bucket:
        from freight.connectors import S3Connector

        store = Store(args.store, S3Connector(args.s3_bucket))
    else:
        store = Store(args.store, FileConnector(args.root))
    producer = StreamProducer({None: store}, producer_id=args.producer_id)
    send(producer, args.topic, args.ok)
    real = producer._produce

    def crash(topic: str, event: Any, store: Any, key: str | None, *rest: Any) -> Any:
        if key is not None:  # the object is in the store; its event is not produced
            print(json.dumps({"orphan": key}), flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        return real(topic, event, store, key, *rest)

    producer._produce = crash  # type: ignore[method-assign]
    producer.send(args.topic, payload(10_000, 8192), stream="s0")
    time.sleep(30)  # not reached


def main(argv: Iterable[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["evict", "crash-producer"])
    parser.add_argument("--topic", required=True)
    parser.add_argument("--batch-size", type=int, default=5)
    parser.add_argument("--pause", type=float, default=0.3)
    parser.add_argument("--progress")
    parser.add_argument("--store")
    parser.add_argument("--root")
    parser.add_argument("--s3-bucket")
    parser.add_argument("--producer-id", default="crashy")
    parser.add_argument("--ok", type=int, default=3)
    args = parser.parse_args(list(argv) if argv is not None else None)
    if args.mode == "evict":
        _evict(args)
    else:
        _crash_producer(args)


if __name__ == "__main__":
    main(sys.argv[1:])
