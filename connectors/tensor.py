"""`TensorConnector`: tensors stay resident in the producer; readers on the host map them without a copy.

The producer process owns the objects: a process-local table keyed by object id, holding each tensor alive
until it is evicted. Readers in other processes rebuild the store from its config, which names the owner's
address, ask the owner for a *handle* (plain JSON) and map the same memory:

* CPU tensors (and plain bytes, such as numpy arrays) live in a named shared-memory segment in /dev/shm
  (see `freight.connectors.shm`). A reader on the same host maps the segment: no copy between processes.
  A CPU tensor put into the store is copied into a segment once; a tensor allocated with `empty()` is
  already in one and is kept without any copy.
* CUDA tensors stay where they are. A reader on the same host receives a CUDA IPC handle
  (`untyped_storage()._share_cuda_()`, opened with `UntypedStorage._new_shared_cuda`), so it gets a tensor
  over the producer's device memory. torch's IPC reference counting keeps the memory valid while readers
  use it, even after the producer evicts the object.
* A reader on another host (or one that cannot map the segment: another user, another container) reads
  the bytes with the transfer engine when the `rdma` extra (NIXL) is installed on both sides: the owner
  registers the object once, publishes its agent's metadata in the store config, and the reader posts a
  one-sided READ into memory it registered (RDMA / GPUDirect where the hardware exists, else UCX over TCP
  or cross-memory attach; see `freight.connectors.transfer`). Without the extra, or with `transport="tcp"`,
  the bytes come over the owner's TCP socket. Either way the reader rebuilds a CPU tensor (a CUDA tensor on
  the recorded device where the reader has it). `transport="rdma"` forces the engine even on one host.

In the owner's own process, `from_config` returns a connector over the same table (no socket involved).
torch is imported lazily: byte objects work without it.
"""

from __future__ import annotations

import atexit
import base64
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Self

from pydantic import Field, ValidationError

from freight.connectors import shm, transfer
from freight.connectors._options import ConnectorOptions
from freight.connectors.keys import validate_key
from freight.connectors.protocol import Blob, Buffer, ObjectInfo, ResidentObject, byte_views
from freight.connectors.tensor_wire import CudaIpc, Handle, TensorClient, TensorServer
from freight.errors import (
    ConfigError,
    ObjectEvictedError,
    ObjectNotFoundError,
    SerializationError,
    ServiceUnavailableError,
    StoreError,
    StoreReadOnlyError,
)

EVICTED_MEMORY = 4096
Transport = Literal["auto", "rdma", "tcp"]


class TensorOptions(ConnectorOptions):
    kind_name = "tensor"
    name: str = Field(min_length=1, max_length=200, description="Store-wide name of the owner's table.")
    address: str | None = Field(None, description="host:port of the owner's server (set by its config()).")
    host_id: str | None = Field(None, description="The owner's host identity (set by its config()).")
    host: str = Field("127.0.0.1", description="Owner: interface to serve readers on.")
    port: int = Field(0, ge=0, le=65535, description="Owner: port to serve on (0 picks a free one).")
    transport: Transport = Field(
        "auto",
        description="'auto': map on the host, else the transfer engine if installed, else TCP; "
        "'rdma': always the transfer engine; 'tcp': always the byte transfer over the control socket "
        "(an owner with 'tcp' starts no engine).",
    )
    engine: transfer.EngineInfo | None = Field(
        None, description="The owner's transfer engine (its config())."
    )
    timeout: float = Field(30.0, gt=0, description="Reader: socket timeout in seconds.")


def _torch() -> Any:
    try:
        import torch
    except ModuleNotFoundError:
        raise ConfigError("tensors need torch: pip install 'freight[torch]'") from None
    return torch


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text)


@dataclass(eq=False)
class _Entry:
    kind: Literal["shm-bytes", "shm-tensor", "cuda"]
    nbytes: int  # payload bytes (a bytes entry: the whole object)
    modified: float
    segment: shm.Segment | None = None
    header: bytes = b""
    tensor: Any = None
    generation: str = ""
    registration: transfer.Registration | None = None
    pinned: Any = None  # what keeps a registered shm-bytes mapping alive (a numpy view)


