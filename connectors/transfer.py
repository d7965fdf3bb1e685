"""The tensor store's transfer engine: one-sided reads of an owner's memory through NIXL (the `rdma` extra).

NVIDIA NIXL (`nixl-cu12`, UCX backend) moves bytes between registered memory regions of two processes. UCX
picks the transport: RDMA verbs (InfiniBand / RoCE, GPUDirect for CUDA memory) where the hardware exists,
else TCP and cross-memory attach (`process_vm_readv`) on one host. The same code path runs everywhere; only
the speed changes.

How the tensor store uses it:

* The owner creates one NIXL agent per table (on loopback devices only when it serves on a loopback address;
  UCX would otherwise listen on every interface) and registers each resident object's bytes once, on the first
  request of a reader that cannot map them (`OwnerEngine.register`); eviction deregisters them.
* The store config names the engine and the owner's agent and carries its connection metadata (base64 of
  NIXL's own binary format: connection addresses, no secrets, never a pickle).
* Per object, the owner's control socket returns a `Region` (JSON): address, length, device and NIXL's
  partial metadata for that region (its remote key). The reader checks the region against the handle it was
  given, registers memory of its own and posts one READ; the owner's CPU takes no part in moving the bytes.

What is enforced, and where (everything from the network is untrusted):

* The reader refuses a region whose agent is not the one named in the config, whose length is not the
  object's size, or whose metadata is larger than `MAX_METADATA` (it is parsed by NIXL's C++ code).
* NIXL refuses, on the reader, a READ outside the regions the owner's metadata declares (`createXferReq`
  fails with NIXL_ERR_NOT_FOUND), and the owner registers exactly each object's bytes, nothing else.
* On RDMA hardware the NIC enforces the memory key's bounds for the owner. Over UCX's TCP and
  cross-memory-attach transports the owner does not check a reader's request against its registrations:
  a peer that bypasses NIXL (same user, same host, for cma) could read other memory of the owner. The TCP
  control socket is the same trust boundary as before: bind it to interfaces readers you trust can reach.
* A read can race an eviction; the reader asks the owner afterwards whether the object (by generation) was
  resident all along, and discards the bytes otherwise.

`nixl_cu12` is imported lazily: without the extra, `available()` is False and the store uses its TCP socket.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import importlib.util
import ipaddress
import logging
import os
import sys
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field

from freight.errors import ConfigError, ServiceUnavailableError, StoreError

ENGINE: Literal["nixl"] = "nixl"
#: The extra's import name (`nixl-cu12` on PyPI; the `nixl` meta package pulls the CUDA 13 stack and torch).
_MODULE = "nixl_cu12"
#: Largest NIXL metadata blob a reader passes to NIXL's parser (real ones are a few hundred bytes).
MAX_METADATA = 64 << 10
MemoryKind = Literal["DRAM", "VRAM"]
#: How many regions' metadata a reader remembers having loaded (loading again is correct, only slower).
LOADED_MEMORY = 4096


def available() -> bool:
    """True when the `rdma` extra (NIXL) is installed in this process's environment."""
    if _MODULE in sys.modules:  # None there means "blocked" (how tests simulate a missing extra)
        return sys.modules[_MODULE] is not None
    return importlib.util.find_spec(_MODULE) is not None


def _nixl() -> Any:
    """The NIXL API module, its logging turned down to warnings and sent to the application's handlers."""
    try:
        from nixl_cu12 import _api
    except ImportError as exc:
        raise ConfigError(
            f"the tensor store's transfer engine needs NIXL: pip install 'freight[rdma]' ({exc})"
        ) from None
    logger = logging.getLogger("nixl")  # NIXL prints INFO lines on stdout: route them through our logging
    logger.setLevel(logging.WARNING)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    logger.propagate = True
    return _api


