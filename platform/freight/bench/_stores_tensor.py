"""Tensor store benchmark: cross-process handoff of a large tensor on one host.

The producer (this process) puts a float32 tensor into a tensor store; a consumer process rebuilds the store
from its config and `get`s it. Shared memory (CPU) or CUDA IPC (GPU) hands over a mapping, so the time does
not grow with the size; the byte transfer (what a reader on another host gets) copies every byte through a
socket and is measured beside it. The producer's `put` (one copy into shared memory, or none for a tensor
allocated with `empty()`) is reported too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

from freight.bench._common import Measurement
from freight.connectors import TensorConnector
from freight.stores import Store, StoreConfig

MiB = 1 << 20


class _Consumer:
    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "freight.bench._tensor_consumer"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=None if env is None else {**os.environ, **env},
        )
        self._read()  # wait until it imported torch

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the benchmark's consumer process exited")
        reply: dict[str, Any] = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"consumer failed: {reply['error']}")
        return reply

    def handoff(self, config: StoreConfig, key: str, repetitions: int, warmup: int = 0) -> dict[str, Any]:
        assert self.proc.stdin is not None
        request = {"config": config.model_dump(), "key": key, "repetitions": repetitions, "warmup": warmup}
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(30)


def _ms_row(
    scenario: str, subject: str, seconds: list[float], baseline: str | None, **extra: Any
) -> Measurement:
    return Measurement.of(scenario, subject, "ms", [1000 * s for s in seconds], baseline, **extra)


def bench_tensor(size_mib: int, repetitions: int, tick: Callable[[], None]) -> list[Measurement]:
    """Rows: put into shared memory, handoff (shm / CUDA IPC) and the byte-transfer fallback."""
    import torch

    rows: list[Measurement] = []
    conn = TensorConnector(f"bench-{uuid.uuid4().hex[:8]}")
    store = Store("bench-tensors", conn)
    consumer = _Consumer()
    try:
        numel = size_mib * MiB // 4
        source = torch.rand(numel, dtype=torch.float32)
        puts = []
        for rep in range(repetitions + 1):
            t0 = time.perf_counter()
            store.put(source, key=f"copy-{rep}")
            puts.append(time.perf_counter() - t0)
            store.evict(f"copy-{rep}")
        puts = puts[1:]  # the first round warms up
        scenario = f"tensor {size_mib} MiB"
        rows.append(_ms_row(scenario, "producer put (copy into shared memory)", puts, None))
        shared = conn.empty((numel,), torch.float32)
        shared.copy_(source)
        t0 = time.perf_counter()
        store.put(shared, key="t")
        rows.append(
            _ms_row(scenario, "producer put of empty()-allocated tensor", [time.perf_counter() - t0], None)
        )
        cfg = store.config()
        tcp = cfg.model_copy(update={"options": {**cfg.options, "transport": "tcp"}})
        byte_run = consumer.handoff(tcp, "t", max(2, repetitions // 2))
        tick()
        shm_run = consumer.handoff(cfg, "t", repetitions)
        tick()
        base = "handoff via TCP byte transfer"
        rows.append(_ms_row(scenario, base, byte_run["get_s"], None, device=byte_run["device"]))
        rows.append(
            _ms_row(scenario, "handoff via shared memory", shm_run["get_s"], base, device=shm_run["device"])
        )
        rows.append(
            _ms_row(
                scenario,
                "handoff via shared memory + first full read",
                [g + r for g, r in zip(shm_run["get_s"], shm_run["read_s"], strict=True)],
                base,
            )
        )
        if torch.cuda.is_available():
            gpu = source.to("cuda")
            torch.cuda.synchronize()
            store.put(gpu, key="gpu")
            ipc_run = consumer.handoff(cfg, "gpu", repetitions)
            tick()
            gscenario = f"cuda tensor {size_mib} MiB"
            gbase = "handoff via TCP byte transfer (to host)"
            byte_gpu = consumer.handoff(tcp, "gpu", max(2, repetitions // 2))
            rows.append(_ms_row(gscenario, gbase, byte_gpu["get_s"], None, device=byte_gpu["device"]))
            rows.append(
                _ms_row(gscenario, "handoff via CUDA IPC", ipc_run["get_s"], gbase, device=ipc_run["device"])
            )
    finally:
        consumer.close()
        conn.shutdown()
    return rows