class _Owner:
    """The producer's table of resident objects, shared by every connector of its name in this process."""

    def __init__(self, name: str, host: str, port: int, transport: Transport = "auto") -> None:
        self.name = name
        self.host = host
        self.port = port
        self.use_engine = transport != "tcp" and transfer.available()
        self.engine: transfer.OwnerEngine | None = None
        self.host_id = shm.host_id()
        self.lock = threading.RLock()
        self.entries: dict[str, _Entry] = {}
        self.evicted: OrderedDict[str, None] = OrderedDict()
        self.allocations: dict[int, tuple[shm.Segment, Any]] = {}  # base pointer -> (segment, base tensor)
        self.server: TensorServer | None = None
        self.closed = False
        shm.sweep_stale()

    # -- segments ------------------------------------------------------------------------------------------

    def _release(self, segment: shm.Segment | None) -> None:
        if segment is None:
            return
        segment.refs -= 1
        if segment.refs <= 0:
            segment.unlink()
            for ptr, (seg, _base) in list(self.allocations.items()):
                if seg is segment:
                    del self.allocations[ptr]

    def _store(self, key: str, entry: _Entry) -> None:
        if entry.segment is not None:
            entry.segment.refs += 1
        entry.generation = uuid.uuid4().hex
        with self.lock:
            if self.closed:
                self._release(entry.segment)
                raise StoreError(f"tensor store {self.name!r} is closed")
            old = self.entries.get(key)
            self.entries[key] = entry
            self.evicted.pop(key, None)
            if old is not None:
                self._deregister(old)
                self._release(old.segment)

    def empty(self, shape: Sequence[int], dtype: Any) -> Any:
        """A tensor in a fresh shared-memory segment; putting it later costs no copy."""
        torch = _torch()
        nbytes = int(torch.Size(shape).numel()) * torch.empty((), dtype=dtype).element_size()
        segment = shm.Segment.create(nbytes)
        base = torch.frombuffer(segment.mapping, dtype=torch.uint8)
        with self.lock:
            self.allocations[base.data_ptr()] = (segment, base)
        return base[:nbytes].view(dtype).reshape(tuple(shape))

    def _segment_of(self, tensor: Any) -> tuple[shm.Segment, int] | None:
        """(segment, element offset) if `tensor` lies in a segment from `empty()`."""
        ptr = tensor.untyped_storage().data_ptr()
        with self.lock:
            for base_ptr, (segment, _base) in self.allocations.items():
                if base_ptr <= ptr < base_ptr + max(segment.size, 1):
                    start = ptr - base_ptr + tensor.storage_offset() * tensor.element_size()
                    if start % tensor.element_size() == 0:
                        return segment, start // tensor.element_size()
        return None

    # -- writing -------------------------------------------------------------------------------------------

    def put_bytes(self, key: str, views: list[memoryview]) -> None:
        total = sum(v.nbytes for v in views)
        segment = shm.Segment.create(total)
        assert segment.mapping is not None
        pos = 0
        for view in views:  # the one copy: into shared memory
            segment.mapping[pos : pos + view.nbytes] = view
            pos += view.nbytes
        self._store(key, _Entry("shm-bytes", total, time.time(), segment))

    def put_tensor(self, key: str, header: bytes, obj: Any) -> int:
        torch = _torch()
        if not isinstance(obj, torch.Tensor) or obj.layout != torch.strided:
            raise SerializationError(
                f"the tensor connector keeps dense torch tensors, not {type(obj).__name__}"
            )
        tensor = obj.detach()
        nbytes = int(tensor.numel()) * int(tensor.element_size())
        if tensor.device.type == "cuda":
            self._store(key, _Entry("cuda", nbytes, time.time(), None, header, tensor))
            return nbytes
        if tensor.device.type != "cpu":
            raise SerializationError(f"the tensor connector keeps CPU and CUDA tensors, not {tensor.device}")
        found = self._segment_of(tensor)
        if found is not None:  # allocated with empty(): keep it as it is
            segment, _offset = found
            self._store(key, _Entry("shm-tensor", nbytes, time.time(), segment, header, tensor))
            return nbytes
        segment = shm.Segment.create(nbytes)
        base = torch.frombuffer(segment.mapping, dtype=torch.uint8)[:nbytes]
        resident = base.view(tensor.dtype).reshape(tensor.shape) if nbytes else tensor.new_empty(tensor.shape)
        resident.copy_(tensor)  # the one copy: into shared memory
        self._store(key, _Entry("shm-tensor", nbytes, time.time(), segment, header, resident))
        return nbytes

    # -- reading -------------------------------------------------------------------------------------------

    def entry(self, key: str) -> _Entry:
        with self.lock:
            entry = self.entries.get(key)
            if entry is None:
                if key in self.evicted:
                    raise ObjectEvictedError(f"object {key!r} was evicted from tensor store {self.name!r}")
                raise ObjectNotFoundError(f"no object {key!r} in tensor store {self.name!r}")
            return entry

    def local_entry(self, key: str) -> Buffer | ResidentObject:
        entry = self.entry(key)
        if entry.kind == "shm-bytes":
            assert entry.segment is not None
            return entry.segment.view()
        return ResidentObject(entry.header, entry.tensor, entry.nbytes)

    def raw(self, key: str) -> list[Buffer]:
        """The object as bytes (header + payload) for `get` and for readers on other hosts."""
        entry = self.entry(key)
        if entry.kind == "shm-bytes":
            assert entry.segment is not None
            return [entry.segment.view()]
        torch = _torch()
        host = entry.tensor.to("cpu").contiguous()
        return [entry.header, memoryview(host.reshape(-1).view(torch.uint8).numpy())]

    def handle(self, key: str) -> Handle:
        entry = self.entry(key)
        if entry.kind == "shm-bytes":
            assert entry.segment is not None
            return Handle(
                kind="shm-bytes",
                host_id=self.host_id,
                nbytes=entry.nbytes,
                path=entry.segment.path,
                segment_size=entry.segment.size,
            )
        tensor = entry.tensor
        geometry: dict[str, Any] = {
            "dtype": str(tensor.dtype).removeprefix("torch."),
            "shape": list(tensor.shape),
            "stride": list(tensor.stride()),
            "header": _b64(entry.header),
            "nbytes": entry.nbytes,
            "host_id": self.host_id,
        }
        if entry.kind == "cuda":
            return Handle(
                kind="cuda", storage_offset=tensor.storage_offset(), cuda=_share_cuda(tensor), **geometry
            )
        assert entry.segment is not None
        found = self._segment_of(tensor)
        offset = found[1] if found is not None else 0
        return Handle(
            kind="shm-tensor",
            path=entry.segment.path,
            segment_size=entry.segment.size,
            storage_offset=offset,
            **geometry,
        )

    def geometry(self, key: str) -> Handle:
        """What a reader needs to rebuild `key` from its bytes: kind, size, header, dtype and shape."""
        entry = self.entry(key)
        if entry.kind == "shm-bytes":
            return Handle(kind="shm-bytes", host_id=self.host_id, nbytes=entry.nbytes)
        return Handle(
            kind=entry.kind,
            host_id=self.host_id,
            nbytes=entry.nbytes,
            header=_b64(entry.header),
            dtype=str(entry.tensor.dtype).removeprefix("torch."),
            shape=list(entry.tensor.shape),
            stride=list(entry.tensor.stride()),
        )

    def exists(self, key: str) -> bool:
        with self.lock:
            return key in self.entries

    # -- transfer engine -----------------------------------------------------------------------------------

    def engine_info(self) -> transfer.EngineInfo | None:
        """The engine's published info, starting the agent on first call; None without the extra."""
        with self.lock:
            if self.use_engine and self.engine is None:
                self.engine = transfer.OwnerEngine(self.host)
            return None if self.engine is None else self.engine.info

    def region(self, key: str) -> transfer.Region | None:
        """`key`'s registered bytes (registered on first call), or None where the engine cannot read them."""
        if self.engine_info() is None:
            return None
        with self.lock:
            entry = self.entry(key)
            assert self.engine is not None
            if entry.registration is None and entry.nbytes > 0:
                if entry.kind == "shm-bytes":
                    assert entry.segment is not None and entry.segment.mapping is not None
                    import numpy as np

                    entry.pinned = np.frombuffer(entry.segment.mapping, dtype=np.uint8)[: entry.nbytes]
                    entry.registration = self.engine.register(int(entry.pinned.ctypes.data), entry.nbytes)
                elif not entry.tensor.is_contiguous():
                    return None  # strided views of empty()-allocated tensors go over TCP
                elif entry.kind == "cuda":
                    device = int(entry.tensor.device.index or 0)
                    address = int(entry.tensor.data_ptr())
                    entry.registration = self.engine.register(address, entry.nbytes, "VRAM", device)
                else:
                    entry.registration = self.engine.register(int(entry.tensor.data_ptr()), entry.nbytes)
            if entry.registration is None:  # an empty object: nothing to read
                return transfer.Region(
                    agent=self.engine.agent_name,
                    address=0,
                    length=0,
                    metadata="",
                    generation=entry.generation,
                )
            return self.engine.region(entry.registration, entry.generation)

    def _deregister(self, entry: _Entry) -> None:
        if entry.registration is not None and self.engine is not None:
            self.engine.deregister(entry.registration)
        entry.registration = None
        entry.pinned = None

    def current(self, key: str, generation: str) -> bool:
        """True if `key` still holds the object of `generation` (it stayed resident during a read)."""
        with self.lock:
            entry = self.entries.get(key)
            return entry is not None and entry.generation == generation

    def evict(self, key: str) -> bool:
        with self.lock:
            entry = self.entries.pop(key, None)
            if entry is None:
                return False
            self.evicted[key] = None
            while len(self.evicted) > EVICTED_MEMORY:
                self.evicted.popitem(last=False)
            self._deregister(entry)
            self._release(entry.segment)
        return True

    def listing(self, prefix: str) -> list[ObjectInfo]:
        with self.lock:
            items = [
                ObjectInfo(k, len(e.header) + e.nbytes, e.modified)
                for k, e in self.entries.items()
                if k.startswith(prefix)
            ]
        return sorted(items, key=lambda i: i.key)

    # -- serving -------------------------------------------------------------------------------------------

    def address(self) -> str:
        with self.lock:
            if self.server is None:
                self.server = TensorServer(self.host, self.port, self.dispatch)
            return f"{self.server.host!s}:{self.server.port}"

    def dispatch(self, request: dict[str, Any]) -> tuple[dict[str, Any], list[Buffer]]:
        op = request.get("op")
        keys = [validate_key(k) for k in request.get("keys", [])]
        if op == "hello":
            info = self.engine_info()
            return {
                "name": self.name,
                "host_id": self.host_id,
                "engine": None if info is None else info.model_dump(),
            }, []
        if op == "regions":
            found: list[dict[str, Any] | None] = []
            gone: list[bool] = []
            for key in keys:  # None: no such object; a None region: read its bytes over TCP instead
                try:
                    region = self.region(key)
                    shape = self.geometry(key)
                except ObjectNotFoundError as exc:
                    found.append(None)
                    gone.append(isinstance(exc, ObjectEvictedError))
                    continue
                gone.append(False)
                found.append(
                    {"handle": shape.model_dump(), "region": None if region is None else region.model_dump()}
                )
            return {"regions": found, "evicted": gone}, []
        if op == "current":
            generations = [str(g) for g in request.get("generations", [])]
            if len(generations) != len(keys):
                raise StoreError("tensor store op 'current' needs one generation per key")
            return {"current": [self.current(k, g) for k, g in zip(keys, generations, strict=True)]}, []
        if op == "handles":
            handles: list[dict[str, Any] | None] = []
            evicted: list[bool] = []
            for key in keys:
                try:
                    handles.append(self.handle(key).model_dump())
                    evicted.append(False)
                except ObjectNotFoundError as exc:
                    handles.append(None)
                    evicted.append(isinstance(exc, ObjectEvictedError))
            return {"handles": handles, "evicted": evicted}, []
        if op == "bytes":
            sizes: list[int] = []
            payloads: list[Buffer] = []
            for key in keys:
                try:
                    parts = self.raw(key)
                except ObjectNotFoundError:
                    sizes.append(-1)
                    continue
                sizes.append(sum(memoryview(p).nbytes for p in parts))
                payloads.extend(parts)
            return {"sizes": sizes}, payloads
        if op == "exists":
            return {"exists": [self.exists(k) for k in keys]}, []
        if op == "evict":
            return {"evicted": sum(self.evict(k) for k in keys)}, []
        if op == "list":
            prefix = str(request.get("prefix", ""))
            return {"objects": [[i.key, i.size, i.modified] for i in self.listing(prefix)]}, []
        raise StoreError(f"unknown tensor store op {op!r}")

    def close(self) -> None:
        with self.lock:
            self.closed = True
            server, self.server = self.server, None
            for key in list(self.entries):
                self.evict(key)
            for segment, _base in list(self.allocations.values()):
                segment.unlink()
            self.allocations.clear()
            engine, self.engine = self.engine, None
        if server is not None:
            server.close()
        if engine is not None:
            engine.close()


