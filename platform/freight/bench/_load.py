"""A steady background CPU load for a benchmark run (`freight bench --background-load N`).

Figures taken on a quiet machine say little about a shared one: the bulk issue found Freight losing more
than its baselines when another process held a core. N busy-looping processes, started before the first
scenario and stopped after the last, put every subject of the run under the same load.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

_BUSY = "while True:\n    pass\n"


@contextmanager
def background_load(processes: int) -> Iterator[list[int]]:
    """Run `processes` busy-looping Python processes for the duration of the block.

    Args:
        processes: how many (each takes one core when it can get it); 0 starts none.

    Returns:
        A context whose value is the list of the load processes' pids (empty for 0).

    Raises:
        ValueError: `processes` is negative.
    """
    if processes < 0:
        raise ValueError(f"background load must be 0 or more processes, not {processes}")
    procs = [
        subprocess.Popen(
            [sys.executable, "-S", "-c", _BUSY],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(processes)
    ]
    try:
        yield [p.pid for p in procs]
    finally:
        for proc in procs:
            proc.kill()
        for proc in procs:
            proc.wait()
