"""The consumer side of the tensor handoff benchmark, run as a separate process.

`python -m freight.bench._tensor_consumer` reads one JSON line per request from stdin,
{"config": StoreConfig, "key": ..., "repetitions": n, "warmup": untimed gets first (default 0)}, and
answers one JSON line with the seconds each `get` took and the seconds a first full read of the result took
(mapped pages are faulted in on first touch), and the warm-up gets' seconds.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any


def _handoff(request: dict[str, Any]) -> dict[str, Any]:
    from freight.stores import Store, StoreConfig

    store = Store.from_config(StoreConfig.model_validate(request["config"]))
    warmups = []
    for _ in range(int(request.get("warmup", 0))):  # connection set-up (the transfer engine's first read)
        t0 = time.perf_counter()
        store.get(request["key"])
        warmups.append(time.perf_counter() - t0)
    gets, reads = [], []
    device = "cpu"
    for _ in range(int(request["repetitions"])):
        t0 = time.perf_counter()
        tensor = store.get(request["key"])
        t1 = time.perf_counter()
        tensor.sum().item()  # touch every byte once
        t2 = time.perf_counter()
        device = str(tensor.device)
        del tensor
        gets.append(t1 - t0)
        reads.append(t2 - t1)
    store.close()
    return {"get_s": gets, "read_s": reads, "device": device, "warmup_s": warmups}


def main() -> None:
    import torch  # noqa: F401 - imported before timing starts

    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        try:
            reply = _handoff(json.loads(line))
        except Exception as exc:
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
