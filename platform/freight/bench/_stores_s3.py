"""S3 benchmark: the S3 store's put/get MiB/s vs s3fs's own `pipe_file` / `cat_file` of the same bytes.

Runs against FREIGHT_S3_ENDPOINT_URL when set, else against a moto server started for the run (on a free
port, with dummy credentials for it alone) and stopped afterwards. Subjects alternate per repetition.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from freight.bench._common import Measurement
from freight.connectors import S3Connector
from freight.stores import Store

MiB = 1 << 20


@contextlib.contextmanager
def s3_endpoint() -> Iterator[str]:
    """FREIGHT_S3_ENDPOINT_URL, or a moto server for the duration (its env set in this process)."""
    existing = os.environ.get("FREIGHT_S3_ENDPOINT_URL")
    if existing:
        yield existing
        return
    from freight.dev.procs import free_port, stop_process
    from freight.dev.s3_service import MotoS3Service

    with tempfile.TemporaryDirectory(prefix="freight-bench-s3-") as state:
        record = MotoS3Service(Path(state), free_port()).start()
        saved = {k: os.environ.get(k) for k in record.env}
        os.environ.update(record.env)
        try:
            yield record.address
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            stop_process(record.pid, grace_s=5)


def bench_s3(sizes_mib: list[int], repetitions: int, tick: Callable[[], None]) -> list[Measurement]:
    """Rows per size: put and get MiB/s for s3fs and for the S3 store."""
    import s3fs

    rows: list[Measurement] = []
    with s3_endpoint() as endpoint:
        fs = s3fs.S3FileSystem(endpoint_url=endpoint, skip_instance_cache=True)
        bucket = f"freight-bench-{uuid.uuid4().hex[:8]}"
        fs.mkdir(bucket)
        # s3fs's default 50 MiB parts (multipart above 100 MiB) so that both sides make the same requests.
        connector = S3Connector(bucket, prefix="freight", endpoint_url=endpoint, part_size=50 * MiB)
        store = Store("bench-s3", connector)
        try:
            for size in sizes_mib:
                arr = np.random.default_rng(size).integers(0, 255, size * MiB, dtype=np.uint8)
                data = arr.tobytes()  # s3fs takes bytes
                rates: dict[str, list[float]] = {
                    "s3fs put": [],
                    "s3fs get": [],
                    "freight put": [],
                    "freight get": [],
                }
                for rep in range(repetitions + 1):  # the first round warms up and is dropped
                    path = f"{bucket}/raw/{rep}-{size}"
                    t0 = time.perf_counter()
                    fs.pipe_file(path, data)
                    t1 = time.perf_counter()
                    back = fs.cat_file(path)
                    t2 = time.perf_counter()
                    assert len(back) == len(data)
                    rates["s3fs put"].append(size / (t1 - t0))
                    rates["s3fs get"].append(size / (t2 - t1))
                    fs.rm_file(path)
                    key = f"{rep}-{size}"
                    t0 = time.perf_counter()
                    ref = store.put(arr, key=key)
                    t1 = time.perf_counter()
                    got = store.get(key, checksum=ref.checksum)
                    t2 = time.perf_counter()
                    assert got.nbytes == arr.nbytes
                    rates["freight put"].append(size / (t1 - t0))
                    rates["freight get"].append(size / (t2 - t1))
                    store.evict(key)
                    if rep:
                        tick()
                rates = {subject: values[1:] for subject, values in rates.items()}
                for op in ("put", "get"):
                    scenario = f"s3 {op} {size} MiB"
                    rows.append(
                        Measurement.of(
                            scenario,
                            f"s3fs {'pipe' if op == 'put' else 'cat'}",
                            "MiB/s",
                            rates[f"s3fs {op}"],
                            None,
                        )
                    )
                    base = f"s3fs {'pipe' if op == 'put' else 'cat'}"
                    rows.append(
                        Measurement.of(scenario, f"freight {op}", "MiB/s", rates[f"freight {op}"], base)
                    )
        finally:
            with contextlib.suppress(OSError):
                fs.rm(bucket, recursive=True)
    return rows
