"""Serializers with an explicit registry: bytes, numpy, torch, JSON, and pickle only when enabled.

A serializer turns an object into a list of buffers (written back to back, without joining them) plus an
optional `ArrayDescriptor` (dtype, shape, device) that travels in the event, so arrays are stored as their raw
bytes and never pickled. Deserializing an array wraps the payload buffer without copying where it can.

Pickle runs arbitrary code on load, so it is off unless enabled (FREIGHT_ALLOW_PICKLE=1 or allow_pickle=True).
"""

from __future__ import annotations

import json
import math
import pickle
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, overload, runtime_checkable

import numpy as np

from freight.connectors.protocol import Buffer
from freight.errors import PickleDisabledError, SerializationError
from freight.schemas.events import ArrayDescriptor

_STRUCTURED = "json:"


class LazyBuffers(Sequence[Buffer]):
    """Buffers made on first use: a CUDA tensor is copied to the host only if its bytes are needed (a
    tensor store keeps the tensor itself, and never asks)."""

    def __init__(self, produce: Callable[[], list[Buffer]]) -> None:
        self._produce = produce
        self._items: list[Buffer] | None = None

    def _get(self) -> list[Buffer]:
        if self._items is None:
            self._items = self._produce()
        return self._items

    def __len__(self) -> int:
        return len(self._get())

    @overload
    def __getitem__(self, index: int) -> Buffer: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Buffer]: ...

    def __getitem__(self, index: int | slice) -> Buffer | Sequence[Buffer]:
        return self._get()[index]

    def __iter__(self) -> Iterator[Buffer]:
        return iter(self._get())


@dataclass
class SerializedObject:
    """An object as buffers to write back to back (`nbytes` in all) and its array descriptor, if any.

    `source` is the object itself where a connector may keep it as it is (a tensor for the tensor store).
    """

    serializer: str
    buffers: Sequence[Buffer]
    nbytes: int
    descriptor: ArrayDescriptor | None = None
    source: Any = field(default=None, repr=False, compare=False)

    def to_bytes(self) -> bytes:
        """The payload as one bytes object (a copy; for inline payloads carried in events)."""
        if len(self.buffers) == 1 and isinstance(self.buffers[0], bytes):
            return self.buffers[0]
        return b"".join(self.buffers)


@runtime_checkable
class Serializer(Protocol):
    """Turns objects of some types into buffers and back."""

    name: str

    def can_serialize(self, obj: object) -> bool: ...

    def serialize(self, obj: Any) -> SerializedObject: ...

    def deserialize(self, payload: Buffer, descriptor: ArrayDescriptor | None) -> Any: ...


def _flat_bytes(arr: np.ndarray[Any, Any]) -> memoryview:
    """A C-contiguous array's bytes as a flat byte view (works for 0-d, empty, datetime, big-endian)."""
    return arr.reshape(-1).view(np.uint8).data


# -- bytes ------------------------------------------------------------------------------------------------


class BytesSerializer:
    """bytes, bytearray and memoryview, stored as they are; read back as `bytes`."""

    name = "bytes"

    def can_serialize(self, obj: object) -> bool:
        return isinstance(obj, bytes | bytearray | memoryview)

    def serialize(self, obj: Any) -> SerializedObject:
        if not self.can_serialize(obj):
            raise SerializationError(
                f"the bytes serializer takes bytes-like objects, not {type(obj).__name__}"
            )
        view = memoryview(obj)
        if view.format != "B" or view.ndim != 1:
            view = view.cast("B") if view.c_contiguous else memoryview(view.tobytes())
        return SerializedObject(self.name, [obj if isinstance(obj, bytes) else view], view.nbytes)

    def deserialize(self, payload: Buffer, descriptor: ArrayDescriptor | None) -> Any:
        return payload if isinstance(payload, bytes) else bytes(payload)


# -- numpy ------------------------------------------------------------------------------------------------


def dtype_to_str(dtype: np.dtype[Any]) -> str:
    """numpy dtype as it travels in a descriptor: '<f8', '>i4', '<M8[ns]', or 'json:[...]' if structured."""
    if dtype.hasobject:
        raise PickleDisabledError(
            f"numpy arrays of dtype {dtype} hold Python objects, which have no raw-bytes form; convert them "
            "(e.g. to strings or numbers) or enable pickle (FREIGHT_ALLOW_PICKLE=1 / allow_pickle=True)"
        )
    descr = np.lib.format.dtype_to_descr(dtype)
    return descr if isinstance(descr, str) else _STRUCTURED + json.dumps(descr)