def network_devices(host: str) -> str:
    """UCX network devices for talking to `host`: only loopback for a loopback host, else all ("").

    UCX otherwise listens on every interface's address; a store served on 127.0.0.1 must not.
    """
    host = host.strip("[]")
    if host == "localhost":
        return "lo"
    try:
        return "lo" if ipaddress.ip_address(host).is_loopback else ""
    except ValueError:
        return ""


_ENV_LOCK = threading.Lock()


def _agent(role: str, devices: str) -> tuple[Any, Any, str]:
    """A NIXL agent with a UCX backend; `devices` ("lo") limits UCX's network devices while it starts.

    UCX reads UCX_NET_DEVICES when the backend's context is created (NIXL's `ucx_devices` parameter did not
    restrict its listeners in 1.5.1), so it is set for that moment only, unless the user set it.
    """
    api = _nixl()
    name = f"freight-{role}-{uuid.uuid4().hex[:16]}"
    agent = api.nixl_agent(name, api.nixl_agent_config(enable_prog_thread=True, backends=[]))
    if "UCX" not in agent.get_plugin_list():
        raise StoreError("NIXL has no UCX backend in this environment; reinstall 'freight[rdma]'")
    with _ENV_LOCK:
        restrict = bool(devices) and "UCX_NET_DEVICES" not in os.environ
        if restrict:
            os.environ["UCX_NET_DEVICES"] = devices
        try:
            agent.create_backend("UCX", {})
        finally:
            if restrict:
                del os.environ["UCX_NET_DEVICES"]
    return api, agent, name


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _metadata(text: str) -> bytes:
    if len(text) > MAX_METADATA * 4 // 3 + 4:
        raise StoreError(f"transfer metadata of {len(text)} characters exceeds {MAX_METADATA} bytes; refused")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise StoreError("transfer metadata is not base64; refused") from None


