"""Child process for the stream-buffer crash test (run as a script): consume chunks with a SlidingWindow and
append each chunk to a file, flushed and fsynced before the next chunk is asked for.

Each line: {"s": stream, "i": chunk_index, "q": item sequences, "f": is_final, "v": the resolved values}.
The consumer uses static group membership (`group.instance.id`), so a restarted child takes the place of a
SIGKILLed one at once instead of waiting for its session to time out.
"""

from __future__ import annotations

import argparse
import json
import os
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--stride", type=int, required=True)
    parser.add_argument("--commit-interval", type=float, default=0.0)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds of 'processing' per chunk")
    parser.add_argument("--until-end", action="store_true", help="stop at the high watermarks")
    args = parser.parse_args()

    import numpy as np

    from freight.buffer import SlidingWindow
    from freight.stream import StreamConsumer

    with (
        StreamConsumer(
            args.topic,
            args.group,
            auto_commit=False,
            until_high_watermark=args.until_end,
            kafka_config={"group.instance.id": f"buffer-child-{args.group}"},
        ) as consumer,
        open(args.out, "a") as out,
    ):
        policy = SlidingWindow(args.size, args.stride)
        for chunk in consumer.chunks(policy, resolve=True, commit_interval=args.commit_interval):
            line = {
                "s": chunk.stream,
                "i": chunk.chunk_index,
                "q": list(chunk.sequences),
                "f": chunk.is_final,
                "v": [np.asarray(v).tolist() for v in chunk.data],
            }
            out.write(json.dumps(line) + "\n")
            out.flush()
            os.fsync(out.fileno())
            if args.delay:
                time.sleep(args.delay)


if __name__ == "__main__":
    main()