def dtype_from_str(text: str) -> np.dtype[Any]:
    """Inverse of `dtype_to_str`."""
    try:
        if text.startswith(_STRUCTURED):
            descr = json.loads(text[len(_STRUCTURED) :])
            return np.lib.format.descr_to_dtype([tuple(f) if isinstance(f, list) else f for f in descr])
        return np.dtype(text)
    except (TypeError, ValueError) as exc:
        raise SerializationError(f"unknown numpy dtype {text!r} in the descriptor: {exc}") from None


def _check_size(payload: memoryview, count: int, itemsize: int, what: str) -> None:
    if payload.nbytes != count * itemsize:
        raise SerializationError(
            f"{what} payload is {payload.nbytes} bytes, but the descriptor needs {count} x {itemsize} = "
            f"{count * itemsize}"
        )


def _byte_view(payload: Buffer) -> memoryview:
    view = payload if isinstance(payload, memoryview) else memoryview(payload)
    return view if view.format == "B" and view.ndim == 1 else view.cast("B")


class NumpySerializer:
    """numpy arrays as their raw C-order bytes; dtype (with byte order) and shape in the descriptor.

    A non-contiguous array is copied into C order once. Reading wraps the payload without a copy: the array
    is read-only when the payload is (a memory map, a memory-store object) and writable when it owns a
    fresh buffer (a file-store `get`).
    """

    name = "numpy"

    def can_serialize(self, obj: object) -> bool:
        return isinstance(obj, np.ndarray) and not obj.dtype.hasobject

    def serialize(self, obj: Any) -> SerializedObject:
        if not isinstance(obj, np.ndarray):
            raise SerializationError(f"the numpy serializer takes numpy arrays, not {type(obj).__name__}")
        dtype = dtype_to_str(obj.dtype)
        arr = obj if obj.flags.c_contiguous else np.ascontiguousarray(obj)
        descriptor = ArrayDescriptor(dtype, tuple(int(n) for n in arr.shape), "cpu")
        return SerializedObject(self.name, [_flat_bytes(arr)], arr.nbytes, descriptor)

    def deserialize(self, payload: Buffer, descriptor: ArrayDescriptor | None) -> Any:
        if descriptor is None:
            raise SerializationError("a numpy payload needs its descriptor (dtype and shape); none was given")
        dtype = dtype_from_str(descriptor.dtype)
        count = math.prod(descriptor.shape)
        view = _byte_view(payload)
        _check_size(view, count, dtype.itemsize, "numpy")
        return np.frombuffer(view, dtype=dtype, count=count).reshape(descriptor.shape)


# -- torch ------------------------------------------------------------------------------------------------


def _torch() -> Any:
    try:
        import torch
    except ModuleNotFoundError:
        raise SerializationError(
            "this object was stored from a torch tensor, and torch is not installed here; install it with "
            "pip install 'freight[torch]'"
        ) from None
    return torch


def torch_dtype(name: str) -> Any:
    """The torch dtype called `name` ('float32', 'bfloat16', ...)."""
    torch = _torch()
    dtype = getattr(torch, name.removeprefix("torch."), None)
    if not isinstance(dtype, torch.dtype):
        raise SerializationError(f"unknown torch dtype {name!r} in the descriptor")
    return dtype


def torch_target_device(device: str) -> str:
    """Where to rebuild a tensor recorded on `device`: that device if this process has it, else CPU."""
    if device == "cpu" or not device:
        return "cpu"
    torch = _torch()
    kind, _, index = device.partition(":")
    if kind == "cuda" and torch.cuda.is_available():
        if not index or int(index) < torch.cuda.device_count():
            return device
        return "cuda"
    return "cpu"


