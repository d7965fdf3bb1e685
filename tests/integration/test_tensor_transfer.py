"""Tensor store over the transfer engine (NIXL, the `rdma` extra): a reader that cannot map the owner's
memory gets tensors by one-sided reads, checked by checksum; bad regions are refused; without the extra the
TCP socket takes over. Skipped where torch or the extra is not installed.

The reader process gets its own FREIGHT_SHM_DIR, so its host identity differs from the owner's and it cannot
map the owner's shared memory (as on another host); the test also checks the owner's segment is not in the
reader's /proc/self/maps. The 1 GiB exchange (about 30 s here) runs with `make test-rdma`; `make test` runs
the 64 MiB one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xxhash

from freight.connectors import TensorConnector, transfer
from freight.errors import ObjectEvictedError, ObjectNotFoundError, StoreError
from freight.stores import Store, StoreConfig

torch = pytest.importorskip("torch")
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not transfer.available(), reason="needs the rdma extra (NIXL): pip install 'freight[rdma]'"
    ),
]

GiB = 1 << 30

READER = r"""
import json, sys, xxhash
if sys.argv[1] == "blocked":
    sys.modules["nixl_cu12"] = None  # as if the rdma extra were not installed here
import numpy as np, torch
from freight.stores import Store, StoreConfig
for line in sys.stdin:
    cmd = json.loads(line)
    try:
        store = Store.from_config(StoreConfig.model_validate(cmd["config"]))
        obj = store.get(cmd["key"])
        maps = open("/proc/self/maps").read()
        data = obj.numpy() if isinstance(obj, torch.Tensor) else np.asarray(obj)
        reply = {
            "checksum": xxhash.xxh3_128_hexdigest(memoryview(np.ascontiguousarray(data)).cast("B")),
            "shape": list(data.shape), "dtype": str(data.dtype), "mapped": cmd["segment"] in maps,
            "transport": store.connector.transport_summary(),
        }
        del obj, data
        store.close()
    except Exception as exc:
        reply = {"error": type(exc).__name__, "message": str(exc)}
    print(json.dumps(reply), flush=True)
"""


class Reader:
    """A process with its own shared-memory directory: it cannot map the owner's segments."""

    def __init__(self, shm_dir: Path, blocked: bool = False) -> None:
        env = {**os.environ, "FREIGHT_SHM_DIR": str(shm_dir)}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", READER, "blocked" if blocked else "engine"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )

    def get(self, config: StoreConfig, key: str, segment: str) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(
            json.dumps({"config": config.model_dump(), "key": key, "segment": segment}) + "\n"
        )
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, "the reader process died"
        reply: dict[str, Any] = json.loads(line)
        return reply

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(30)


@pytest.fixture
def owner() -> Iterator[TensorConnector]:
    conn = TensorConnector(f"rdma-{uuid.uuid4().hex[:8]}")
    yield conn
    conn.shutdown()


def _checksum(tensor: Any) -> str:
    return xxhash.xxh3_128_hexdigest(memoryview(tensor.contiguous().numpy()).cast("B"))


def _segment(conn: TensorConnector, key: str) -> str:
    assert conn._owner is not None
    segment = conn._owner.entries[key].segment
    assert segment is not None
    return segment.path


