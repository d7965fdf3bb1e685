"""Tensor store: another process on the host gets tensors without a copy (shared memory on CPU, CUDA IPC on
GPU), falls back to a byte transfer when told to (as across hosts), and the owner keeps tensors until evicted.

A long-lived consumer process (one per module) receives commands as JSON lines and answers the same way.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from freight.connectors import TensorConnector, shm
from freight.errors import ObjectEvictedError, ObjectNotFoundError, ServiceUnavailableError
from freight.stores import Store, StoreConfig

torch = pytest.importorskip("torch")

CONSUMER = r"""
import json, sys, traceback
import numpy as np
from freight.stores import Store, StoreConfig

stores, held = {}, {}

def store_for(cfg):
    text = json.dumps(cfg, sort_keys=True)
    if text not in stores:
        stores[text] = Store.from_config(StoreConfig.model_validate(cfg))
    return stores[text]

def describe(obj, segment):
    maps = open("/proc/self/maps").read() if segment else ""
    out = {"mapped": bool(segment) and segment in maps}
    if isinstance(obj, np.ndarray):
        out.update(kind="numpy", sum=float(obj.sum()), writeable=bool(obj.flags.writeable),
                   shape=list(obj.shape))
    else:
        out.update(kind="tensor", sum=float(obj.double().sum()), device=str(obj.device), dtype=str(obj.dtype),
                   shape=list(obj.shape), first=float(obj.reshape(-1)[0]) if obj.numel() else None)
    return out

for line in sys.stdin:
    cmd = json.loads(line)
    try:
        store = store_for(cmd["config"])
        op = cmd["op"]
        if op == "get":
            held[cmd["key"]] = store.get(cmd["key"])
            reply = describe(held[cmd["key"]], cmd.get("segment"))
        elif op == "peek":
            obj = held[cmd["key"]]
            reply = {"first": float(obj.reshape(-1)[0])}
        elif op == "evict":
            reply = {"evicted": store.evict(cmd["key"])}
        elif op == "put":
            import torch
            store.put(torch.zeros(3), key="from-consumer")
            reply = {"ok": True}
        else:
            reply = {"error": "unknown op"}
    except Exception as exc:
        reply = {"error": type(exc).__name__, "message": str(exc)}
    print(json.dumps(reply), flush=True)