class TorchSerializer:
    """torch tensors as raw bytes (CPU, C order); dtype name, shape and device in the descriptor.

    Tensors of any dtype (bfloat16 included) are written through a uint8 view, so no numpy dtype is
    needed. A CUDA tensor is copied to the host to be stored; it is rebuilt on its recorded device when
    this process has that device, on the CPU otherwise. Reading wraps a writable payload without copying; a
    read-only payload (a memory map) is copied, since a tensor cannot be made read-only.
    """

    name = "torch"

    def can_serialize(self, obj: object) -> bool:
        torch = sys.modules.get("torch")
        return torch is not None and isinstance(obj, torch.Tensor)

    def serialize(self, obj: Any) -> SerializedObject:
        if not self.can_serialize(obj):
            raise SerializationError(f"the torch serializer takes torch tensors, not {type(obj).__name__}")
        torch = _torch()
        if obj.layout != torch.strided:
            raise SerializationError(f"only dense (strided) tensors can be stored, not {obj.layout}")
        tensor = obj.detach()
        descriptor = ArrayDescriptor(
            str(tensor.dtype).removeprefix("torch."), tuple(int(n) for n in tensor.shape), str(tensor.device)
        )
        nbytes = int(tensor.numel()) * int(tensor.element_size())

        def host_bytes() -> list[Buffer]:
            host = tensor.to("cpu").contiguous()
            return [memoryview(host.reshape(-1).view(torch.uint8).numpy())]

        buffers: Sequence[Buffer] = host_bytes() if tensor.device.type == "cpu" else LazyBuffers(host_bytes)
        return SerializedObject(self.name, buffers, nbytes, descriptor, source=obj)

    def deserialize(self, payload: Buffer, descriptor: ArrayDescriptor | None) -> Any:
        if descriptor is None:
            raise SerializationError("a torch payload needs its descriptor (dtype and shape); none was given")
        torch = _torch()
        dtype = torch_dtype(descriptor.dtype)
        count = math.prod(descriptor.shape)
        view = _byte_view(payload)
        _check_size(view, count, dtype.itemsize, "torch")
        if view.nbytes == 0:
            tensor = torch.empty(descriptor.shape, dtype=dtype)
        elif view.readonly:
            tensor = torch.empty(view.nbytes, dtype=torch.uint8)
            tensor.numpy()[:] = np.frombuffer(view, dtype=np.uint8)
            tensor = tensor.view(dtype).reshape(descriptor.shape)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                tensor = torch.frombuffer(view, dtype=torch.uint8).view(dtype).reshape(descriptor.shape)
        target = torch_target_device(descriptor.device)
        return tensor if target == "cpu" else tensor.to(target)


# -- JSON and pickle --------------------------------------------------------------------------------------


class JsonSerializer:
    """dicts, lists, strings, numbers, booleans and None as UTF-8 JSON (tuples come back as lists)."""

    name = "json"

    def can_serialize(self, obj: object) -> bool:
        return obj is None or isinstance(obj, dict | list | str | int | float | bool)

    def serialize(self, obj: Any) -> SerializedObject:
        try:
            data = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
        except (TypeError, ValueError) as exc:
            raise SerializationError(f"cannot write this {type(obj).__name__} as JSON: {exc}") from None
        return SerializedObject(self.name, [data], len(data))

    def deserialize(self, payload: Buffer, descriptor: ArrayDescriptor | None) -> Any:
        try:
            return json.loads(bytes(payload))
        except (ValueError, UnicodeDecodeError) as exc:
            raise SerializationError(f"payload is not valid JSON: {exc}") from None


class PickleSerializer:
    """Any picklable object (protocol 5). Loading runs code from the payload: trusted deployments only."""

    name = "pickle"

    def can_serialize(self, obj: object) -> bool:
        return True

    def serialize(self, obj: Any) -> SerializedObject:
        try:
            data = pickle.dumps(obj, protocol=5)
        except Exception as exc:
            raise SerializationError(f"cannot pickle this {type(obj).__name__}: {exc}") from None
        return SerializedObject(self.name, [data], len(data))

    def deserialize(self, payload: Buffer, descriptor: ArrayDescriptor | None) -> Any:
        return pickle.loads(payload)  # noqa: S301 - only reachable with pickle explicitly enabled


PICKLE_HINT = "enable it only for trusted data with FREIGHT_ALLOW_PICKLE=1 or allow_pickle=True"


# -- registry ---------------------------------------------------------------------------------------------