_OWNERS: dict[str, _Owner] = {}
_OWNERS_LOCK = threading.Lock()


@atexit.register
def _close_owners() -> None:
    with _OWNERS_LOCK:
        owners = list(_OWNERS.values())
        _OWNERS.clear()
    for owner in owners:
        owner.close()


def _share_cuda(tensor: Any) -> CudaIpc:
    """A fresh CUDA IPC handle for `tensor`'s storage (each reader needs its own reference count)."""
    (device, handle, size, offset, rc_handle, rc_offset, event_handle, event_sync) = (
        tensor.untyped_storage()._share_cuda_()
    )
    return CudaIpc(
        device=int(device),
        handle=_b64(bytes(handle)),
        size=int(size),
        offset=int(offset),
        ref_counter_handle=_b64(bytes(rc_handle)),
        ref_counter_offset=int(rc_offset),
        event_handle=None if event_handle is None else _b64(bytes(event_handle)),
        event_sync_required=bool(event_sync),
    )


def _open_cuda(handle: Handle) -> Any:
    torch = _torch()
    ipc = handle.cuda
    assert ipc is not None and handle.dtype is not None and handle.shape is not None
    torch.cuda._lazy_init()
    storage = torch.UntypedStorage._new_shared_cuda(
        ipc.device,
        _unb64(ipc.handle),
        ipc.size,
        ipc.offset,
        _unb64(ipc.ref_counter_handle),
        ipc.ref_counter_offset,
        None if ipc.event_handle is None else _unb64(ipc.event_handle),
        ipc.event_sync_required,
    )
    dtype = getattr(torch, handle.dtype)
    tensor = torch.empty((0,), dtype=dtype, device=f"cuda:{ipc.device}")
    return tensor.set_(storage, handle.storage_offset, handle.shape, handle.stride)


