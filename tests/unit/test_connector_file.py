"""File store specifics: memory-mapped gets, integrity errors, temporary files, options."""

from __future__ import annotations

import mmap
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xxhash

from freight.connectors import FileConnector
from freight.errors import ConfigError, IntegrityError, ObjectNotFoundError, StoreError
from freight.stores import Store, build_connector


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store("files", FileConnector(tmp_path / "objects"))


def _root_buffer(arr: np.ndarray[Any, Any]) -> Any:
    base: Any = arr
    while True:
        if isinstance(base, np.ndarray) and base.base is not None:
            base = base.base
        elif isinstance(base, memoryview):
            base = base.obj
        else:
            return base


def _object_file(store: Store, key: str) -> Path:
    assert isinstance(store.connector, FileConnector)
    return store.connector.root / key


def test_mapped_get_copies_nothing_and_is_aligned(store: Store) -> None:
    original = np.random.default_rng(0).standard_normal((256, 128))
    ref = store.put(original, key="arr")
    mapped = store.get(ref.key, mmap=True)
    np.testing.assert_array_equal(mapped, original)
    assert isinstance(_root_buffer(mapped), mmap.mmap), "a mapped get must wrap the file's memory map"
    assert not mapped.flags.writeable and not mapped.flags.owndata
    assert mapped.ctypes.data % 64 == 0
    read = store.get(ref.key)
    assert read.flags.writeable and read.ctypes.data % 16 == 0
    assert not isinstance(_root_buffer(read), mmap.mmap)


def test_mapped_object_survives_eviction_and_overwrite(store: Store) -> None:
    store.put(np.arange(1000), key="arr")
    mapped = store.get("arr", mmap=True)
    store.put(np.zeros(1000, dtype=np.int64), key="arr")  # renamed over: the mapping keeps the old file
    store.evict("arr")
    np.testing.assert_array_equal(mapped, np.arange(1000))


def test_corrupt_payload_is_an_integrity_error_naming_the_key(store: Store) -> None:
    ref = store.put(np.arange(10_000, dtype=np.int32), key="data/obj")
    path = _object_file(store, "data/obj")
    raw = bytearray(path.read_bytes())
    raw[-5] ^= 0xFF
    path.write_bytes(bytes(raw))
    for mmap_ in (False, True):
        with pytest.raises(IntegrityError, match=r"'data/obj' in store 'files' is corrupt"):
            store.get(ref.key, mmap=mmap_)


def test_corrupt_header_and_truncation_are_integrity_errors(store: Store) -> None:
    store.put(np.arange(100), key="h")
    path = _object_file(store, "h")
    good = path.read_bytes()
    bad = bytearray(good)
    bad[30] ^= 0x01  # inside the metadata JSON
    path.write_bytes(bytes(bad))
    with pytest.raises(IntegrityError, match="corrupt header"):
        store.get("h")
    path.write_bytes(good[:-8])
    with pytest.raises(IntegrityError, match="truncated"):
        store.get("h")
    path.write_bytes(b"FRG")
    with pytest.raises(IntegrityError, match="shorter than a Freight header"):
        store.get("h")
    store.connector.put("foreign", b"not written by a store, but long enough for a header")
    with pytest.raises(IntegrityError, match="does not start with a Freight header"):
        store.get("foreign")


def test_event_checksum_is_verified(store: Store) -> None:
    payload = np.arange(500, dtype=np.float64)
    ref = store.put(payload, key="k")
    assert ref.checksum == f"xxh3_64:{xxhash.xxh3_64_hexdigest(payload.tobytes())}"
    np.testing.assert_array_equal(store.get("k", checksum=ref.checksum), payload)
    np.testing.assert_array_equal(
        store.get("k", checksum=ref.checksum.upper().replace("XXH3", "xxh3")), payload
    )
    with pytest.raises(IntegrityError, match="does not match the checksum its event recorded"):
        store.get("k", checksum="xxh3_64:0123456789abcdef")
    with pytest.raises(IntegrityError, match="algorithm:hex"):
        store.get("k", checksum="not-a-checksum")
    import hashlib

    assert store.get("k", checksum=f"sha256:{hashlib.sha256(payload.tobytes()).hexdigest()}") is not None


def test_store_without_checksums_still_verifies_an_event_checksum(tmp_path: Path) -> None:
    store = Store("plain", FileConnector(tmp_path), checksum=None)
    ref = store.put(b"payload", key="p")
    assert ref.checksum is None and store.config().checksum is None
    assert store.get("p") == b"payload"
    with pytest.raises(IntegrityError):
        store.get("p", checksum="xxh3_64:0000000000000000")


def test_other_checksum_algorithms(tmp_path: Path) -> None:
    for algorithm in ("xxh3_128", "sha256"):
        store = Store("algos", FileConnector(tmp_path / algorithm), checksum=algorithm)
        ref = store.put(np.arange(64), key="a")
        assert ref.checksum is not None and ref.checksum.startswith(f"{algorithm}:")
        np.testing.assert_array_equal(store.get("a", checksum=ref.checksum), np.arange(64))
    with pytest.raises(ConfigError, match="unknown checksum algorithm 'md5'"):
        Store("bad", FileConnector(tmp_path), checksum="md5")


