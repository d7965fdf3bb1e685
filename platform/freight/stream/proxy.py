"""Lazy proxies of stream objects.

A `Proxy` stands in for the object an event points at and resolves it on first use: attribute access,
operators, `len()`, `np.asarray(...)`, `isinstance(p, np.ndarray)` all act on the real object, fetched from
its store the first time it is needed. Pickling a proxy ships only its `ProxyRef` (Kafka coordinates, store
name and key, well under 1 KiB for stored objects), never the bytes, so a dispatcher can hand proxies to
remote workers and only the worker reads the data. A worker rebuilds the store by name from the
store-config topic, with credentials from its own environment.

Use `extract(p)` for the object itself, `is_resolved(p)` to check without resolving, `ref_of(p)` for the
reference.
"""

from __future__ import annotations

import operator
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from freight import tracing
from freight.errors import ObjectEvictedError, ObjectNotFoundError
from freight.schemas.events import ArrayDescriptor, EvictionMode


@dataclass(slots=True)
class ProxyRef:
    """Everything needed to resolve an object in any process that can reach its store (treat as a value;
    not frozen because frozen dataclasses are slow to build and one is built per consumed record)."""

    topic: str
    partition: int
    offset: int
    stream: str
    sequence: int
    serializer: str
    store: str | None = None
    key: str | None = None
    checksum: str | None = None
    descriptor: ArrayDescriptor | None = None
    eviction: EvictionMode = EvictionMode.WATERMARK
    inline: bytes | None = None
    # The cluster the event came from (no secrets). A resolving process uses it only if it is configured
    # for that cluster or allows it (freight.stores.resolver); the registry is always the process's own.
    bootstrap: str | None = None
    group: str | None = None  # the consumer group that handed it out (on-resolve: see stream/onresolve.py)
    trace: str | None = None  # W3C traceparent of the receive span when tracing is on (freight.tracing)

    def where(self) -> str:
        """The event's coordinates for messages: "topic 't' partition 0 offset 5"."""
        return f"topic {self.topic!r} partition {self.partition} offset {self.offset}"


class _MissingObjectError(ObjectEvictedError):
    """An object missing from its store; the message says why, asking Kafka only when it is read.

    The explanation (evicted by policy at which checkpoint, an on-resolve object already resolved, a lost
    write) costs a Kafka round trip, so consumers that skip evicted items (`skip_evicted`) never pay it.
    """

    def __init__(self, ref: ProxyRef) -> None:
        super().__init__(ref.where())
        self.ref = ref
        self._text: str | None = None

    def __str__(self) -> str:
        if self._text is None:
            ref = self.ref
            try:
                from freight.kafka.checkpoint import explain_missing
                from freight.stores.resolver import default_resolver

                settings = default_resolver().settings_for(ref.bootstrap)
                why = explain_missing(ref.topic, ref.partition, ref.offset, ref.eviction, settings=settings)
            except Exception:  # Kafka unreachable: say what is certain
                why = "it was evicted, or its write was lost"
            self._text = (
                f"the object of {ref.where()} (store {ref.store!r}, key {ref.key!r}) is not in its store: "
                f"{why}. Replays can only resolve objects still retained; set a retention policy that keeps "
                "them (`freight evict policy set`), or skip evicted items (skip_evicted=True)."
            )
        return self._text


def _resolve_ref(ref: ProxyRef) -> Any:
    """Fetch and deserialize the object of `ref` (honouring ON_RESOLVE eviction)."""
    tracer = tracing.TRACER
    if tracer is None and not tracing.ENV_CHECKED:
        tracing.instrument_from_environment()
        tracer = tracing.TRACER
    if tracer is not None:
        with tracing.resolve_span(tracer, ref.trace, ref.store, ref.key):
            return _fetch(ref)
    return _fetch(ref)


