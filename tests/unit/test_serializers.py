"""Serializers and their registry: raw-bytes arrays (never pickled), tensors, JSON, pickle only on request."""

from __future__ import annotations

import pickle
from typing import Any

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from freight.errors import PickleDisabledError, SerializationError
from freight.schemas.events import ArrayDescriptor
from freight.stores import (
    JsonSerializer,
    NumpySerializer,
    SerializedObject,
    SerializerRegistry,
    Store,
    TorchSerializer,
)
from freight.stores.serializers import dtype_from_str, dtype_to_str


def _payload(ser: SerializedObject) -> bytes:
    return b"".join(bytes(memoryview(b)) for b in ser.buffers)


def _round_trip(registry: SerializerRegistry, obj: object, name: str | None = None) -> Any:
    ser = registry.serialize(obj, name)
    assert ser.nbytes == len(_payload(ser))
    return registry.deserialize(ser.serializer, _payload(ser), ser.descriptor)


class Point:
    def __init__(self, x: int) -> None:
        self.x = x

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Point) and other.x == self.x

    __hash__ = None  # type: ignore[assignment]


def test_registry_picks_safe_serializers() -> None:
    reg = SerializerRegistry()
    assert reg.for_object(b"x").name == "bytes"
    assert reg.for_object(bytearray(b"x")).name == "bytes"
    assert reg.for_object(memoryview(b"x")).name == "bytes"
    assert reg.for_object(np.zeros(3)).name == "numpy"
    assert reg.for_object({"a": 1}).name == "json"
    assert reg.for_object(None).name == "json"
    assert reg.names() == ["bytes", "numpy", "torch", "json"]


def test_pickle_is_off_by_default_and_says_how_to_enable_it() -> None:
    reg = SerializerRegistry()
    with pytest.raises(PickleDisabledError) as info:
        reg.serialize(Point(1))
    message = str(info.value)
    assert "Point" in message and "FREIGHT_ALLOW_PICKLE=1" in message and "allow_pickle=True" in message
    with pytest.raises(PickleDisabledError, match="FREIGHT_ALLOW_PICKLE=1"):
        reg.deserialize("pickle", pickle.dumps(Point(1)), None)
    with pytest.raises(PickleDisabledError):
        reg.serialize(Point(1), "pickle")
    with pytest.raises(PickleDisabledError, match="Python objects"):
        reg.serialize(np.array([Point(1)], dtype=object))


def test_pickle_when_enabled() -> None:
    reg = SerializerRegistry(allow_pickle=True)
    assert reg.for_object(Point(2)).name == "pickle"
    assert _round_trip(reg, Point(2)) == Point(2)
    assert _round_trip(reg, (1, "a"), "pickle") == (1, "a")


def test_store_reads_the_pickle_setting_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from freight.connectors import MemoryConnector

    monkeypatch.setenv("FREIGHT_ALLOW_PICKLE", "1")
    store = Store("pickles", MemoryConnector())
    assert store.get(store.put(Point(3)).key) == Point(3)
    strict = Store("strict", store.connector, allow_pickle=False)
    with pytest.raises(PickleDisabledError):
        strict.put(Point(3))
    monkeypatch.delenv("FREIGHT_ALLOW_PICKLE")
    with pytest.raises(PickleDisabledError):
        Store("default", store.connector).put(Point(3))


def test_custom_serializers_come_first_and_names_are_unique() -> None:
    class PointSerializer:
        name = "point"

        def can_serialize(self, obj: object) -> bool:
            return isinstance(obj, Point)

        def serialize(self, obj: Any) -> SerializedObject:
            data = str(obj.x).encode()
            return SerializedObject(self.name, [data], len(data))

        def deserialize(self, payload: Any, descriptor: ArrayDescriptor | None) -> Any:
            return Point(int(bytes(payload)))

    reg = SerializerRegistry()
    reg.register(PointSerializer())
    assert reg.for_object(Point(5)).name == "point"
    assert _round_trip(reg, Point(5)) == Point(5)
    with pytest.raises(SerializationError, match="already registered"):
        reg.register(PointSerializer())
    with pytest.raises(SerializationError, match="already registered"):
        reg.register(JsonSerializer())
    reg.register(PointSerializer(), replace=True)
    with pytest.raises(SerializationError, match="not a Serializer"):
        reg.register(object())  # type: ignore[arg-type]
    with pytest.raises(SerializationError, match="unknown serializer 'nope'"):
        reg.get("nope")
    with pytest.raises(SerializationError, match="cannot take"):
        reg.serialize({"a": 1}, "numpy")


