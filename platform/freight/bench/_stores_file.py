"""File store benchmark: Store put+get of numpy arrays vs raw `tofile` + `fromfile` in the same directory.

Repetitions alternate between the subjects and use a fresh file name each time (deleted afterwards), so both
sides see the same page-cache and writeback conditions. Throughput is payload MiB / (put + get seconds).
"""

from __future__ import annotations

import mmap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from freight.bench._common import Measurement
from freight.connectors import FileConnector
from freight.stores import Store

MiB = 1 << 20


def _anon_rss() -> int:
    """Anonymous resident memory of this process in bytes (Linux), or -1 where unknown."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return -1


def _root(arr: Any) -> Any:
    while True:
        if isinstance(arr, np.ndarray) and arr.base is not None:
            arr = arr.base
        elif isinstance(arr, memoryview):
            arr = arr.obj
        else:
            return arr


def bench_file(
    directory: Path, sizes_mib: list[int], repetitions: int, tick: Callable[[], None]
) -> list[Measurement]:
    """Rows for each size: raw, freight, freight without checksums, freight mmap get."""
    directory.mkdir(parents=True, exist_ok=True)
    store = Store("bench-file", FileConnector(directory))
    plain = Store("bench-file-nock", FileConnector(directory), checksum=None)
    rows: list[Measurement] = []
    for size in sizes_mib:
        arr = np.random.default_rng(size).standard_normal(size * MiB // 8)
        scenario = f"file put+get {size} MiB"
        times: dict[str, list[tuple[float, float]]] = {
            "raw tofile+fromfile": [],
            "freight": [],
            "freight no checksum": [],
            "freight mmap get": [],
        }
        anon_growth: list[int] = []
        mapped = True
        for rep in range(repetitions + 1):  # the first round warms up and is dropped
            # raw numpy
            path = str(directory / f"raw-{rep}-{size}.npy-raw")
            t0 = time.perf_counter()
            arr.tofile(path)
            t1 = time.perf_counter()
            back = np.fromfile(path, dtype=arr.dtype)
            t2 = time.perf_counter()
            assert back.nbytes == arr.nbytes
            del back
            Path(path).unlink()
            times["raw tofile+fromfile"].append((t1 - t0, t2 - t1))
            # freight, with and without checksums, read into memory
            for subject, s in (("freight", store), ("freight no checksum", plain)):
                key = f"k-{rep}-{size}"
                t0 = time.perf_counter()
                s.put(arr, key=key)
                t1 = time.perf_counter()
                got = s.get(key)
                t2 = time.perf_counter()
                assert got.nbytes == arr.nbytes
                del got
                s.evict(key)
                times[subject].append((t1 - t0, t2 - t1))
            # freight, memory-mapped get (checksum verified over the mapping)
            key = f"m-{rep}-{size}"
            t0 = time.perf_counter()
            store.put(arr, key=key)
            t1 = time.perf_counter()
            before = _anon_rss()
            got = store.get(key, mmap=True)
            t2 = time.perf_counter()
            anon_growth.append(_anon_rss() - before)
            mapped = mapped and isinstance(_root(got), mmap.mmap) and not got.flags.owndata
            del got
            store.evict(key)
            times["freight mmap get"].append((t1 - t0, t2 - t1))
            if rep:
                tick()
        times = {subject: pairs[1:] for subject, pairs in times.items()}
        anon_growth = anon_growth[1:]
        for subject, pairs in times.items():
            rates = [size / (p + g) for p, g in pairs]
            extra: dict[str, Any] = {
                "put_ms_median": 1000 * float(np.median([p for p, _ in pairs])),
                "get_ms_median": 1000 * float(np.median([g for _, g in pairs])),
            }
            if subject == "freight mmap get":
                extra["mapped_no_copy"] = mapped
                extra["anon_memory_growth_bytes_median"] = int(np.median(anon_growth))
            rows.append(
                Measurement(
                    scenario=scenario,
                    subject=subject,
                    unit="MiB/s",
                    median=float(np.median(rates)),
                    minimum=min(rates),
                    maximum=max(rates),
                    repetitions=len(rates),
                    baseline=None if subject.startswith("raw") else "raw tofile+fromfile",
                    extra=extra,
                )
            )
    return rows