def test_keys_that_collide_with_prefixes(tmp_path: Path) -> None:
    conn = FileConnector(tmp_path)
    conn.put("a/b", b"x")
    with pytest.raises(StoreError, match="use it as a prefix"):
        conn.put("a", b"y")
    with pytest.raises(StoreError, match="prefix of the key is an object"):
        conn.put("a/b/c", b"z")
    with pytest.raises(ObjectNotFoundError, match="directory"):
        conn.get("a")
    with pytest.raises(ObjectNotFoundError):
        conn.get_mapped("a")
    assert conn.evict("a") is False and conn.exists("a") is False
    assert [i.key for i in conn.list()] == ["a/b"]


def test_temporary_files_are_never_listed_and_are_cleaned_up(tmp_path: Path) -> None:
    conn = FileConnector(tmp_path)
    conn.put("dir/obj", b"complete")
    dead = tmp_path / "dir" / f"obj~999999999@{_host_tag()}~abc"
    dead.write_bytes(b"partial")
    alive = tmp_path / "dir" / f"other~{os.getpid()}@{_host_tag()}~def"
    alive.write_bytes(b"in progress")
    assert [i.key for i in conn.list()] == ["dir/obj"]
    assert conn.temp_files() == sorted([dead, alive])
    assert conn.cleanup_temp() == 1
    assert conn.temp_files() == [alive]
    assert conn.cleanup_temp(older_than_s=-1) == 1
    assert conn.temp_files() == []


def _host_tag() -> str:
    from freight.connectors import file

    return file._HOST_TAG


def test_fsync_option_and_config_round_trip(tmp_path: Path) -> None:
    conn = FileConnector(tmp_path / "durable", fsync=True, threads=2)
    conn.put("k", [b"a", b"b"])
    assert bytes(conn.get("k")) == b"ab"
    cfg = conn.config()
    assert cfg == {"root": str(tmp_path / "durable"), "fsync": True, "threads": 2}
    rebuilt = build_connector("file", cfg)
    assert isinstance(rebuilt, FileConnector) and bytes(rebuilt.get("k")) == b"ab"


def test_bad_options_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown_option"):
        build_connector("file", {"root": str(tmp_path), "unknown_option": 1})
    with pytest.raises(ConfigError, match="root"):
        build_connector("file", {})
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match=r"cannot create|not a directory"):
        FileConnector(blocker)


@pytest.mark.parametrize("hash_while_reading", [True, False])
def test_large_objects_are_verified_while_they_move(
    store: Store, hash_while_reading: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above 4 MiB the checksum is computed during the write (header written last); reads hash on a worker
    thread above a threshold (lowered here so that a 6 MiB object takes that path)."""
    from freight.stores import overlapped_hashing

    if hash_while_reading:
        monkeypatch.setattr(overlapped_hashing, "VERIFY_WHILE_READING_MIN", 1 << 20)
    big = np.random.default_rng(7).standard_normal(6 << 17)  # 6 MiB
    ref = store.put(big, key="big")
    assert ref.checksum == f"xxh3_64:{xxhash.xxh3_64_hexdigest(big.tobytes())}"
    np.testing.assert_array_equal(store.get("big", checksum=ref.checksum), big)
    import hashlib

    sha = f"sha256:{hashlib.sha256(big.tobytes()).hexdigest()}"
    np.testing.assert_array_equal(store.get("big", checksum=sha), big)
    with pytest.raises(IntegrityError, match="event recorded"):
        store.get("big", checksum="xxh3_64:" + "0" * 16)
    path = _object_file(store, "big")
    with open(path, "r+b") as f:
        f.seek(5 << 20)
        byte = f.read(1)
        f.seek(5 << 20)
        f.write(bytes([byte[0] ^ 1]))
    with pytest.raises(IntegrityError, match="'big' in store 'files' is corrupt"):
        store.get("big")
    with pytest.raises(IntegrityError, match="is corrupt"):
        store.get("big", mmap=True)


def test_large_payloads_are_written_in_small_calls_without_copies(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One huge `write` makes the kernel allocate its largest page-cache folios, which on a VM with free-page
    reporting come at a tenth of the speed of small ones (docs/benchmarks.md): no write call may exceed
    `WRITE_CHUNK`, every call writes a view of the caller's buffer (no intermediate bytes), and the object
    (payload first, deferred header last) reads back byte for byte, with an odd size that ends mid-chunk."""
    from freight.connectors import file as file_module

    calls: list[tuple[int, type]] = []
    real_write, real_pwrite = os.write, os.pwrite

    def write(fd: int, data: Any) -> int:
        calls.append((memoryview(data).nbytes, type(data)))
        return real_write(fd, data)

    def pwrite(fd: int, data: Any, offset: int) -> int:
        calls.append((memoryview(data).nbytes, type(data)))
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(os, "write", write)
    monkeypatch.setattr(os, "pwrite", pwrite)
    big = np.random.default_rng(3).integers(0, 255, (9 << 20) + 12345, dtype=np.uint8)
    ref = store.put(big, key="chunked")
    assert calls and max(n for n, _ in calls) <= file_module.WRITE_CHUNK
    assert sum(n for n, _ in calls) == ref.size
    assert all(kind is memoryview for n, kind in calls if n == file_module.WRITE_CHUNK)
    np.testing.assert_array_equal(store.get("chunked", mmap=True), big)
    np.testing.assert_array_equal(store.get("chunked"), big)