def test_bytes_like_objects() -> None:
    reg = SerializerRegistry()
    assert _round_trip(reg, b"abc") == b"abc"
    assert _round_trip(reg, bytearray(b"abc")) == b"abc"
    ints = np.arange(4, dtype=np.int32)
    assert _round_trip(reg, memoryview(ints)) == ints.tobytes()  # a non-byte format is cast, not refused
    strided = memoryview(np.arange(10, dtype=np.uint8))[::2]
    assert _round_trip(reg, strided) == bytes(range(0, 10, 2))


def test_json_round_trip_and_errors() -> None:
    reg = SerializerRegistry()
    obj = {"s": "é", "n": [1, 2.5, None, True], "nested": {"k": []}}
    assert _round_trip(reg, obj) == obj
    with pytest.raises(SerializationError, match="JSON"):
        reg.serialize({"bad": {1, 2}}, "json")
    with pytest.raises(SerializationError, match="not valid JSON"):
        reg.deserialize("json", b"{nope", None)


# -- numpy ---------------------------------------------------------------------------------------------------

DTYPES = ["u1", "i2", "<i4", ">i4", "<i8", ">u8", "<f2", "<f4", ">f4", "<f8", ">f8", "<c8", ">c16", "?",
          "<M8[ns]", ">m8[s]", "<U7", "S5", "V4"]  # fmt: skip


@pytest.mark.parametrize("dtype", DTYPES)
def test_numpy_dtypes_keep_byte_order_and_are_raw_bytes(dtype: str) -> None:
    arr = np.zeros((3, 2), dtype=dtype)
    ser = NumpySerializer().serialize(arr)
    assert ser.descriptor is not None and ser.descriptor.dtype == np.dtype(dtype).str
    assert _payload(ser) == arr.tobytes(), "arrays are stored as their raw bytes, never pickled"
    back = NumpySerializer().deserialize(_payload(ser), ser.descriptor)
    assert back.dtype == arr.dtype and back.shape == arr.shape
    np.testing.assert_array_equal(back, arr)


def test_numpy_shapes_and_layouts() -> None:
    s = NumpySerializer()
    cases = [
        np.array(2.5),
        np.empty((0,), dtype=np.int8),
        np.empty((3, 0, 2)),
        np.arange(60).reshape(3, 4, 5).transpose(2, 0, 1),
        np.arange(20.0)[::3],
        np.asfortranarray(np.ones((4, 3))),
        np.array([(1, 2.0, b"ab")], dtype=[("a", "<i2"), ("b", ">f8"), ("c", "S2")]),
    ]
    for arr in cases:
        ser = s.serialize(arr)
        back = s.deserialize(_payload(ser), ser.descriptor)
        assert back.shape == arr.shape and back.dtype == arr.dtype
        np.testing.assert_array_equal(back, arr)
        assert back.flags.c_contiguous


def test_numpy_payload_is_wrapped_without_copy() -> None:
    arr = np.arange(1000, dtype=np.float64)
    buf = bytearray(arr.tobytes())
    back = NumpySerializer().deserialize(memoryview(buf), ArrayDescriptor("<f8", (1000,)))
    assert np.shares_memory(back, np.frombuffer(buf, dtype=np.uint8))
    readonly = NumpySerializer().deserialize(bytes(buf), ArrayDescriptor("<f8", (10, 100)))
    assert not readonly.flags.writeable


def test_numpy_descriptor_mismatch_is_an_error() -> None:
    with pytest.raises(SerializationError, match="needs 4 x 8"):
        NumpySerializer().deserialize(b"\0" * 16, ArrayDescriptor("<f8", (2, 2)))
    with pytest.raises(SerializationError, match="descriptor"):
        NumpySerializer().deserialize(b"", None)
    with pytest.raises(SerializationError, match="unknown numpy dtype"):
        dtype_from_str("<q17")


@settings(max_examples=60, deadline=None)
@given(
    hnp.arrays(
        dtype=st.one_of(hnp.scalar_dtypes(), hnp.byte_string_dtypes(), hnp.unicode_string_dtypes()),
        shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5),
    ),
    st.booleans(),
)
def test_any_numpy_array_round_trips(arr: np.ndarray[Any, Any], reverse: bool) -> None:
    if reverse and arr.ndim:
        arr = arr[::-1]
    assert dtype_from_str(dtype_to_str(arr.dtype)) == arr.dtype
    ser = NumpySerializer().serialize(arr)
    back = NumpySerializer().deserialize(_payload(ser), ser.descriptor)
    assert back.dtype == arr.dtype and back.shape == arr.shape
    np.testing.assert_array_equal(back, arr)