class EngineInfo(BaseModel):
    """What the owner publishes in the store config: engine, agent name, connection metadata (no secrets)."""

    engine: Literal["nixl"] = ENGINE
    agent: str = Field(min_length=1, max_length=200)
    metadata: str = Field(max_length=MAX_METADATA * 4 // 3 + 4, description="base64 NIXL connection info")


class Region(BaseModel):
    """One registered object as the owner describes it to a reader (JSON on the control socket)."""

    agent: str = Field(min_length=1, max_length=200)
    address: int = Field(ge=0, lt=1 << 64)
    length: int = Field(ge=0, lt=1 << 48)
    device: int = Field(0, ge=0, lt=1 << 16)
    memory: MemoryKind = "DRAM"
    metadata: str = Field(max_length=MAX_METADATA * 4 // 3 + 4, description="base64 NIXL region metadata")
    generation: str = Field(min_length=1, max_length=64)


@dataclass(eq=False)
class Registration:
    """An owner's registration of one object's bytes (deregistered on eviction)."""

    address: int
    length: int
    device: int
    memory: MemoryKind
    descs: Any
    metadata: str


class OwnerEngine:
    """The owner's NIXL agent: registers resident objects and describes them to readers."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._api, self._agent, self.agent_name = _agent("owner", network_devices(host))
        self._lock = threading.Lock()
        conn = self._agent.get_partial_agent_metadata(self._empty_descs(), True, ["UCX"])
        self.info = EngineInfo(agent=self.agent_name, metadata=_b64(conn))

    def _empty_descs(self) -> Any:
        return self._api.nixlBind.nixlRegDList(self._api.nixlBind.DRAM_SEG)

    def register(
        self, address: int, length: int, memory: MemoryKind = "DRAM", device: int = 0
    ) -> Registration:
        """Register `length` bytes at `address` (host memory, or CUDA memory on `device`) for remote reads."""
        with self._lock:
            descs = self._agent.get_reg_descs([(address, length, device, "")], memory)
            self._agent.register_memory(descs, backends=["UCX"])
            partial = self._agent.get_partial_agent_metadata(descs, False, ["UCX"])
        return Registration(address, length, device, memory, descs, _b64(partial))

    def deregister(self, registration: Registration) -> None:
        with self._lock:
            self._agent.deregister_memory(registration.descs, backends=["UCX"])

    def region(self, registration: Registration, generation: str) -> Region:
        return Region(
            agent=self.agent_name,
            address=registration.address,
            length=registration.length,
            device=registration.device,
            memory=registration.memory,
            metadata=registration.metadata,
            generation=generation,
        )

    def close(self) -> None:
        """Drop the agent (NIXL tears it down when the last reference goes)."""
        self._agent = None


class ReaderEngine:
    """A reader's NIXL agent: connects to one owner and reads its regions into memory it registers."""

    def __init__(self, info: EngineInfo, timeout: float, host: str = "127.0.0.1") -> None:
        self._api, self._agent, self.agent_name = _agent("reader", network_devices(host))
        self.owner = info.agent
        self.timeout = timeout
        self._lock = threading.Lock()
        self._loaded: OrderedDict[str, None] = OrderedDict()  # region metadata NIXL already holds
        name = self._load(info.metadata)
        if name != info.agent:
            raise StoreError(
                f"the transfer metadata in the store config is for agent {name!r}, not {info.agent!r}; "
                "refused"
            )

    def _load(self, metadata: str) -> str:
        loaded = self._agent.add_remote_agent(_metadata(metadata))
        return loaded.decode() if isinstance(loaded, bytes) else str(loaded)

    def read(
        self, region: Region, address: int, length: int, memory: MemoryKind = "DRAM", device: int = 0
    ) -> None:
        """One-sided READ of `region` into `length` bytes at `address` (memory this process owns).

        Raises:
            StoreError: the region is not the owner's, or not `length` bytes, or NIXL refused it.
            ServiceUnavailableError: the transfer failed or did not finish within the timeout.
        """
        if region.agent != self.owner:
            raise StoreError(f"region of agent {region.agent!r} from owner {self.owner!r}; refused")
        if region.length != length:
            raise StoreError(f"region of {region.length} bytes for an object of {length}; refused")
        if length == 0:
            return
        with self._lock:
            if region.metadata not in self._loaded:
                if self._load(region.metadata) != self.owner:
                    raise StoreError("region metadata names another agent; refused")
                self._loaded[region.metadata] = None
                while len(self._loaded) > LOADED_MEMORY:
                    self._loaded.popitem(last=False)
            local = self._agent.get_reg_descs([(address, length, device, "")], memory)
            self._agent.register_memory(local, backends=["UCX"])
            try:
                self._transfer(region, address, length, memory, device)
            finally:
                self._agent.deregister_memory(local, backends=["UCX"])

    def _transfer(self, region: Region, address: int, length: int, memory: MemoryKind, device: int) -> None:
        agent = self._agent
        local = agent.get_xfer_descs([(address, length, device)], memory)
        remote = agent.get_xfer_descs([(region.address, region.length, region.device)], region.memory)
        try:
            handle = agent.initialize_xfer("READ", local, remote, self.owner, backends=["UCX"])
        except Exception as exc:  # nixlNotFoundError & co: outside what the owner registered
            raise StoreError(
                f"NIXL refused the read of {length} bytes at {region.address:#x}: {exc}"
            ) from None
        try:
            state = agent.transfer(handle)
            deadline = time.monotonic() + self.timeout
            while state == "PROC":
                if time.monotonic() > deadline:
                    raise ServiceUnavailableError(
                        f"a transfer of {length} bytes from {self.owner} did not finish in {self.timeout} s"
                    )
                time.sleep(0.0002)
                state = agent.check_xfer_state(handle)
            if state != "DONE":
                raise ServiceUnavailableError(
                    f"the transfer of {length} bytes from {self.owner} failed ({state})"
                )
        finally:
            agent.release_xfer_handle(handle)

    def close(self) -> None:
        with self._lock:
            if self._agent is not None:
                with contextlib.suppress(Exception):  # already gone: nothing to release
                    self._agent.remove_remote_agent(self.owner)
                self._agent = None
