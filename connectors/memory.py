"""`MemoryConnector`: objects in this process's memory, shared by name within the process.

For tests and small single-process jobs. Connectors built with the same `name` (including through
`from_config`, as a consumer rebuilding a store does) see the same objects; nothing crosses processes.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Self

from pydantic import Field

from freight.connectors._options import ConnectorOptions
from freight.connectors.keys import validate_key
from freight.connectors.protocol import Blob, Buffer, ObjectInfo, byte_views
from freight.errors import ObjectEvictedError, ObjectNotFoundError

#: How many evicted keys a space remembers, to tell "evicted" from "never written".
EVICTED_MEMORY = 4096


class MemoryOptions(ConnectorOptions):
    kind_name = "memory"
    name: str = Field(min_length=1, max_length=200, description="Space shared by connectors of this name.")


class _Space:
    """The objects of one named memory space."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.objects: dict[str, tuple[bytes, float]] = {}
        self.evicted: OrderedDict[str, None] = OrderedDict()

    def forget_eviction(self, key: str) -> None:
        self.evicted.pop(key, None)

    def remember_eviction(self, key: str) -> None:
        self.evicted[key] = None
        while len(self.evicted) > EVICTED_MEMORY:
            self.evicted.popitem(last=False)


_SPACES: dict[str, _Space] = {}
_SPACES_LOCK = threading.Lock()


def _space(name: str) -> _Space:
    with _SPACES_LOCK:
        space = _SPACES.get(name)
        if space is None:
            space = _SPACES[name] = _Space()
        return space


class MemoryConnector:
    """Objects as immutable `bytes` in a process-global space keyed by `name`."""

    kind = "memory"

    def __init__(self, name: str | None = None) -> None:
        self.name = MemoryOptions.parse({"name": name or f"mem-{uuid.uuid4().hex[:12]}"}).name
        self._space = _space(self.name)

    def __repr__(self) -> str:
        return f"MemoryConnector(name={self.name!r})"

    def put(self, key: str, data: Blob) -> None:
        validate_key(key)
        if isinstance(data, bytes):
            payload = data  # immutable: keep it as is
        else:
            # One copy: the caller may reuse its buffers after put returns.
            views = byte_views(data)
            payload = views[0].tobytes() if len(views) == 1 else b"".join(views)
        with self._space.lock:
            self._space.objects[key] = (payload, time.time())
            self._space.forget_eviction(key)

    def put_batch(self, items: Sequence[tuple[str, Blob]]) -> None:
        for key, data in items:
            self.put(key, data)

    def _missing(self, key: str) -> ObjectNotFoundError:
        if key in self._space.evicted:
            return ObjectEvictedError(f"object {key!r} was evicted from memory space {self.name!r}")
        return ObjectNotFoundError(f"no object {key!r} in memory space {self.name!r}")

    def get(self, key: str) -> Buffer:
        validate_key(key)
        with self._space.lock:
            entry = self._space.objects.get(key)
            if entry is None:
                raise self._missing(key)
        return entry[0]

    def get_batch(self, keys: Sequence[str]) -> list[Buffer | None]:
        for key in keys:
            validate_key(key)
        with self._space.lock:
            found = [self._space.objects.get(key) for key in keys]
        return [None if entry is None else entry[0] for entry in found]

    def exists(self, key: str) -> bool:
        validate_key(key)
        return key in self._space.objects

    def evict(self, key: str) -> bool:
        validate_key(key)
        with self._space.lock:
            existed = self._space.objects.pop(key, None) is not None
            if existed:
                self._space.remember_eviction(key)
        return existed

    def evict_batch(self, keys: Sequence[str]) -> int:
        return sum(self.evict(key) for key in keys)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        with self._space.lock:
            items = [(k, len(v[0]), v[1]) for k, v in self._space.objects.items() if k.startswith(prefix)]
        for key, size, modified in sorted(items):
            yield ObjectInfo(key, size, modified)

    def close(self) -> None:
        """Nothing to release: the space outlives connectors so that others of the same name see it."""

    def destroy(self) -> None:
        """Drop this space and every object in it (for every connector of this name in the process)."""
        with _SPACES_LOCK:
            _SPACES.pop(self.name, None)
        with self._space.lock:
            self._space.objects.clear()

    def config(self) -> dict[str, Any]:
        return {"name": self.name}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Self:
        return cls(MemoryOptions.parse(config).name)