# -- torch ---------------------------------------------------------------------------------------------------


def test_torch_tensors() -> None:
    torch = pytest.importorskip("torch")
    s = TorchSerializer()
    cases = [
        torch.randn(5, 4),
        torch.arange(10, dtype=torch.int16)[::3],
        torch.tensor(3.0, dtype=torch.float64),
        torch.empty(2, 0),
        torch.ones(3, dtype=torch.bfloat16),
        torch.tensor([1 + 2j], dtype=torch.complex64),
        torch.randn(3, requires_grad=True),
    ]
    for t in cases:
        ser = s.serialize(t)
        assert ser.descriptor is not None and ser.descriptor.dtype == str(t.dtype).removeprefix("torch.")
        writable = s.deserialize(bytearray(_payload(ser)), ser.descriptor)
        readonly = s.deserialize(_payload(ser), ser.descriptor)
        for back in (writable, readonly):
            assert back.dtype == t.dtype and back.shape == t.shape
            assert torch.equal(back, t.detach())
        readonly.add_(0)  # a read-only payload was copied: the tensor is safe to write


def test_torch_payload_wrapped_without_copy_and_device_fallback() -> None:
    torch = pytest.importorskip("torch")
    buf = bytearray(torch.arange(6, dtype=torch.float32).numpy().tobytes())
    t = TorchSerializer().deserialize(memoryview(buf), ArrayDescriptor("float32", (2, 3), "cuda:0"))
    expected = "cuda:0" if torch.cuda.is_available() else "cpu"
    assert str(t.device) == expected
    if expected == "cpu":
        t[0, 0] = 42.0
        assert np.frombuffer(buf, dtype=np.float32)[0] == 42.0, "a writable payload is wrapped, not copied"
    with pytest.raises(SerializationError, match="unknown torch dtype"):
        TorchSerializer().deserialize(b"", ArrayDescriptor("float99", (0,)))
    with pytest.raises(SerializationError, match="dense"):
        TorchSerializer().serialize(torch.eye(3).to_sparse())


def test_lookup_by_name_prefers_registered_serializers_and_guards_pickle() -> None:
    """`get(name)`: a registered serializer wins over a built-in (even one named 'pickle'); the built-in
    pickle is refused while disabled; built-ins are found by name."""

    class RawPickle:
        name = "pickle"

        def can_serialize(self, obj: object) -> bool:
            return False

        def serialize(self, obj: Any) -> SerializedObject:
            raise SerializationError("never")

        def deserialize(self, payload: Any, descriptor: ArrayDescriptor | None) -> Any:
            return ("raw", bytes(payload))

    reg = SerializerRegistry()
    assert reg.get("bytes").name == "bytes" and reg.get("json").name == "json"
    with pytest.raises(PickleDisabledError):
        reg.get("pickle")
    reg.register(RawPickle(), replace=True)
    assert reg.deserialize("pickle", b"x", None) == ("raw", b"x")  # no unpickling: the registered one


def test_resolver_inline_bytes_fast_path_keeps_registered_serializers_first() -> None:
    """Inline `bytes` objects skip the serializer lookup only while the built-in bytes serializer is the one
    that would run; a registered 'bytes' serializer still decodes them."""
    from freight.stores.resolver import StoreResolver

    resolver = StoreResolver()
    data = b"inline payload"
    assert resolver.deserialize_inline("bytes", data, None) is data
    assert resolver.deserialize_inline("json", b'{"a": 1}', None) == {"a": 1}

    class Upper:
        name = "bytes"

        def can_serialize(self, obj: object) -> bool:
            return isinstance(obj, bytes)

        def serialize(self, obj: Any) -> SerializedObject:
            return SerializedObject(self.name, [obj], len(obj))

        def deserialize(self, payload: Any, descriptor: ArrayDescriptor | None) -> Any:
            return bytes(payload).upper()

    assert resolver._serializers is not None
    resolver._serializers.register(Upper(), replace=True)
    assert resolver.deserialize_inline("bytes", data, None) == b"INLINE PAYLOAD"
