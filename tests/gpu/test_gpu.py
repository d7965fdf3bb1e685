"""GPU paths of the tensor store (issue 18), for a machine with a CUDA device: `tests/gpu/run.sh`.

* CUDA IPC: another process on the host gets a 1 GiB CUDA tensor as a mapping of the producer's memory;
* the transfer engine (NIXL): a reader that cannot map the owner's memory reads a CUDA tensor into CUDA
  memory it registered (GPUDirect where the hardware has it; UCX's CUDA transports otherwise);
* a stream of CUDA tensors through Kafka, consumed on the device by another process.

Everything here skips without a CUDA device (and the engine test without the `rdma` extra). Not run yet:
no session so far was lent a GPU.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import xxhash
from tests.fixtures.stream import child_env

from freight.config import FreightSettings
from freight.connectors import TensorConnector, transfer
from freight.stores import Store

torch = pytest.importorskip("torch")
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

GiB = 1 << 30

READER = r"""
import json, sys, xxhash, torch
from freight.stores import Store, StoreConfig
cmd = json.loads(sys.stdin.readline())
try:
    store = Store.from_config(StoreConfig.model_validate(cmd["config"]))
    obj = store.get(cmd["key"])
    torch.cuda.synchronize()
    data = obj.contiguous().cpu().numpy()
    reply = {"device": str(obj.device), "checksum": xxhash.xxh3_128_hexdigest(memoryview(data).cast("B")),
             "transport": store.connector.transport_summary()}
except Exception as exc:
    reply = {"error": type(exc).__name__, "message": str(exc)}
print(json.dumps(reply), flush=True)
"""

STREAM_READER = r"""
import json, sys, xxhash, torch
from freight.config import FreightSettings
from freight.stream import StreamConsumer, extract
topic, group = sys.argv[1], sys.argv[2]
seen = []
with StreamConsumer(topic, group, settings=FreightSettings(), until_high_watermark=True) as consumer:
    for meta, proxy in consumer.iter_with_metadata():
        t = extract(proxy)
        seen.append({"device": str(t.device), "sum": float(t.double().sum())})
    consumer.commit()
print(json.dumps(seen), flush=True)
"""


def _checksum(tensor: Any) -> str:
    return xxhash.xxh3_128_hexdigest(memoryview(tensor.contiguous().cpu().numpy()).cast("B"))


def _read(config: Any, key: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", READER],
        input=json.dumps({"config": config.model_dump(), "key": key}) + "\n",
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env={**os.environ, **(env or {})},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    reply: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert "error" not in reply, reply
    return reply


@pytest.fixture
def owner() -> Iterator[TensorConnector]:
    conn = TensorConnector(f"gpu-{uuid.uuid4().hex[:8]}")
    yield conn
    conn.shutdown()


def test_a_1_gib_cuda_tensor_crosses_processes_through_cuda_ipc(owner: TensorConnector) -> None:
    store = Store("gpu", owner)
    tensor = torch.randint(-(2**31), 2**31 - 1, (GiB // 4,), dtype=torch.int32, device="cuda")
    store.put(tensor, key="big")
    got = _read(store.config(), "big")
    assert got["device"] == "cuda:0" and got["checksum"] == _checksum(tensor)


@pytest.mark.skipif(not transfer.available(), reason="needs the rdma extra (NIXL)")
def test_the_transfer_engine_reads_a_cuda_tensor_into_device_memory(
    owner: TensorConnector, tmp_path: Path
) -> None:
    store = Store("gpu-engine", owner)
    tensor = torch.randint(-(2**31), 2**31 - 1, ((256 << 20) // 4,), dtype=torch.int32, device="cuda")
    store.put(tensor, key="t")
    config = store.config()
    rdma = config.model_copy(update={"options": {**config.options, "transport": "rdma"}})
    got = _read(rdma, "t", {"FREIGHT_SHM_DIR": str(tmp_path)})  # cannot map the owner's memory
    assert got["device"] == "cuda:0" and got["checksum"] == _checksum(tensor)
    assert got["transport"] == "nixl (UCX) only"


def test_a_stream_of_cuda_tensors_through_kafka_is_consumed_on_the_device(
    owner: TensorConnector,
    stream_settings: FreightSettings,
    make_topic: Callable[..., str],
    make_producer: Callable[..., Any],
    group_id: str,
) -> None:
    topic = make_topic(partitions=1)
    producer = make_producer({None: Store("gpu-stream", owner)}, inline_threshold=64)
    tensors = [torch.full((1 << 20,), float(i), device="cuda") for i in range(8)]
    for t in tensors:
        producer.send(topic, t, stream="s")
    producer.flush()
    done = subprocess.run(
        [sys.executable, "-c", STREAM_READER, topic, group_id],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env=child_env(stream_settings),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert [s["device"] for s in seen] == ["cuda:0"] * 8
    assert [s["sum"] for s in seen] == [float(t.double().sum()) for t in tensors]
