"""Conveyor's timing claims (seeds/001), measured on `freight.compat.conveyor`: a benchmark-style script.

Run: `.venv/bin/python -m tests.compat.conveyor_timing [--repeat 5]`. It prints, per claim, the median and
min-max over the repetitions next to the guide's figure, whether it is within the tolerance, and the load
average. Nothing here is a test: timings depend on the machine's load (see TEAM.md, no timing asserts).

Claims: 8 tasks taking [0.1, 0.2, 0.3, 0.4, 0.5, 2.0, 0.7, 0.8] s yield results 1-5 at 0.1 .. 0.5 s and
6, 7, 8 together at 2.0 s in ordered mode (all at 2.0 s when collected); the ordered/as-completed demos
yield at 0.1, 0.5, 2.0, 2.0 s and 0.1, 0.2, 0.5, 2.0 s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time

from freight.compat.conveyor import single_task


@single_task
async def sleeper(item: tuple[str, float]) -> str:
    name, delay = item
    await asyncio.sleep(delay)
    return name


async def _times(items: list[tuple[str, float]], mode: str) -> list[float]:
    start = time.monotonic()
    pipeline = sleeper.with_execution_mode(mode)
    return [time.monotonic() - start async for _ in pipeline(items)]


CLAIMS = {
    "8 tasks, ordered": (
        [(f"t{i}", d) for i, d in enumerate([0.1, 0.2, 0.3, 0.4, 0.5, 2.0, 0.7, 0.8])],
        "ordered",
        [0.1, 0.2, 0.3, 0.4, 0.5, 2.0, 2.0, 2.0],
    ),
    "demo, ordered": (
        [("fast", 0.1), ("medium", 0.5), ("slow", 2.0), ("quick", 0.2)],
        "ordered",
        [0.1, 0.5, 2.0, 2.0],
    ),
    "demo, as_completed": (
        [("fast", 0.1), ("medium", 0.5), ("slow", 2.0), ("quick", 0.2)],
        "as_completed",
        [0.1, 0.2, 0.5, 2.0],
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--tolerance", type=float, default=0.05, help="seconds allowed past each claim")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}")
    for name, (items, mode, claimed) in CLAIMS.items():
        runs = [asyncio.run(_times(items, mode)) for _ in range(args.repeat)]
        print(f"\n{name} ({args.repeat} runs): result i at median [min-max] s vs Conveyor's claim")
        for i, claim in enumerate(claimed):
            got = [r[i] for r in runs]
            med = statistics.median(got)
            ok = "ok" if claim - 0.01 <= med <= claim + args.tolerance else "OFF"
            print(f"  result {i + 1}: {med:.3f} [{min(got):.3f}-{max(got):.3f}]  claim {claim:.1f}  {ok}")
    print(f"\nload average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
