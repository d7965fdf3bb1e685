"""One behaviour suite over every connector: file, memory, tensor (shared memory) and S3 (moto's server).

Each test runs four times, once per connector, through the raw connector and through a `Store`.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from freight.connectors import Connector, FileConnector, MemoryConnector, S3Connector, TensorConnector
from freight.errors import InvalidKeyError, ObjectNotFoundError
from freight.stores import Store

KINDS = ["file", "memory", "tensor", "s3"]

BAD_KEYS: list[Any] = [
    "",
    "/etc/passwd",
    "../escape",
    "a/../../b",
    "a//b",
    "./a",
    "a/.",
    "C:/windows",
    "back\\slash",
    "sp ace",
    "tilde~tmp",
    "x" * 513,
    "s" * 201,
    None,
    42,
    b"bytes",
]


@pytest.fixture(params=KINDS)
def connector(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Connector]:
    kind = request.param
    conn: Connector
    if kind == "file":
        conn = FileConnector(tmp_path / "store")
    elif kind == "memory":
        conn = MemoryConnector(f"suite-{uuid.uuid4().hex[:8]}")
    elif kind == "tensor":
        conn = TensorConnector(f"suite-{uuid.uuid4().hex[:8]}")
    else:
        bucket = request.getfixturevalue("s3_bucket")
        conn = S3Connector(bucket, prefix="suite", part_size=5 << 20)
    yield conn
    if isinstance(conn, TensorConnector):
        conn.shutdown()
    elif isinstance(conn, MemoryConnector):
        conn.destroy()
    conn.close()


@pytest.fixture
def store(connector: Connector) -> Store:
    return Store(f"suite-{connector.kind}", connector)


def _keys(connector: Connector, prefix: str = "") -> list[str]:
    return sorted(info.key for info in connector.list(prefix))


# -- raw bytes -----------------------------------------------------------------------------------------------


def test_bytes_round_trip_single_and_vectored(connector: Connector) -> None:
    payload = np.random.default_rng(1).integers(0, 256, 100_000, dtype=np.uint8)
    connector.put("one", b"hello")
    connector.put("many/parts", [b"head", memoryview(payload), bytearray(b"tail")])
    connector.put("empty", b"")
    assert bytes(connector.get("one")) == b"hello"
    assert bytes(connector.get("many/parts")) == b"head" + payload.tobytes() + b"tail"
    assert bytes(connector.get("empty")) == b""
    assert connector.exists("many/parts") and not connector.exists("many")
    assert _keys(connector) == ["empty", "many/parts", "one"]
    assert _keys(connector, "many/") == ["many/parts"]
    sizes = {i.key: i.size for i in connector.list()}
    assert sizes["many/parts"] == 8 + payload.nbytes


def test_overwrite_replaces_the_object(connector: Connector) -> None:
    connector.put("k", b"first version")
    connector.put("k", b"second")
    assert bytes(connector.get("k")) == b"second"
    assert _keys(connector) == ["k"]


# -- numpy, tensors, JSON through a Store --------------------------------------------------------------------

ARRAYS: dict[str, Callable[[], np.ndarray[Any, Any]]] = {
    "float64": lambda: np.random.default_rng(0).standard_normal((64, 33)),
    "float32-big-endian": lambda: np.arange(100, dtype=">f4").reshape(10, 10),
    "int16": lambda: np.arange(-50, 50, dtype=np.int16),
    "uint8": lambda: np.arange(256, dtype=np.uint8),
    "bool": lambda: np.array([True, False, True]),
    "complex128": lambda: np.array([1 + 2j, -3j]),
    "float16": lambda: np.linspace(0, 1, 7, dtype=np.float16),
    "datetime64": lambda: np.array(["2024-01-01", "2025-06-30"], dtype="datetime64[ns]"),
    "zero-d": lambda: np.array(3.5),
    "empty": lambda: np.empty((0, 4), dtype=np.int32),
    "non-contiguous": lambda: np.arange(200, dtype=np.int64).reshape(10, 20)[::2, 3::4],
    "fortran": lambda: np.asfortranarray(np.arange(12, dtype=np.float64).reshape(3, 4)),
    "structured": lambda: np.array([(1, 2.0)], dtype=[("a", "<i4"), ("b", ">f8")]),
}


@pytest.mark.parametrize("name", sorted(ARRAYS))
def test_numpy_round_trip(store: Store, name: str) -> None:
    original = ARRAYS[name]()
    ref = store.put(original)
    assert ref.serializer == "numpy"
    assert ref.descriptor is not None and ref.descriptor.shape == original.shape
    assert ref.descriptor.dtype == np.lib.format.dtype_to_descr(original.dtype) or name == "structured"
    back = store.get(ref.key, checksum=ref.checksum)
    assert back.dtype == original.dtype and back.shape == original.shape
    np.testing.assert_array_equal(back, original)
    mapped = store.get(ref.key, mmap=True)
    np.testing.assert_array_equal(mapped, original)


def test_large_object_round_trip(store: Store) -> None:
    """Above 4 MiB: checksums overlap the transfer, S3 goes multipart (5 MiB parts here)."""
    big = np.random.default_rng(9).standard_normal((11 << 20) // 8)
    ref = store.put(big, key="large")
    assert ref.size > big.nbytes
    np.testing.assert_array_equal(store.get("large", checksum=ref.checksum), big)
    refs = store.put_batch([big[: 1 << 19], big], ["large-a", "large-b"])
    got = store.get_batch([r.key for r in refs], checksums=[r.checksum for r in refs])
    np.testing.assert_array_equal(got[1], big)


def test_tensor_round_trip(store: Store) -> None:
    torch = pytest.importorskip("torch")
    cases = [
        torch.randn(17, 5),
        torch.arange(24, dtype=torch.int64).reshape(2, 3, 4).transpose(0, 2),  # non-contiguous
        torch.tensor(7, dtype=torch.int32),  # 0-d
        torch.empty(0, 3),
        torch.linspace(0, 1, 9).to(torch.bfloat16),
        torch.tensor([True, False]),
    ]
    for original in cases:
        ref = store.put(original)
        assert ref.serializer == "torch"
        back = store.get(ref.key)
        assert back.dtype == original.dtype and back.shape == original.shape
        assert torch.equal(back.cpu(), original)


def test_json_and_bytes_objects(store: Store) -> None:
    for obj in ({"a": [1, 2, {"b": None}]}, "text", 3, b"raw bytes", bytearray(b"ba")):
        ref = store.put(obj)
        back = store.get(ref.key, checksum=ref.checksum)
        assert back == (bytes(obj) if isinstance(obj, bytearray) else obj)


# -- batches, missing keys, eviction -------------------------------------------------------------------------


def test_batch_put_get_and_missing(store: Store) -> None:
    objs = [np.full(1000, i, dtype=np.int32) for i in range(6)] + [b"x" * 10, {"n": 1}]
    keys = [f"batch/{i}" for i in range(len(objs))]
    refs = store.put_batch(objs, keys)
    assert [r.key for r in refs] == keys
    back = store.get_batch(keys, checksums=[r.checksum for r in refs])
    for got, obj in zip(back[:6], objs[:6], strict=True):
        np.testing.assert_array_equal(got, obj)
    assert back[6:] == [b"x" * 10, {"n": 1}]
    raw = store.connector.get_batch(["batch/0", "batch/missing", "batch/7"])
    assert raw[0] is not None and raw[1] is None and raw[2] is not None
    with pytest.raises(ObjectNotFoundError, match="batch/missing"):
        store.get_batch(["batch/1", "batch/missing"])
    generated = store.put_batch([b"a", b"b"])
    assert len({r.key for r in generated}) == 2


def test_missing_key_is_a_clear_error(store: Store) -> None:
    with pytest.raises(ObjectNotFoundError) as info:
        store.get("never/written")
    assert "never/written" in str(info.value) and store.name in str(info.value)
    with pytest.raises(ObjectNotFoundError, match="never/written"):
        store.connector.get("never/written")
    assert not store.exists("never/written")
    assert store.evict("never/written") is False
    assert store.stats.misses == 1


def test_eviction(store: Store) -> None:
    refs = [store.put(np.arange(10) * i, key=f"ev/{i}") for i in range(4)]
    assert store.evict(refs[0].key) is True
    assert store.evict(refs[0].key) is False
    with pytest.raises(ObjectNotFoundError, match="ev/0"):
        store.get(refs[0].key)
    assert store.evict_batch([r.key for r in refs] + ["ev/none"]) == 3
    assert _keys(store.connector, "ev/") == []
    assert store.stats.evictions == 4


@pytest.mark.parametrize("bad", BAD_KEYS, ids=lambda k: repr(k)[:20])
def test_bad_keys_are_refused_and_nothing_is_written(connector: Connector, bad: Any) -> None:
    for call in (
        lambda: connector.put(bad, b"data"),
        lambda: connector.get(bad),
        lambda: connector.exists(bad),
        lambda: connector.evict(bad),
        lambda: connector.put_batch([(bad, b"data")]),
        lambda: connector.get_batch([bad]),
    ):
        with pytest.raises(InvalidKeyError):
            call()
    assert _keys(connector) == []


def test_store_refuses_bad_keys(store: Store) -> None:
    with pytest.raises(InvalidKeyError, match="traverse"):
        store.put(b"x", key="../../etc/passwd")
    with pytest.raises(InvalidKeyError, match="absolute"):
        store.get("/etc/passwd")


# -- concurrency ---------------------------------------------------------------------------------------------


def test_concurrent_writers_on_one_key(store: Store) -> None:
    """Writers race on one key while readers read it: every read is one complete, verified version."""
    writers, rounds = 4, 5 if store.connector.kind == "s3" else 25
    versions = {w: np.full(50_000, w, dtype=np.int64) for w in range(writers)}
    store.put(versions[0], key="hot")
    errors: list[BaseException] = []
    stop = threading.Event()
    seen: set[int] = set()

    def write(w: int) -> None:
        try:
            for _ in range(rounds):
                store.put(versions[w], key="hot")
        except BaseException as exc:
            errors.append(exc)

    def read() -> None:
        try:
            while not stop.is_set():
                arr = store.get("hot")  # the header checksum is verified on every read
                assert arr.shape == (50_000,) and (arr == arr[0]).all(), "a torn object was read"
                seen.add(int(arr[0]))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    readers = [threading.Thread(target=read) for _ in range(2)]
    for t in readers + threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    for t in readers:
        t.join()
    assert not errors, errors
    final = store.get("hot")
    assert int(final[0]) in versions and (final == final[0]).all()
    assert seen <= set(versions)
    assert _keys(store.connector) == ["hot"]


# -- configs -------------------------------------------------------------------------------------------------


def test_store_rebuilt_from_config_reads_the_same_objects(store: Store) -> None:
    ref = store.put(np.arange(1000, dtype=np.float32), key="shared/obj")
    cfg = store.config()
    assert cfg.connector == store.connector.kind
    assert "secret" not in str(cfg.options).lower()
    rebuilt = Store.from_config(cfg)
    np.testing.assert_array_equal(
        rebuilt.get(ref.key, checksum=ref.checksum), np.arange(1000, dtype=np.float32)
    )
    rebuilt.close()