def _exchange(owner: TensorConnector, tmp_path: Path, nbytes: int) -> None:
    store = Store("big", owner)
    tensor = owner.empty((nbytes // 4,), torch.int32)  # in shared memory from the start: no extra copy
    tensor.copy_(torch.randint(-(2**31), 2**31 - 1, (nbytes // 4,), dtype=torch.int32))
    store.put(tensor, key="big")
    config = store.config()
    assert config.options["engine"]["engine"] == "nixl"
    reader = Reader(tmp_path)
    try:
        got = reader.get(config, "big", _segment(owner, "big"))
    finally:
        reader.close()
    assert "error" not in got, got
    assert not got["mapped"], "the reader must not map the owner's memory"
    assert got["transport"].startswith("shm/cuda-ipc on host, else nixl")
    assert got["shape"] == [nbytes // 4] and got["dtype"] == "int32"
    assert got["checksum"] == _checksum(tensor)


def test_a_64_mib_tensor_crosses_processes_through_the_engine(owner: TensorConnector, tmp_path: Path) -> None:
    _exchange(owner, tmp_path, 64 << 20)


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("FREIGHT_TEST_1GIB"), reason="1 GiB variant: make test-rdma (FREIGHT_TEST_1GIB=1)"
)
def test_a_1_gib_tensor_crosses_processes_through_the_engine(owner: TensorConnector, tmp_path: Path) -> None:
    _exchange(owner, tmp_path, GiB)


def test_without_the_extra_the_reader_falls_back_to_tcp(owner: TensorConnector, tmp_path: Path) -> None:
    store = Store("fallback", owner)
    original = torch.randn(1000, 3, dtype=torch.float64)
    store.put(original, key="t")
    reader = Reader(tmp_path, blocked=True)
    try:
        got = reader.get(store.config(), "t", _segment(owner, "t"))
    finally:
        reader.close()
    assert "error" not in got, got
    assert got["transport"].startswith("shm/cuda-ipc on host, else tcp")
    assert got["checksum"] == _checksum(original) and not got["mapped"]


def test_forced_engine_reads_bytes_tensors_and_knows_evictions(owner: TensorConnector) -> None:
    store = Store("forced", owner)
    array = np.arange(10_000, dtype=np.float32)
    tensor = torch.arange(12, dtype=torch.int16).reshape(3, 4)
    store.put(array, key="numpy")
    store.put(tensor, key="tensor")
    store.put(torch.empty(0), key="empty")
    rdma = store.config().model_copy(update={"options": {**store.config().options, "transport": "rdma"}})
    reader = Store("reader", TensorConnector.connect(rdma.options))
    try:
        assert np.array_equal(reader.get("numpy"), array)
        assert torch.equal(reader.get("tensor"), tensor)
        assert reader.get("empty").numel() == 0
        assert reader.connector.transport_summary() == "nixl (UCX) only"  # type: ignore[attr-defined]
        store.evict("tensor")
        with pytest.raises(ObjectEvictedError):
            reader.get("tensor")
        with pytest.raises(ObjectNotFoundError):
            reader.get("never-put")
    finally:
        reader.close()


def test_regions_outside_what_the_owner_registered_are_refused(owner: TensorConnector) -> None:
    Store("bounds", owner).put(torch.ones(1 << 16), key="t")
    assert owner._owner is not None
    info = owner._owner.engine_info()
    region = owner._owner.region("t")
    assert info is not None and region is not None
    engine = transfer.ReaderEngine(info, timeout=10)
    target = np.zeros(region.length, dtype=np.uint8)
    try:
        engine.read(region, int(target.ctypes.data), region.length)
        assert np.array_equal(target.view(np.float32), np.ones(1 << 16, dtype=np.float32))
        beyond = region.model_copy(update={"address": region.address + 4096})
        with pytest.raises(StoreError, match="NIXL refused"):
            engine.read(beyond, int(target.ctypes.data), region.length)
        with pytest.raises(StoreError, match="bytes for an object"):
            engine.read(region, int(target.ctypes.data), region.length - 1)
        stranger = region.model_copy(update={"agent": "freight-owner-someone-else"})
        with pytest.raises(StoreError, match="refused"):
            engine.read(stranger, int(target.ctypes.data), region.length)
    finally:
        engine.close()


def test_a_config_whose_engine_is_not_the_owners_is_refused(owner: TensorConnector) -> None:
    store = Store("forged", owner)
    store.put(torch.ones(8), key="t")
    config = store.config()
    other = transfer.OwnerEngine()  # a real agent, but not the one the owner serves
    forged = {**config.options, "transport": "rdma", "engine": other.info.model_dump()}
    reader = Store("reader", TensorConnector.connect(forged))
    try:
        with pytest.raises(StoreError, match="not the one its owner"):
            reader.get("t")
    finally:
        reader.close()
        other.close()


def _listening_addresses() -> set[str]:
    """IPv4/IPv6 addresses this process listens on (from /proc: its socket inodes in LISTEN state)."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            link = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                found.add(fields[1].split(":")[0])
    return found


def test_an_owner_on_loopback_listens_on_loopback_only() -> None:
    before = _listening_addresses()
    engine = transfer.OwnerEngine("127.0.0.1")
    try:
        new = _listening_addresses() - before
        loopback = {"0100007F", "00000000000000000000000001000000"}  # 127.0.0.1 and ::1 as /proc writes them
        assert new <= loopback, f"UCX listens beyond loopback: {new}"
    finally:
        engine.close()


def test_rdma_forced_against_an_owner_without_an_engine_is_a_config_error() -> None:
    from freight.errors import ConfigError

    conn = TensorConnector(
        f"rdma-tcp-{uuid.uuid4().hex[:8]}", transport="tcp"
    )  # an owner that starts no engine
    try:
        options = Store("plain", conn).config().options
        assert "engine" not in options
        with pytest.raises(ConfigError, match=r"published no transfer engine .*freight\[rdma\]"):
            TensorConnector.connect({**options, "transport": "rdma"})
    finally:
        conn.shutdown()


def test_a_region_that_does_not_match_the_object_is_refused(
    owner: TensorConnector, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store("lying", owner)
    store.put(torch.ones(1024), key="t")
    rdma = {**store.config().options, "transport": "rdma"}
    assert owner._owner is not None
    honest = owner._owner.region

    def larger(key: str) -> transfer.Region | None:  # an owner offering more bytes than the object has
        region = honest(key)
        return None if region is None else region.model_copy(update={"length": region.length * 2})

    monkeypatch.setattr(owner._owner, "region", larger)
    reader = Store("reader", TensorConnector.connect(rdma))
    try:
        with pytest.raises(StoreError, match="offered 8192 bytes for an object of 4096; refused"):
            reader.get("t")
    finally:
        reader.close()