class SerializerRegistry:
    """Named serializers; `for_object` picks the first (registered ones before built-ins) that accepts.

    Pickle is part of the registry but refused unless `allow_pickle` is set.
    """

    def __init__(self, *, allow_pickle: bool = False, builtins: bool = True) -> None:
        self.allow_pickle = allow_pickle
        self._custom: list[Serializer] = []
        self._builtin: list[Serializer] = (
            [BytesSerializer(), NumpySerializer(), TorchSerializer(), JsonSerializer()] if builtins else []
        )
        self._pickle = PickleSerializer()

    def copy(self, *, allow_pickle: bool | None = None) -> SerializerRegistry:
        """A registry with the same serializers (and pickle setting unless given)."""
        other = SerializerRegistry(
            allow_pickle=self.allow_pickle if allow_pickle is None else allow_pickle, builtins=False
        )
        other._custom = list(self._custom)
        other._builtin = list(self._builtin)
        return other

    def __iter__(self) -> Iterator[Serializer]:
        yield from self._custom
        yield from self._builtin
        if self.allow_pickle:
            yield self._pickle

    def names(self) -> list[str]:
        return [s.name for s in self]

    def register(self, serializer: Serializer, *, replace: bool = False) -> None:
        """Add `serializer`; it is tried before the built-ins. A name already taken needs `replace=True`."""
        if not isinstance(serializer, Serializer):
            raise SerializationError(
                f"{serializer!r} is not a Serializer (needs name, can_serialize, serialize, deserialize)"
            )
        taken = serializer.name == self._pickle.name or any(s.name == serializer.name for s in self)
        if taken and not replace:
            raise SerializationError(
                f"a serializer named {serializer.name!r} is already registered; pass replace=True to override"
            )
        self._custom = [s for s in self._custom if s.name != serializer.name]
        self._builtin = [s for s in self._builtin if s.name != serializer.name]
        self._custom.insert(0, serializer)

    def get(self, name: str) -> Serializer:
        """The serializer called `name` (registered ones first); pickle only when enabled."""
        for serializer in self._custom:
            if serializer.name == name:
                return serializer
        if name == self._pickle.name:
            if not self.allow_pickle:
                raise PickleDisabledError(
                    f"this object needs the pickle serializer, which is disabled because unpickling runs "
                    f"code from the data; {PICKLE_HINT}"
                )
            return self._pickle
        for serializer in self._builtin:
            if serializer.name == name:
                return serializer
        raise SerializationError(f"unknown serializer {name!r}; registered: {', '.join(self.names())}")

    @property
    def plain_bytes(self) -> bool:
        """Whether `bytes` objects go to the built-in bytes serializer (no registered one comes first), so
        a small one can be carried as it is without asking every serializer (the per-event fast path)."""
        return not self._custom and bool(self._builtin) and self._builtin[0].name == BytesSerializer.name

    def for_object(self, obj: object) -> Serializer:
        """The serializer for `obj`: registered ones first, then bytes, numpy, torch, JSON, then pickle."""
        for serializer in self._custom:
            if serializer.can_serialize(obj):
                return serializer
        for serializer in self._builtin:
            if serializer.can_serialize(obj):
                return serializer
        kind = f"{type(obj).__module__}.{type(obj).__qualname__}"
        if self.allow_pickle:
            return self._pickle
        if isinstance(obj, np.ndarray):
            dtype_to_str(obj.dtype)  # says why this array has no raw-bytes form
        raise PickleDisabledError(
            f"no safe serializer takes objects of type {kind} (safe: {', '.join(self.names())}). Convert it "
            f"(numpy array, bytes, JSON-able dict/list), register a Serializer for it, or use pickle: "
            f"{PICKLE_HINT}"
        )

    def serialize(self, obj: object, name: str | None = None) -> SerializedObject:
        serializer = self.for_object(obj) if name is None else self.get(name)
        if name is not None and not serializer.can_serialize(obj):
            raise SerializationError(f"the {name!r} serializer cannot take a {type(obj).__name__}")
        return serializer.serialize(obj)

    def deserialize(self, name: str, payload: Buffer, descriptor: ArrayDescriptor | None) -> Any:
        return self.get(name).deserialize(payload, descriptor)