def _open_shm_tensor(handle: Handle) -> Any:
    torch = _torch()
    assert handle.path is not None and handle.dtype is not None and handle.shape is not None
    dtype = getattr(torch, handle.dtype)
    mapping = shm.attach(handle.path, handle.segment_size, writable=True)
    base = torch.frombuffer(mapping, dtype=torch.uint8)
    itemsize = torch.empty((), dtype=dtype).element_size()
    usable = (handle.segment_size // itemsize) * itemsize
    if usable == 0:
        return torch.empty(handle.shape, dtype=dtype)
    return base[:usable].view(dtype).as_strided(handle.shape, handle.stride, handle.storage_offset)


class _Reader:
    """A process that is not the owner: maps objects through handles, or fetches their bytes."""

    def __init__(self, opts: TensorOptions) -> None:
        if not opts.address:
            raise ConfigError(
                f"tensor store {opts.name!r} is owned by another process, and this config has no address to "
                "reach it; rebuild the store from the config its owner published (Store.config())"
            )
        self.name = opts.name
        self.address = opts.address
        self.transport = opts.transport
        self.local_host = shm.host_id()
        self.client = TensorClient(opts.address, opts.timeout)
        self.timeout = opts.timeout
        self.engine_info = opts.engine
        self._engine: transfer.ReaderEngine | None = None
        self._engine_lock = threading.Lock()
        if self.transport == "rdma":
            if opts.engine is None:
                raise ConfigError(
                    f"tensor store {opts.name!r}: transport 'rdma' asked for, but its owner published no "
                    "transfer engine (the owner needs the rdma extra, pip install 'freight[rdma]', and a "
                    "transport other than 'tcp')"
                )
            if not transfer.available():
                raise ConfigError(
                    "transport 'rdma' needs the transfer engine here: pip install 'freight[rdma]'"
                )

    @property
    def uses_engine(self) -> bool:
        """Whether objects this process cannot map come through the transfer engine (else TCP)."""
        return self.transport != "tcp" and self.engine_info is not None and transfer.available()

    def engine(self) -> transfer.ReaderEngine:
        """This reader's NIXL agent, connected on first use to the owner the control socket vouches for."""
        with self._engine_lock:
            if self._engine is None:
                assert self.engine_info is not None
                reply, _ = self.client.call({"op": "hello"})
                if reply.get("engine") != self.engine_info.model_dump():
                    raise StoreError(
                        f"the transfer engine in tensor store {self.name!r}'s config is not the one its "
                        f"owner at {self.address} serves; refused (rebuild the store from the owner's config)"
                    )
                host = self.address.rpartition(":")[0]
                self._engine = transfer.ReaderEngine(self.engine_info, self.timeout, host)
            return self._engine

    def read_regions(self, keys: Sequence[str]) -> tuple[list[Buffer | ResidentObject | None], list[bool]]:
        """Each key's object read through the transfer engine (over TCP where the owner cannot offer it)."""
        reply, _ = self.client.call({"op": "regions", "keys": list(keys)})
        raw_regions, raw_evicted = reply.get("regions"), reply.get("evicted")
        if not (isinstance(raw_regions, list) and isinstance(raw_evicted, list)) or not (
            len(raw_regions) == len(raw_evicted) == len(keys)
        ):
            raise StoreError(f"the tensor store owner at {self.address} answered 'regions' malformed")
        out: list[Buffer | ResidentObject | None] = []
        evicted = [bool(e) for e in raw_evicted]
        tcp: list[int] = []
        read: list[tuple[int, str]] = []
        for i, raw in enumerate(raw_regions):
            out.append(None)
            if raw is None:
                continue
            try:
                handle = Handle.model_validate(raw["handle"])
                region = None if raw.get("region") is None else transfer.Region.model_validate(raw["region"])
            except (KeyError, TypeError, AttributeError, ValidationError) as exc:
                raise StoreError(
                    f"the tensor store owner at {self.address} sent a malformed region for {keys[i]!r}: {exc}"
                ) from None
            if region is None:
                tcp.append(i)
                continue
            try:
                out[i] = self._read_region(handle, region)
            except (StoreError, ServiceUnavailableError):
                if self._current([(keys[i], region.generation)]) == [False]:
                    evicted[i] = True  # evicted (and deregistered) during the read
                    continue
                raise
            read.append((i, region.generation))
        if read:  # the owner kept each object resident (same generation) throughout the read
            current = self._current([(keys[i], g) for i, g in read])
            for (i, _), ok in zip(read, current, strict=True):
                if not ok:
                    out[i], evicted[i] = None, True
        if tcp:
            for i, data in zip(tcp, self.fetch_bytes([keys[i] for i in tcp]), strict=True):
                out[i] = data
        return out, evicted

    def _current(self, pairs: Sequence[tuple[str, str]]) -> list[bool]:
        """Whether each (key, generation) is still the resident object at the owner."""
        reply, _ = self.client.call(
            {"op": "current", "keys": [k for k, _ in pairs], "generations": [g for _, g in pairs]}
        )
        current = reply.get("current")
        if not isinstance(current, list) or len(current) != len(pairs):
            raise StoreError(f"the tensor store owner at {self.address} answered 'current' malformed")
        return [c is True for c in current]

    def _read_region(self, handle: Handle, region: transfer.Region) -> Buffer | ResidentObject:
        import numpy as np

        if region.length != handle.nbytes:
            raise StoreError(
                f"tensor store owner at {self.address} offered {region.length} bytes for an object of "
                f"{handle.nbytes}; refused"
            )
        if handle.kind == "shm-bytes":
            array = np.empty(handle.nbytes, dtype=np.uint8)
            self.engine().read(region, int(array.ctypes.data), handle.nbytes)
            return array.data
        torch = _torch()
        if (
            handle.dtype is None
            or handle.shape is None
            or not isinstance(getattr(torch, handle.dtype, None), torch.dtype)
        ):
            raise StoreError(f"tensor store owner at {self.address} sent no valid dtype/shape; refused")
        dtype = getattr(torch, handle.dtype)
        if any(n < 0 for n in handle.shape) or (
            int(torch.Size(handle.shape).numel()) * torch.empty((), dtype=dtype).element_size()
            != handle.nbytes
        ):
            raise StoreError(
                f"tensor store owner at {self.address} sent a shape that is not {handle.nbytes} bytes"
            )
        cuda = (
            region.memory == "VRAM"
            and torch.cuda.is_available()
            and region.device < torch.cuda.device_count()
        )
        tensor = torch.empty(handle.shape, dtype=dtype, device=f"cuda:{region.device}" if cuda else "cpu")
        self.engine().read(
            region,
            int(tensor.data_ptr()),
            handle.nbytes,
            "VRAM" if cuda else "DRAM",
            region.device if cuda else 0,
        )
        return ResidentObject(_unb64(handle.header or ""), tensor, handle.nbytes)

    def _missing(self, key: str, evicted: bool) -> ObjectNotFoundError:
        if evicted:
            return ObjectEvictedError(f"object {key!r} was evicted from tensor store {self.name!r}")
        return ObjectNotFoundError(f"no object {key!r} in tensor store {self.name!r} (owner {self.address})")

    def fetch_bytes(self, keys: Sequence[str]) -> list[Buffer | None]:
        import numpy as np

        reply, sock = self.client.call({"op": "bytes", "keys": list(keys)})
        out: list[Buffer | None] = []
        for size in reply["sizes"]:
            if size < 0:
                out.append(None)
                continue
            view = np.empty(size, dtype=np.uint8).data
            self.client.read_payload(sock, view)
            out.append(view)
        return out

    def _open(self, handle: Handle) -> Buffer | ResidentObject:
        if handle.kind == "shm-bytes":
            assert handle.path is not None
            return memoryview(shm.attach(handle.path, handle.segment_size, writable=False))[: handle.nbytes]
        header = _unb64(handle.header or "")
        tensor = _open_cuda(handle) if handle.kind == "cuda" else _open_shm_tensor(handle)
        return ResidentObject(header, tensor, handle.nbytes)

    def entries(self, keys: Sequence[str]) -> tuple[list[Buffer | ResidentObject | None], list[bool]]:
        """Each key's object (None where absent) and whether it is known to have been evicted."""
        if self.transport == "tcp":
            return list(self.fetch_bytes(keys)), [False] * len(keys)
        if self.transport == "rdma":
            return self.read_regions(keys)
        reply, _sock = self.client.call({"op": "handles", "keys": list(keys)})
        out: list[Buffer | ResidentObject | None] = []
        evicted: list[bool] = list(reply["evicted"])
        remote: list[int] = []
        for i, raw in enumerate(reply["handles"]):
            out.append(None)
            if raw is None:
                continue
            handle = Handle.model_validate(raw)
            if handle.host_id != self.local_host:
                remote.append(i)
                continue
            try:
                out[i] = self._open(handle)
            except FileNotFoundError:
                evicted[i] = True  # evicted between the handle and the mapping
            except (OSError, ValueError, RuntimeError):
                remote.append(i)  # cannot map it here (another user or container): fetch its bytes
        if remote:
            remote_keys = [keys[i] for i in remote]
            if self.uses_engine:
                fetched, gone = self.read_regions(remote_keys)
                for i, was_evicted in zip(remote, gone, strict=True):
                    evicted[i] = evicted[i] or was_evicted
            else:
                fetched = list(self.fetch_bytes(remote_keys))
            for i, data in zip(remote, fetched, strict=True):
                out[i] = data
        return out, evicted

    def close(self) -> None:
        self.client.close()
        with self._engine_lock:
            engine, self._engine = self._engine, None
        if engine is not None:
            engine.close()


class TensorConnector:
    """Resident tensors keyed by object id; zero-copy to readers on the host (see module docstring)."""

    kind = "tensor"

    def __init__(
        self,
        name: str | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        transport: Transport = "auto",
        _reader: _Reader | None = None,
    ) -> None:
        opts = TensorOptions.parse(
            {
                "name": name or f"tensors-{uuid.uuid4().hex[:12]}",
                "host": host,
                "port": port,
                "transport": transport,
            }
        )
        self.name = opts.name
        self.transport = opts.transport
        self._reader = _reader
        self._owner: _Owner | None = None
        if _reader is None:
            with _OWNERS_LOCK:
                owner = _OWNERS.get(self.name)
                if owner is None or owner.closed:
                    owner = _OWNERS[self.name] = _Owner(self.name, opts.host, opts.port, opts.transport)
            self._owner = owner

    def __repr__(self) -> str:
        role = (
            "owner"
            if self._owner is not None
            else f"reader of {self._reader.address if self._reader else '?'}"
        )
        return f"TensorConnector(name={self.name!r}, {role})"

    @property
    def is_owner(self) -> bool:
        """True in the producer process that holds the objects."""
        return self._owner is not None

    def _own(self, action: str) -> _Owner:
        if self._owner is None:
            assert self._reader is not None
            raise StoreReadOnlyError(
                f"cannot {action} in tensor store {self.name!r} from this process: its tensors live in the "
                f"process serving {self._reader.address}, which alone writes. Create your own "
                "TensorConnector to publish tensors from here."
            )
        return self._owner

    # -- object interface (used by Store) ------------------------------------------------------------------

    def accepts(self, obj: object) -> bool:
        import sys

        torch = sys.modules.get("torch")
        return self._owner is not None and torch is not None and isinstance(obj, torch.Tensor)

    def put_object(self, key: str, header: Buffer, obj: Any) -> int:
        return self._own("put").put_tensor(validate_key(key), bytes(header), obj)

    def empty(self, shape: Sequence[int], dtype: Any) -> Any:
        """A CPU tensor allocated in shared memory: fill it, `put` it, and no byte is ever copied."""
        return self._own("allocate").empty(shape, dtype)

    def get_entry(self, key: str) -> Buffer | ResidentObject:
        validate_key(key)
        if self._owner is not None:
            return self._owner.local_entry(key)
        assert self._reader is not None
        (entry,), (evicted,) = self._reader.entries([key])
        if entry is None:
            raise self._reader._missing(key, evicted)
        return entry

    def get_entries(self, keys: Sequence[str]) -> list[Buffer | ResidentObject | None]:
        for key in keys:
            validate_key(key)
        if self._owner is not None:
            out: list[Buffer | ResidentObject | None] = []
            for key in keys:
                try:
                    out.append(self._owner.local_entry(key))
                except ObjectNotFoundError:
                    out.append(None)
            return out
        assert self._reader is not None
        return self._reader.entries(keys)[0]

    # -- byte interface (Connector) ------------------------------------------------------------------------

    def put(self, key: str, data: Blob) -> None:
        self._own("put").put_bytes(validate_key(key), byte_views(data))

    def put_batch(self, items: Sequence[tuple[str, Blob]]) -> None:
        for key, data in items:
            self.put(key, data)

    def get(self, key: str) -> Buffer:
        validate_key(key)
        if self._owner is not None:
            parts = self._owner.raw(key)
            return parts[0] if len(parts) == 1 else b"".join(parts)
        (data,) = self.get_batch([key])
        if data is None:
            assert self._reader is not None
            raise self._reader._missing(key, False)
        return data

    def get_batch(self, keys: Sequence[str]) -> list[Buffer | None]:
        for key in keys:
            validate_key(key)
        if self._owner is None:
            assert self._reader is not None
            return self._reader.fetch_bytes(keys)
        out: list[Buffer | None] = []
        for key in keys:
            try:
                out.append(self.get(key))
            except ObjectNotFoundError:
                out.append(None)
        return out

    def exists(self, key: str) -> bool:
        validate_key(key)
        if self._owner is not None:
            return self._owner.exists(key)
        assert self._reader is not None
        reply, _ = self._reader.client.call({"op": "exists", "keys": [key]})
        return bool(reply["exists"][0])

    def evict(self, key: str) -> bool:
        return self.evict_batch([key]) == 1

    def evict_batch(self, keys: Sequence[str]) -> int:
        for key in keys:
            validate_key(key)
        if self._owner is not None:
            return sum(self._owner.evict(k) for k in keys)
        assert self._reader is not None
        reply, _ = self._reader.client.call({"op": "evict", "keys": list(keys)})
        return int(reply["evicted"])

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        if self._owner is not None:
            yield from self._owner.listing(prefix)
            return
        assert self._reader is not None
        reply, _ = self._reader.client.call({"op": "list", "prefix": prefix})
        for key, size, modified in reply["objects"]:
            yield ObjectInfo(key, int(size), float(modified))

    # -- lifecycle -----------------------------------------------------------------------------------------

    def close(self) -> None:
        """A reader drops its connection. The owner keeps its objects (they live until evicted) and serves
        them until `shutdown()` or process exit."""
        if self._reader is not None:
            self._reader.close()

    def shutdown(self) -> None:
        """Owner: evict everything, free the shared memory and stop serving readers."""
        owner = self._own("shut down")
        with _OWNERS_LOCK:
            if _OWNERS.get(self.name) is owner:
                del _OWNERS[self.name]
        owner.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def config(self) -> dict[str, Any]:
        """Name, the owner's address (its server starts on first call) and host identity."""
        if self._owner is not None:
            config: dict[str, Any] = {
                "name": self.name,
                "address": self._owner.address(),
                "host_id": self._owner.host_id,
            }
            info = self._owner.engine_info()
        else:
            assert self._reader is not None
            config = {"name": self.name, "address": self._reader.address}
            info = self._reader.engine_info
        if info is not None:
            config["engine"] = info.model_dump()
        return config

    def transport_summary(self) -> str:
        """How readers in other processes get this store's objects (reported by `freight status`)."""
        return describe_transport(
            self.transport, self._reader.engine_info if self._reader else None, self._owner
        )

    @classmethod
    def connect(cls, config: Mapping[str, Any]) -> Self:
        """A reader of the owner named in `config`, even in the owner's own process (tests, benchmarks)."""
        opts = TensorOptions.parse(config)
        return cls(opts.name, transport=opts.transport, _reader=_Reader(opts))

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Self:
        """The owner's table when this process owns `name`; else a reader of the owner at `address`."""
        opts = TensorOptions.parse(config)
        with _OWNERS_LOCK:
            owner = _OWNERS.get(opts.name)
        if owner is not None and not owner.closed:
            return cls(opts.name, transport=opts.transport)
        if opts.address is None:
            return cls(opts.name, host=opts.host, port=opts.port, transport=opts.transport)
        return cls(opts.name, transport=opts.transport, _reader=_Reader(opts))


def describe_transport(transport: str, engine: transfer.EngineInfo | None = None, owner: Any = None) -> str:
    """One line: which cross-process path a tensor store uses (shm/CUDA IPC on the host, then NIXL or TCP)."""
    if transport == "tcp":
        return "tcp (forced)"
    has_engine = engine is not None or (owner is not None and owner.use_engine)
    if has_engine and transfer.available():
        path = f"{transfer.ENGINE} (UCX)" + (" only" if transport == "rdma" else "")
    else:
        path = "tcp (install freight[rdma] for the NIXL transfer engine)"
    return path if transport == "rdma" else f"shm/cuda-ipc on host, else {path}"