def _fetch(ref: ProxyRef) -> Any:
    from freight.stores.resolver import default_resolver

    if ref.inline is not None:
        return default_resolver().deserialize_inline(ref.serializer, ref.inline, ref.descriptor)
    assert ref.store is not None and ref.key is not None
    store = default_resolver().store(ref.store, bootstrap=ref.bootstrap)
    try:
        obj = store.get(ref.key, checksum=ref.checksum, mmap=True)  # zero-copy where the store can map
    except ObjectNotFoundError as exc:
        raise _MissingObjectError(ref) from exc
    if ref.eviction is EvictionMode.ON_RESOLVE:
        from freight.stream.onresolve import MARKS

        # Deleted once the group commits past the event (safe if it is delivered again); without a
        # group nothing delivers it again: delete it now.
        if not MARKS.resolved(ref) and ref.group is None:
            store.evict(ref.key)
    return obj


_set = object.__setattr__
# Striped locks: concurrent first resolutions of one proxy fetch once, different proxies rarely contend,
# and no proxy pays for a lock of its own.
_LOCKS = [threading.Lock() for _ in range(64)]


class Proxy:
    """A transparent, lazily resolved stand-in for a stream object (see the module docstring)."""

    __slots__ = ("__freight_ref", "__freight_resolved", "__freight_target")

    def __init__(self, ref: ProxyRef) -> None:
        _set(self, "_Proxy__freight_ref", ref)
        _set(self, "_Proxy__freight_resolved", False)
        _set(self, "_Proxy__freight_target", None)

    # Resolution ------------------------------------------------------------------------------------
    def _freight_resolve(self) -> Any:
        if object.__getattribute__(self, "_Proxy__freight_resolved"):
            return object.__getattribute__(self, "_Proxy__freight_target")
        with _LOCKS[id(self) % len(_LOCKS)]:
            if not object.__getattribute__(self, "_Proxy__freight_resolved"):
                target = _resolve_ref(object.__getattribute__(self, "_Proxy__freight_ref"))
                object.__setattr__(self, "_Proxy__freight_target", target)
                object.__setattr__(self, "_Proxy__freight_resolved", True)
        return object.__getattribute__(self, "_Proxy__freight_target")

    # Pickle as a reference ---------------------------------------------------------------------------
    def __reduce__(self) -> tuple[Callable[[ProxyRef], Proxy], tuple[ProxyRef]]:
        return Proxy, (object.__getattribute__(self, "_Proxy__freight_ref"),)

    def __reduce_ex__(self, protocol: object) -> tuple[Callable[[ProxyRef], Proxy], tuple[ProxyRef]]:
        return self.__reduce__()

    def __copy__(self) -> Proxy:
        return Proxy(object.__getattribute__(self, "_Proxy__freight_ref"))

    # Transparency ------------------------------------------------------------------------------------
    @property  # type: ignore[misc]
    def __class__(self) -> type:  # isinstance(p, T) checks the target's class
        return type(self._freight_resolve())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._freight_resolve(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._freight_resolve(), name, value)

    def __delattr__(self, name: str) -> None:
        delattr(self._freight_resolve(), name)

    def __repr__(self) -> str:
        ref: ProxyRef = object.__getattribute__(self, "_Proxy__freight_ref")
        if object.__getattribute__(self, "_Proxy__freight_resolved"):
            return repr(object.__getattribute__(self, "_Proxy__freight_target"))
        return f"<Proxy of {ref.stream}#{ref.sequence} at {ref.where()}, unresolved>"

    def __str__(self) -> str:
        return str(self._freight_resolve())

    def __bool__(self) -> bool:
        return bool(self._freight_resolve())

    def __len__(self) -> int:
        return len(self._freight_resolve())

    def __iter__(self) -> Any:
        return iter(self._freight_resolve())

    def __contains__(self, item: object) -> bool:
        return item in self._freight_resolve()

    def __getitem__(self, key: Any) -> Any:
        return self._freight_resolve()[key]

    def __setitem__(self, key: Any, value: Any) -> None:
        self._freight_resolve()[key] = value

    def __delitem__(self, key: Any) -> None:
        del self._freight_resolve()[key]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._freight_resolve()(*args, **kwargs)

    def __hash__(self) -> int:
        return hash(self._freight_resolve())

    def __eq__(self, other: object) -> Any:
        return self._freight_resolve() == other

    def __ne__(self, other: object) -> Any:
        return self._freight_resolve() != other

    def __lt__(self, other: Any) -> Any:
        return self._freight_resolve() < other

    def __le__(self, other: Any) -> Any:
        return self._freight_resolve() <= other

    def __gt__(self, other: Any) -> Any:
        return self._freight_resolve() > other

    def __ge__(self, other: Any) -> Any:
        return self._freight_resolve() >= other

    def __bytes__(self) -> bytes:
        return bytes(self._freight_resolve())

    def __int__(self) -> int:
        return int(self._freight_resolve())

    def __float__(self) -> float:
        return float(self._freight_resolve())

    def __index__(self) -> int:
        return operator.index(self._freight_resolve())

    def __array__(self, *args: Any, **kwargs: Any) -> Any:
        import numpy as np

        return np.asarray(self._freight_resolve(), *args, **kwargs)

    def __buffer__(self, flags: int) -> memoryview:
        return memoryview(self._freight_resolve())

    def __enter__(self) -> Any:
        return self._freight_resolve().__enter__()

    def __exit__(self, *exc: object) -> Any:
        return self._freight_resolve().__exit__(*exc)


