"""The self-describing object header, checksums, store configs, the connector factory, torch-free imports."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import fastavro
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from freight.connectors import MemoryConnector
from freight.errors import ConfigError, IntegrityError, ObjectEvictedError, StoreError
from freight.schemas import schema_dict
from freight.schemas.events import ArrayDescriptor
from freight.stores import (
    Store,
    StoreConfig,
    build_connector,
    checksums,
    decode_header,
    encode_header,
    factory,
    register_connector,
)
from freight.stores.framing import ALIGN, FIXED_SIZE

# -- header --------------------------------------------------------------------------------------------------


@given(
    serializer=st.sampled_from(["bytes", "numpy", "torch", "json", "custom-x"]),
    payload_len=st.integers(0, 2**40),
    checksum=st.one_of(
        st.none(), st.text("0123456789abcdef", min_size=16, max_size=16).map("xxh3_64:{}".format)
    ),
    shape=st.lists(st.integers(0, 10**6), max_size=6),
)
def test_header_round_trip_and_alignment(
    serializer: str, payload_len: int, checksum: str | None, shape: list[int]
) -> None:
    descriptor = ArrayDescriptor("<f8", tuple(shape), "cpu") if shape else None
    header = encode_header(serializer, payload_len, checksum, descriptor)
    assert len(header) % ALIGN == 0
    frame = decode_header(header, "test object", whole=False)
    assert (frame.serializer, frame.payload_len, frame.checksum, frame.descriptor) == (
        serializer,
        payload_len,
        checksum,
        descriptor,
    )
    assert frame.header_len == len(header)


def test_every_header_byte_is_protected() -> None:
    header = encode_header("numpy", 8, "xxh3_64:0011223344556677", ArrayDescriptor("<f8", (1,)))
    body = header + b"\0" * 8
    for i in range(FIXED_SIZE + 40):
        damaged = bytearray(body)
        damaged[i] ^= 0x10
        with pytest.raises((IntegrityError, StoreError)):
            decode_header(bytes(damaged), "obj")


def test_newer_framing_version_says_to_upgrade() -> None:
    header = bytearray(encode_header("bytes", 0, None, None))
    header[4] = 99
    with pytest.raises(StoreError, match="newer Freight"):
        decode_header(bytes(header), "obj")


def test_checksum_helpers() -> None:
    data = [b"ab", memoryview(b"cd")]
    assert checksums.compute("xxh3_64", data) == checksums.compute("xxh3_64", [b"abcd"])
    assert checksums.parse("SHA256:ABCD".replace("SHA256", "sha256")) == ("sha256", "abcd")
    for bad in ("xxh3_64", "md5:00", ":00", "xxh3_64:"):
        with pytest.raises(IntegrityError):
            checksums.parse(bad)
    with pytest.raises(ConfigError, match="unknown checksum algorithm"):
        checksums.check_algorithm("crc32")


def test_header_struct_layout_is_stable() -> None:
    header = encode_header("bytes", 5, None, None)
    magic, version, _flags, meta_len, header_len, payload_len, _hash = struct.unpack_from("<4sBBHIQQ", header)
    assert (magic, version, header_len, payload_len) == (b"FRGT", 1, 64, 5)
    assert json.loads(header[FIXED_SIZE : FIXED_SIZE + meta_len]) == {"s": "bytes", "c": None, "d": None}


# -- configs and factory -------------------------------------------------------------------------------------


def test_store_config_avro_record_matches_the_schema() -> None:
    cfg = StoreConfig(
        name="frames-s3", connector="s3", options={"bucket": "b", "prefix": "p"}, checksum="sha256"
    )
    record = cfg.to_avro(updated_at=1_700_000_000_000)
    schema = fastavro.parse_schema(schema_dict("store_config"))
    assert fastavro.validate(record, schema)
    assert StoreConfig.from_avro(record) == cfg


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "bad name"}, "store name"),
        ({"name": ""}, "store name"),
        ({"checksum": "md5"}, "unknown checksum algorithm"),
        ({"options": {"password": "x"}}, "credentials"),
        ({"options": {"when": object()}}, "JSON values"),
    ],
)
def test_store_config_validation(kwargs: dict[str, object], message: str) -> None:
    base: dict[str, object] = {"name": "ok", "connector": "memory", "options": {"name": "m"}}
    with pytest.raises(ValueError, match=message):
        StoreConfig.model_validate({**base, **kwargs})


def test_unknown_connector_kind_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown connector kind 'ftp'.*file, memory, s3, tensor"):
        build_connector("ftp", {})


def test_registered_connector_kind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(factory, "CONNECTOR_KINDS", dict(factory.CONNECTOR_KINDS))
    register_connector("files-too", "freight.connectors.file:FileConnector")
    conn = build_connector("files-too", {"root": str(tmp_path)})
    conn.put("k", b"v")
    assert bytes(conn.get("k")) == b"v"
    with pytest.raises(ConfigError, match="module:Class"):
        register_connector("broken", "no-colon")


def test_bad_store_names_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="store name"):
        Store("has space", MemoryConnector())


# -- memory connector ----------------------------------------------------------------------------------------


def test_memory_connector_is_shared_by_name_in_the_process() -> None:
    a = Store("mem", MemoryConnector("shared-space"))
    ref = a.put(np.arange(5), key="x")
    b = Store.from_config(a.config())
    np.testing.assert_array_equal(b.get("x", checksum=ref.checksum), np.arange(5))
    assert b.evict("x")
    with pytest.raises(ObjectEvictedError, match="evicted"):
        a.get("x")
    other = Store("mem2", MemoryConnector())  # a private space
    assert not other.exists("x")
    assert isinstance(a.connector, MemoryConnector)
    a.connector.destroy()


def test_stats_count_bytes_objects_hits_and_misses() -> None:
    store = Store("stats", MemoryConnector())
    ref = store.put(b"12345")
    store.get(ref.key)
    with pytest.raises(KeyError):
        store.get("missing")
    stats = store.stats
    assert stats.objects_written == 1 and stats.bytes_written == ref.size
    assert (stats.reads, stats.hits, stats.misses) == (2, 1, 1) and stats.bytes_read == ref.size


def test_inline_payloads_round_trip_without_framing() -> None:
    store = Store("inline", MemoryConnector())
    ser = store.serialize(np.arange(3, dtype=np.int8))
    assert ser.to_bytes() == bytes([0, 1, 2])
    back = store.deserialize(ser.serializer, ser.to_bytes(), ser.descriptor)
    np.testing.assert_array_equal(back, np.arange(3, dtype=np.int8))


# -- optional torch ------------------------------------------------------------------------------------------


def test_stores_and_connectors_import_and_work_without_torch() -> None:
    probe = (
        "import sys; sys.modules['torch'] = None\n"
        "import numpy as np\n"
        "import freight.connectors, freight.stores, freight.connectors.tensor\n"
        "from freight.stores import Store\n"
        "from freight.connectors import MemoryConnector, TensorConnector\n"
        "s = Store('no-torch', MemoryConnector())\n"
        "r = s.put(np.arange(4))\n"
        "assert s.get(r.key).sum() == 6\n"
        "t = Store('bytes-only', TensorConnector())\n"
        "assert t.get(t.put(b'abc').key) == b'abc'\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
