"""Child processes of the fault-injection tests, run as scripts and SIGKILLed by the tests at chosen points.

* ``consume``: a group member that resolves each item and appends a line for it to ``--out`` (flushed and
  fsynced) *before* asking for the next, so the file is exactly what the process finished. Fault hooks (test
  script only, never in the library): ``--hold-after N`` stops after resolving and logging the N-th item,
  before asking for the next one (between resolve and commit); ``--hold-in-revoke`` stops inside the
  rebalance callback that takes partitions away (inside a rebalance). A held process writes a ``hold`` line
  and sleeps until it is killed.
* ``produce``: sends ``--count`` stored objects (``--ok`` of them acknowledged first), logging each
  acknowledged one; ``--crash-after-put`` writes one more object and SIGKILLs itself between the store write
  and the event's produce; without it the test kills the process from outside at a random moment.

Payloads name their index: item ``i`` goes to stream ``s{i % STREAMS}`` with sequence ``i // STREAMS`` and is
``PAYLOAD_BYTES`` bytes of ``i`` as a little-endian uint32, repeated, so every resolved object can be checked.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from typing import Any

import numpy as np

STREAMS = 4
PAYLOAD_BYTES = 8192  # above the inline threshold: every item goes through the store


def payload(i: int) -> np.ndarray:
    """The object of item `i`."""
    return np.full(PAYLOAD_BYTES // 4, i, dtype=np.uint32)


def item_of(stream: str, sequence: int) -> int:
    """The item index an event of `stream` with `sequence` carries."""
    return sequence * STREAMS + int(stream[1:])


def check(obj: Any, stream: str, sequence: int) -> int:
    """The item index of a resolved object; AssertionError if its bytes are not the expected ones."""
    arr = np.asarray(obj)
    expected = item_of(stream, sequence)
    assert arr.dtype == np.uint32 and arr.size == PAYLOAD_BYTES // 4, (arr.dtype, arr.shape)
    assert bool((arr == expected).all()), f"{stream}#{sequence}: wrong bytes (want {expected})"
    return expected


def _write(out: Any, line: dict[str, Any]) -> None:
    out.write(json.dumps(line) + "\n")
    out.flush()
    os.fsync(out.fileno())


def _hold(out: Any, where: str) -> None:
    _write(out, {"hold": where, "pid": os.getpid()})
    while True:  # until SIGKILLed
        time.sleep(1)


def consume(args: argparse.Namespace) -> None:
    from freight.stream import StreamConsumer, extract

    out = open(args.out, "a")  # noqa: SIM115 - kept open until the process dies
    pid = os.getpid()

    class Listener:
        def on_assign(self, consumer: Any, partitions: list[tuple[str, int]]) -> None:
            _write(out, {"assign": [p for _, p in partitions], "pid": pid})

        def on_revoke(self, consumer: Any, partitions: list[tuple[str, int]]) -> None:
            _write(out, {"revoke": [p for _, p in partitions], "pid": pid})
            if args.hold_in_revoke and partitions:
                _hold(out, "revoke")

    kafka_config = {"session.timeout.ms": args.session_ms, "heartbeat.interval.ms": 500}
    done = 0
    with StreamConsumer(
        args.topic,
        args.group,
        until_high_watermark=args.until_end,
        idle_timeout=args.idle,
        kafka_config=kafka_config,
        rebalance_listener=Listener(),
    ) as consumer:
        for meta, proxy in consumer.iter_with_metadata():
            item = check(extract(proxy), meta.stream, meta.sequence)
            _write(out, {"p": meta.partition, "o": meta.offset, "i": item, "pid": pid})
            done += 1
            if args.hold_after and done == args.hold_after:
                _hold(out, "resolved")
            if args.delay:
                time.sleep(args.delay)
    _write(out, {"end": done, "pid": pid})


def produce(args: argparse.Namespace) -> None:
    from freight.connectors.file import FileConnector
    from freight.stores import Store
    from freight.stream import StreamProducer

    store = Store(args.store, FileConnector(args.root))
    log = open(args.out, "a")  # noqa: SIM115 - kept open until the process dies
    producer = StreamProducer(
        {None: store}, producer_id=args.producer_id, kafka_config={"linger.ms": args.linger_ms}
    )

    def acked(i: int) -> Any:
        def done(result: Any) -> None:
            if result.exception() is None:
                pos = result.result()
                _write(log, {"i": i, "p": pos.partition, "o": pos.offset})

        return done

    def send(i: int) -> None:
        producer.send(args.topic, payload(i), stream=f"s{i % STREAMS}").add_done_callback(acked(i))

    for i in range(args.ok):
        send(i)
    producer.flush()
    _write(log, {"flushed": args.ok})
    if args.crash_after_put:
        real = store.put_serialized

        def put_then_die(key: str, ser: Any) -> Any:
            stored = real(key, ser)  # the bytes are in the store; the event is never produced
            _write(log, {"orphan": key})
            os.kill(os.getpid(), signal.SIGKILL)
            return stored

        store.put_serialized = put_then_die  # type: ignore[method-assign]
        send(args.ok)
        time.sleep(60)  # not reached
    for i in range(args.ok, args.count):
        send(i)
        if i % 16 == 0:
            producer._producer.poll(0)  # serve delivery reports, so the log keeps up
        if args.delay:
            time.sleep(args.delay)
    producer.flush()
    _write(log, {"flushed": args.count})
    time.sleep(60)  # the test kills it from outside


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["consume", "produce"])
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group")
    parser.add_argument("--out", required=True)
    parser.add_argument("--until-end", action="store_true")
    parser.add_argument("--idle", type=float, default=None)
    parser.add_argument("--hold-after", type=int, default=0)
    parser.add_argument("--hold-in-revoke", action="store_true")
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--session-ms", type=int, default=6000)
    parser.add_argument("--store")
    parser.add_argument("--root")
    parser.add_argument("--producer-id", default="faulty")
    parser.add_argument("--ok", type=int, default=0)
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--crash-after-put", action="store_true")
    parser.add_argument("--linger-ms", type=int, default=5)
    args = parser.parse_args()
    consume(args) if args.mode == "consume" else produce(args)


if __name__ == "__main__":
    sys.exit(main())