def _binary(op: Callable[[Any, Any], Any]) -> tuple[Callable[[Proxy, Any], Any], Callable[[Proxy, Any], Any]]:
    def forward(self: Proxy, other: Any) -> Any:
        return op(self._freight_resolve(), other)

    def reflected(self: Proxy, other: Any) -> Any:
        return op(other, self._freight_resolve())

    return forward, reflected


for _name, _op in {
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "matmul": operator.matmul,
    "truediv": operator.truediv,
    "floordiv": operator.floordiv,
    "mod": operator.mod,
    "pow": operator.pow,
    "and": operator.and_,
    "or": operator.or_,
    "xor": operator.xor,
    "lshift": operator.lshift,
    "rshift": operator.rshift,
}.items():
    _fwd, _rev = _binary(_op)
    setattr(Proxy, f"__{_name}__", _fwd)
    setattr(Proxy, f"__r{_name}__", _rev)


def _unary(op: Callable[[Any], Any]) -> Callable[[Proxy], Any]:
    def forward(self: Proxy) -> Any:
        return op(self._freight_resolve())

    return forward


_UNARY: dict[str, Callable[[Any], Any]] = {
    "neg": operator.neg,
    "pos": operator.pos,
    "abs": operator.abs,
    "invert": operator.invert,
}
for _name, _uop in _UNARY.items():
    setattr(Proxy, f"__{_name}__", _unary(_uop))


def extract(proxy: Proxy) -> Any:
    """The object behind a proxy, resolving it if needed.

    Args:
        proxy: A proxy handed out by a `StreamConsumer` (or unpickled from one).

    Returns:
        The object itself (fetched from its store, or decoded from the event, on first use).
    """
    return proxy._freight_resolve()


def is_resolved(proxy: Proxy) -> bool:
    """Whether the proxy's object has been fetched, without fetching it.

    Args:
        proxy: The proxy to inspect.

    Returns:
        True once the object was resolved in this process (an unpickled proxy starts unresolved).
    """
    resolved: bool = object.__getattribute__(proxy, "_Proxy__freight_resolved")
    return resolved


def ref_of(proxy: Proxy) -> ProxyRef:
    """The reference a proxy resolves (and pickles as), without resolving it.

    Args:
        proxy: The proxy to inspect.

    Returns:
        Its `ProxyRef`: Kafka coordinates, store name and key (or the inline bytes).
    """
    ref: ProxyRef = object.__getattribute__(proxy, "_Proxy__freight_ref")
    return ref
