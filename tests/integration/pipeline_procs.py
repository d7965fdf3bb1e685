"""Child process for the pipeline crash test (run as a script): a pipeline over a real StreamConsumer whose
stage fails deterministically on items with sequence % 7 == 3 (dead-lettered to `<topic>.dlq`) and whose
caller logs every result, fsynced, before asking for the next one (the moment the item counts as done)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from typing import Any


def failing(sequence: int) -> bool:
    """The items the stage fails on, whatever the run."""
    return sequence % 7 == 3


async def run(args: argparse.Namespace) -> None:
    from freight.pipeline import stage
    from freight.stream import StreamConsumer, extract, ref_of

    @stage(concurrency=4, on_error="dead_letter")
    async def work(proxy: Any) -> dict[str, Any]:
        ref = ref_of(proxy)
        data = bytes(extract(proxy))  # resolved here, in the child, from the file store
        await asyncio.sleep(0.002 * (1 + ref.sequence % 5))  # uneven latencies: out-of-order completion
        if failing(ref.sequence):
            raise ValueError(f"sequence {ref.sequence} of {ref.stream} is bad")
        return {"p": ref.partition, "o": ref.offset, "s": ref.stream, "q": ref.sequence, "n": len(data)}

    kafka_config = {"group.instance.id": args.instance}  # static member: a restart takes over at once
    with (
        StreamConsumer(
            args.topic,
            args.group,
            auto_commit=False,
            until_high_watermark=args.until_end,
            kafka_config=kafka_config,
        ) as consumer,
        open(args.out, "a") as out,
    ):
        async for result in work(consumer, mode=args.mode, max_in_flight=16, commit_interval=0.05):
            out.write(json.dumps(result) + "\n")
            out.flush()
            os.fsync(out.fileno())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--mode", choices=["ordered", "as_completed"], default="ordered")
    parser.add_argument("--instance", default="pipeline-child")
    parser.add_argument("--until-end", action="store_true")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
