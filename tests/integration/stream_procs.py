"""Child processes for streaming tests (run as scripts): a consumer that logs what it processed, and a
dispatcher that hands proxies to a worker process without reading bulk bytes itself."""

from __future__ import annotations

import argparse
import json
import os
import pickle
import sys
from concurrent.futures import ProcessPoolExecutor
from typing import Any


def consume(args: argparse.Namespace) -> None:
    """Process items one by one; each line in --out is written (and fsynced) before the next is requested."""
    from freight.stream import StreamConsumer, extract

    with (
        StreamConsumer(
            args.topic, args.group, until_high_watermark=args.until_end, idle_timeout=args.idle
        ) as c,
        open(args.out, "a") as out,
    ):
        for meta, proxy in c.iter_with_metadata():
            obj = extract(proxy)
            line = {
                "p": meta.partition,
                "o": meta.offset,
                "s": meta.stream,
                "q": meta.sequence,
                "n": len(obj),
            }
            out.write(json.dumps(line) + "\n")
            out.flush()
            os.fsync(out.fileno())


def _worker_resolve(blob: bytes) -> dict[str, Any]:
    import numpy as np

    from freight.stores.resolver import default_resolver
    from freight.stream import extract

    proxy = pickle.loads(blob)  # a proxy reference pickled by our own dispatcher
    array = np.asarray(extract(proxy))
    stores = default_resolver().stores()
    return {
        "sum": float(array.sum()),
        "nbytes": int(array.nbytes),
        "worker_bytes_read": sum(s.stats.bytes_read for s in stores),
        "pid": os.getpid(),
    }


def dispatch(args: argparse.Namespace) -> None:
    """Consume proxies and send each, pickled, to a worker process; report what this process read."""
    from freight.stores.resolver import default_resolver
    from freight.stream import StreamConsumer, is_resolved

    results = []
    pickled_sizes = []
    with (
        StreamConsumer(args.topic, args.group, until_high_watermark=True, idle_timeout=args.idle) as c,
        ProcessPoolExecutor(max_workers=1) as pool,
    ):
        futures = []
        for proxy in c:
            blob = pickle.dumps(proxy)
            pickled_sizes.append(len(blob))
            futures.append(pool.submit(_worker_resolve, blob))
            assert not is_resolved(proxy)
        results = [f.result() for f in futures]
    dispatcher_read = sum(s.stats.bytes_read for s in default_resolver().stores())
    json.dump(
        {
            "results": results,
            "dispatcher_bytes_read": dispatcher_read,
            "dispatcher_stores_built": len(default_resolver().stores()),
            "max_pickled": max(pickled_sizes),
            "pid": os.getpid(),
        },
        sys.stdout,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["consume", "dispatch"])
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--out")
    parser.add_argument("--until-end", action="store_true")
    parser.add_argument("--idle", type=float, default=None)
    args = parser.parse_args()
    consume(args) if args.mode == "consume" else dispatch(args)


if __name__ == "__main__":
    main()