"""


class Consumer:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CONSUMER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def ask(self, config: StoreConfig, **cmd: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"config": config.model_dump(), **cmd}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, "the consumer process died"
        reply: dict[str, Any] = json.loads(line)
        return reply

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(10)


@pytest.fixture(scope="module")
def consumer() -> Iterator[Consumer]:
    c = Consumer()
    yield c
    c.close()


@pytest.fixture
def tstore() -> Iterator[Store]:
    conn = TensorConnector(f"tensors-{uuid.uuid4().hex[:8]}")
    yield Store("tensors", conn)
    conn.shutdown()


def _segment(store: Store, key: str) -> str:
    conn = store.connector
    assert isinstance(conn, TensorConnector) and conn._owner is not None
    entry = conn._owner.entries[key]
    assert entry.segment is not None
    return entry.segment.path


def test_cpu_tensor_reaches_another_process_without_a_copy(tstore: Store, consumer: Consumer) -> None:
    original = torch.arange(1 << 16, dtype=torch.float32).reshape(256, 256)
    ref = tstore.put(original, key="t")
    assert ref.serializer == "torch" and ref.descriptor is not None and ref.descriptor.shape == (256, 256)
    cfg = tstore.config()
    segment = _segment(tstore, "t")
    got = consumer.ask(cfg, op="get", key="t", segment=segment)
    assert got["sum"] == float(original.double().sum()) and got["shape"] == [256, 256]
    assert got["device"] == "cpu" and got["dtype"] == "torch.float32"
    assert got["mapped"], "the consumer's tensor must be a mapping of the producer's shared memory"
    # Same pages: a write by the producer shows in the tensor the consumer already holds.
    tstore.get("t")[0, 0] = 1234.0
    assert consumer.ask(cfg, op="peek", key="t")["first"] == 1234.0


def test_tensor_allocated_in_shared_memory_is_stored_without_any_copy(
    tstore: Store, consumer: Consumer
) -> None:
    conn = tstore.connector
    assert isinstance(conn, TensorConnector)
    t = conn.empty((64, 64), torch.bfloat16)
    t.fill_(1.5)
    view = t[8:, ::2]  # a non-contiguous view of it
    tstore.put(view, key="view")
    resident = tstore.get("view")
    assert resident.data_ptr() == view.data_ptr() and resident.stride() == view.stride()
    got = consumer.ask(tstore.config(), op="get", key="view", segment=_segment(tstore, "view"))
    assert got["shape"] == [56, 32] and got["sum"] == 1.5 * 56 * 32 and got["mapped"]
    assert got["dtype"] == "torch.bfloat16"


def test_the_streaming_path_keeps_tensors_resident(tstore: Store) -> None:
    """A producer serializes first (to choose inline or stored) and then calls `put_serialized`."""
    conn = tstore.connector
    assert isinstance(conn, TensorConnector)
    t = conn.empty((32, 32), torch.float32)
    t.fill_(2.0)
    ser = tstore.serialize(t)
    assert ser.source is t and ser.nbytes == 32 * 32 * 4
    ref = tstore.put_serialized("streamed", ser)
    assert ref.serializer == "torch" and ref.checksum is None
    assert tstore.get("streamed").data_ptr() == t.data_ptr()


def test_numpy_objects_are_shared_read_only(tstore: Store, consumer: Consumer) -> None:
    arr = np.arange(100_000, dtype=np.int64)
    ref = tstore.put(arr, key="np")
    assert ref.checksum is not None
    got = consumer.ask(tstore.config(), op="get", key="np", segment=_segment(tstore, "np"))
    assert got == {
        "mapped": True,
        "kind": "numpy",
        "sum": float(arr.sum()),
        "writeable": False,
        "shape": [100_000],
    }


def test_byte_transfer_fallback(tstore: Store, consumer: Consumer) -> None:
    original = torch.randn(300, 7, dtype=torch.float64)
    tstore.put(original, key="far")
    cfg = tstore.config()
    tcp = cfg.model_copy(update={"options": {**cfg.options, "transport": "tcp"}})
    got = consumer.ask(tcp, op="get", key="far", segment=_segment(tstore, "far"))
    assert got["sum"] == pytest.approx(float(original.sum())) and got["shape"] == [300, 7]
    assert not got["mapped"], "the byte transfer must not map the producer's memory"
    # In-process readers can take the same path (as a reader on another host would).
    reader = Store.from_config(tcp)
    assert isinstance(reader.connector, TensorConnector) and reader.connector.is_owner
    far = Store("far", TensorConnector.connect(tcp.options))
    assert torch.equal(far.get("far"), original)


def test_owner_keeps_tensors_until_evicted(tstore: Store, consumer: Consumer) -> None:
    cfg = tstore.config()
    tstore.put(torch.ones(1000), key="kept")
    held = consumer.ask(cfg, op="get", key="kept", segment=_segment(tstore, "kept"))
    assert held["sum"] == 1000.0
    path = _segment(tstore, "kept")
    assert consumer.ask(cfg, op="evict", key="kept") == {"evicted": True}
    assert not tstore.exists("kept") and not Path(path).exists()
    missing = consumer.ask(cfg, op="get", key="kept")
    assert missing["error"] == "ObjectEvictedError" and "kept" in missing["message"]
    with pytest.raises(ObjectEvictedError, match="kept"):
        tstore.get("kept")
    # The consumer's mapping outlives the eviction: its tensor is still readable.
    assert consumer.ask(cfg, op="peek", key="kept")["first"] == 1.0


def test_only_the_owner_writes(tstore: Store, consumer: Consumer) -> None:
    reply = consumer.ask(tstore.config(), op="put")
    assert reply["error"] == "StoreReadOnlyError" and "alone writes" in reply["message"]


def test_shutdown_frees_shared_memory_and_stale_segments_are_swept() -> None:
    conn = TensorConnector(f"tensors-{uuid.uuid4().hex[:8]}")
    store = Store("short-lived", conn)
    store.put(torch.zeros(10), key="a")
    store.put(b"bytes", key="b")
    paths = [_segment(store, "a"), _segment(store, "b")]
    assert all(Path(p).exists() for p in paths)
    conn.shutdown()
    assert not any(Path(p).exists() for p in paths)
    stale = Path(shm.shm_dir()) / f"{shm.PREFIX}999999999-{'0' * 16}"
    stale.write_bytes(b"left by a crashed producer")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    assert shm.sweep_stale() >= 1 and not stale.exists()


def test_unreachable_owner_is_service_unavailable() -> None:
    from freight.dev.procs import free_port

    reader = TensorConnector.connect({"name": "gone", "address": f"127.0.0.1:{free_port()}", "timeout": 2})
    with pytest.raises(ServiceUnavailableError, match="producer process"):
        Store("gone", reader).get("anything")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_tensor_reaches_another_process_through_cuda_ipc(tstore: Store, consumer: Consumer) -> None:
    original = torch.arange(1 << 20, dtype=torch.float32, device="cuda").reshape(1024, 1024)
    from freight.stores.serializers import LazyBuffers

    ser = tstore.serialize(original)
    assert isinstance(ser.buffers, LazyBuffers), "serializing a CUDA tensor must not copy it to the host"
    ref = tstore.put_serialized("gpu", ser)
    assert ref.descriptor is not None and ref.descriptor.device.startswith("cuda")
    assert tstore.get("gpu").data_ptr() == original.data_ptr(), "the producer keeps the tensor as it is"
    cfg = tstore.config()
    got = consumer.ask(cfg, op="get", key="gpu")
    assert got["device"].startswith("cuda") and got["sum"] == float(original.double().sum())
    original[0, 0] = -1.0  # same device memory: the consumer sees the write
    torch.cuda.synchronize()
    assert consumer.ask(cfg, op="peek", key="gpu")["first"] == -1.0
    tcp = cfg.model_copy(update={"options": {**cfg.options, "transport": "tcp"}})
    far = consumer.ask(tcp, op="get", key="gpu")
    assert far["sum"] == float(original.double().sum())


def test_batches_through_a_reader(tstore: Store) -> None:
    tensors = [torch.full((100,), float(i)) for i in range(5)]
    refs = tstore.put_batch([*tensors, np.arange(3)], [f"b{i}" for i in range(6)])
    assert [r.serializer for r in refs] == ["torch"] * 5 + ["numpy"]
    reader = Store("reader", TensorConnector.connect(tstore.config().options))
    got = reader.get_batch([r.key for r in refs])
    for g, t in zip(got[:5], tensors, strict=True):
        assert torch.equal(g, t)
    np.testing.assert_array_equal(got[5], np.arange(3))
    assert reader.connector.get_batch(["b0", "nope"])[1] is None
    with pytest.raises(ObjectNotFoundError, match="nope"):
        reader.get_batch(["b1", "nope"])
    assert sorted(i.key for i in reader.connector.list("b")) == [f"b{i}" for i in range(6)]
    assert reader.exists("b2") and reader.evict_batch(["b2", "b3", "nope"]) == 2
    assert not tstore.exists("b2")
