"""`Store`: a named connector plus serializers, checksums and metrics (`StoreStats`, and Prometheus's).

`put` serializes an object into buffers, prefixes the framing header (serializer, descriptor, checksum) and
hands header and buffers to the connector's vectored `put`, so a large payload is never concatenated. `get`
needs only the key: it reads the object (memory-mapped on request), checks the header, verifies the payload
checksum against the header and against the checksum the event recorded, and deserializes without copying
where the serializer can. Connectors that keep live objects (the tensor connector) receive tensors as they
are and hand them back zero-copy.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Self

from freight import metrics, tracing
from freight.config import FreightSettings
from freight.connectors.keys import validate_key
from freight.connectors.protocol import (
    Buffer,
    Connector,
    DeferredBuffer,
    MappableConnector,
    ObjectConnector,
    ObservableConnector,
    ResidentObject,
)
from freight.errors import ConfigError, IntegrityError, ObjectNotFoundError, SerializationError
from freight.schemas.events import ArrayDescriptor
from freight.stores import checksums
from freight.stores.config import StoreConfig, check_store_name
from freight.stores.factory import build_connector
from freight.stores.framing import MAGIC, Frame, check_size, decode_header, encode_header, payload_view
from freight.stores.overlapped_hashing import STREAM_MIN, ReadVerifier, hash_later
from freight.stores.serializers import BytesSerializer, SerializedObject, SerializerRegistry

LOG = logging.getLogger("freight.stores")


@dataclass(frozen=True, slots=True)
class StoredObject:
    """What `put` wrote: the key, its size in the store (header included), checksum and how to read it."""

    key: str
    size: int
    checksum: str | None
    serializer: str
    descriptor: ArrayDescriptor | None


@dataclass(frozen=True, slots=True)
class InlineObject:
    """An object small enough to travel inside its event: its serialized bytes, not a store entry."""

    payload: bytes
    serializer: str
    descriptor: ArrayDescriptor | None = None

    @property
    def nbytes(self) -> int:
        return len(self.payload)


def place_serialized(ser: SerializedObject, inline_threshold: int) -> InlineObject | None:
    """`ser` as an `InlineObject` when it is smaller than `inline_threshold` bytes, else None."""
    if ser.nbytes >= inline_threshold:
        return None
    return InlineObject(ser.to_bytes(), ser.serializer, ser.descriptor)


@dataclass
class StoreStats:
    """Counters of one `Store` object (this process only)."""

    bytes_written: int = 0
    bytes_read: int = 0
    objects_written: int = 0
    reads: int = 0
    hits: int = 0
    misses: int = 0
    evictions: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class Store:
    """A named store: `put` objects, `get` them back by key, anywhere the store config can be rebuilt.

    Every stored object is framed (a header with serializer, size, checksum and descriptor) so that a read
    checks what it returns: wrong bytes are never handed out.

    Args:
        name: the store's name (events refer to it; letters, digits, `._-`).
        connector: where the bytes live (file, S3, memory, tensor; `freight.connectors`).
        serializers: the serializer registry (None: the default one).
        checksum: the checksum algorithm of new objects ("xxh3" default, "sha256", or None: none).
        allow_pickle: whether pickled objects may be read (None: `FREIGHT_ALLOW_PICKLE`).

    Raises:
        ConfigError: a bad name or checksum algorithm.
    """

    def __init__(
        self,
        name: str,
        connector: Connector,
        *,
        serializers: SerializerRegistry | None = None,
        checksum: str | None = checksums.DEFAULT_ALGORITHM,
        allow_pickle: bool | None = None,
    ) -> None:
        try:
            self.name = check_store_name(name)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        self.connector = connector
        self.checksum = checksums.check_algorithm(checksum)
        if serializers is None:
            pickle = FreightSettings().allow_pickle if allow_pickle is None else allow_pickle
            serializers = SerializerRegistry(allow_pickle=pickle)
        elif allow_pickle is not None:
            serializers = serializers.copy(allow_pickle=allow_pickle)
        self.serializers = serializers
        self._objects: ObjectConnector | None = connector if isinstance(connector, ObjectConnector) else None
        self._mappable: MappableConnector | None = (
            connector if isinstance(connector, MappableConnector) else None
        )
        self._observable: ObservableConnector | None = (
            connector if isinstance(connector, ObservableConnector) and self._objects is None else None
        )
        self._stats = StoreStats()
        self._lock = threading.Lock()
        self._metrics = metrics.store_metrics(self.name)

    def __repr__(self) -> str:
        return f"Store({self.name!r}, {self.connector!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- serialization -----------------------------------------------------------------------------------

    def serialize(self, obj: Any, serializer: str | None = None) -> SerializedObject:
        """`obj` as buffers + descriptor (also what an event carries inline for tiny objects)."""
        return self.serializers.serialize(obj, serializer)

    def deserialize(self, serializer: str, payload: Buffer, descriptor: ArrayDescriptor | None) -> Any:
        """Rebuild an object from a payload without framing (an inline payload carried in an event)."""
        return self.serializers.deserialize(serializer, payload, descriptor)

    # -- writing -----------------------------------------------------------------------------------------

    def _count_write(self, size: int, objects: int = 1) -> None:
        with self._lock:
            self._stats.bytes_written += size
            self._stats.objects_written += objects
        self._metrics.bytes_written.inc(size)
        self._metrics.objects_written.inc(objects)

    def _frame(self, ser: SerializedObject) -> tuple[bytes | DeferredBuffer, int, Callable[[], str | None]]:
        """(header, header size, digest source). For a large payload the checksum is computed on another
        core while the connector writes, and the header holding it is deferred (written last)."""
        algorithm = self.checksum
        if algorithm is None or ser.nbytes < STREAM_MIN:
            digest = checksums.compute(algorithm, ser.buffers) if algorithm else None
            header = encode_header(ser.serializer, ser.nbytes, digest, ser.descriptor)
            return header, len(header), lambda: digest
        future = hash_later(algorithm, ser.buffers)
        size = len(
            encode_header(ser.serializer, ser.nbytes, checksums.placeholder(algorithm), ser.descriptor)
        )

        def produce() -> bytes:
            return encode_header(ser.serializer, ser.nbytes, future.result(), ser.descriptor)

        return DeferredBuffer(size, produce), size, future.result

    def put_serialized(self, key: str, ser: SerializedObject) -> StoredObject:
        """Write an already serialized object under `key` (a tensor store keeps `ser.source` as it is)."""
        validate_key(key)
        tracer = tracing.TRACER
        if tracer is not None:
            with tracing.store_span(tracer, "put", self.name, key):
                return self._write(key, ser)
        return self._write(key, ser)

    def _write(self, key: str, ser: SerializedObject) -> StoredObject:
        if ser.source is not None and self._resident(ser.source, ser.serializer):
            return self._put_resident(key, ser.source)
        header, header_size, digest = self._frame(ser)
        self.connector.put(key, [header, *ser.buffers])
        size = header_size + ser.nbytes
        self._count_write(size)
        return StoredObject(key, size, digest(), ser.serializer, ser.descriptor)

    def _resident(self, obj: Any, serializer: str | None) -> bool:
        return self._objects is not None and serializer in (None, "torch") and self._objects.accepts(obj)

    def _put_resident(self, key: str, obj: Any) -> StoredObject:
        assert self._objects is not None
        descriptor = ArrayDescriptor(
            str(obj.dtype).removeprefix("torch."), tuple(int(n) for n in obj.shape), str(obj.device)
        )
        nbytes = int(obj.numel()) * int(obj.element_size())
        header = encode_header("torch", nbytes, None, descriptor)
        held = self._objects.put_object(key, header, obj)
        size = len(header) + held
        self._count_write(size)
        return StoredObject(key, size, None, "torch", descriptor)

    def place(
        self,
        obj: Any,
        *,
        key: Callable[[], str],
        serializer: str | None = None,
        inline_threshold: int = 0,
    ) -> InlineObject | StoredObject:
        """Decide where `obj` goes, once, and put it there.

        A store that keeps objects resident (the tensor store, for the tensors it accepts) takes the object
        itself, never inlined; otherwise the object is serialized, and returned inline when smaller than
        `inline_threshold` bytes, else written under a new key.

        Args:
            obj: the object.
            key: called for the key only when the object is written (so inline objects use none).
            serializer: a serializer name, or None for the registry's choice.
            inline_threshold: objects serialized smaller than this many bytes stay inline (0: never).

        Returns:
            An `InlineObject` (bytes for the event) or the `StoredObject` written.
        """
        if (
            type(obj) is bytes
            and len(obj) < inline_threshold
            and serializer is None
            and self._objects is None
            and self.serializers.plain_bytes
        ):
            return InlineObject(obj, BytesSerializer.name)  # what the bytes serializer would give, sooner
        if self._resident(obj, serializer):
            name = validate_key(key())
            tracer = tracing.TRACER
            if tracer is not None:
                with tracing.store_span(tracer, "put", self.name, name):
                    return self._put_resident(name, obj)
            return self._put_resident(name, obj)
        ser = self.serialize(obj, serializer)
        inline = place_serialized(ser, inline_threshold)
        if inline is not None:
            return inline
        return self.put_serialized(key(), ser)

    def put(self, obj: Any, *, key: str | None = None, serializer: str | None = None) -> StoredObject:
        """Store `obj` and describe what was written.

        Args:
            obj: the object (numpy array, torch tensor, bytes, or anything a serializer takes).
            key: the key (None: a new unique one).
            serializer: a serializer name (None: the registry's choice for the object's type).

        Returns:
            The `StoredObject` (key, size, checksum, serializer, descriptor).
        """
        key = uuid.uuid4().hex if key is None else validate_key(key)
        return self.put_serialized(key, self.serialize(obj, serializer))

    def put_batch(self, objs: Sequence[Any], keys: Sequence[str] | None = None) -> list[StoredObject]:
        """Store several objects with one connector batch (concurrent where the connector can).

        Args:
            objs: the objects.
            keys: their keys, one per object (None: new unique ones).

        Returns:
            One `StoredObject` per object, in order.
        """
        if keys is None:
            keys = [uuid.uuid4().hex for _ in objs]
        elif len(keys) != len(objs):
            raise ValueError(f"put_batch got {len(objs)} objects but {len(keys)} keys")
        out: list[StoredObject | None] = [None] * len(objs)
        items: list[tuple[str, list[Buffer | DeferredBuffer]]] = []
        pending: list[tuple[int, str, int, SerializedObject, Callable[[], str | None]]] = []
        for i, (key, obj) in enumerate(zip(keys, objs, strict=True)):
            validate_key(key)
            ser = self.serialize(obj)
            if ser.source is not None and self._resident(ser.source, ser.serializer):
                out[i] = self._put_resident(key, ser.source)
                continue
            header, header_size, digest = self._frame(ser)
            items.append((key, [header, *ser.buffers]))
            pending.append((i, key, header_size + ser.nbytes, ser, digest))
        if items:
            self.connector.put_batch(items)
            for i, key, size, ser, digest in pending:
                out[i] = StoredObject(key, size, digest(), ser.serializer, ser.descriptor)
            self._count_write(sum(p[2] for p in pending), len(pending))
        return [o for o in out if o is not None]

    # -- reading -----------------------------------------------------------------------------------------

    def _where(self, key: str) -> str:
        return f"object {key!r} in store {self.name!r}"

    def _not_found(self, key: str, exc: ObjectNotFoundError) -> ObjectNotFoundError:
        with self._lock:
            self._stats.reads += 1
            self._stats.misses += 1
        self._metrics.misses.inc()
        return type(exc)(f"{self._where(key)} not found: {exc}")

    def _verify(
        self,
        key: str,
        recorded: str | None,
        payload: memoryview,
        expected: str | None,
        digests: dict[str, str] | None = None,
    ) -> None:
        """Check the payload against its header checksum and the checksum the event recorded.

        `digests` ({algorithm: 'algorithm:hex'}) were computed while the payload was read; others are
        computed here.
        """
        known = dict(digests or {})

        def digest(algorithm: str) -> str:
            if algorithm not in known:
                known[algorithm] = checksums.compute(algorithm, [payload])
            return known[algorithm]

        if recorded is not None:
            actual = digest(checksums.parse(recorded)[0])
            if actual != recorded:
                raise IntegrityError(
                    f"{self._where(key)} is corrupt: its payload hashes to {actual}, but its header "
                    f"recorded {recorded}. Rewrite it from the source."
                )
        if expected is None:
            return
        algorithm, hexdigest = checksums.parse(expected)
        actual = digest(algorithm)
        if actual != f"{algorithm}:{hexdigest}":
            raise IntegrityError(
                f"{self._where(key)} does not match the checksum its event recorded: expected {expected}, "
                f"found {actual}. The object was overwritten or corrupted after the event was produced."
            )

    def _decode(
        self,
        key: str,
        entry: Buffer | ResidentObject,
        expected: str | None,
        digests: dict[str, str] | None = None,
        frame: Frame | None = None,
    ) -> Any:
        """Check and deserialize one object; `frame` is its header if already parsed while reading."""
        where = self._where(key)
        if isinstance(entry, ResidentObject):
            frame = decode_header(entry.header, where, whole=False)
            if expected is not None:
                ser = self.serializers.serialize(entry.obj, "torch")
                self._verify(key, None, memoryview(ser.to_bytes()), expected)
            size = frame.header_len + entry.nbytes
            obj: Any = entry.obj
        else:
            if frame is None:
                frame = decode_header(entry, where)
            else:
                check_size(frame, memoryview(entry).nbytes, where)
            payload = payload_view(entry, frame)
            self._verify(key, frame.checksum, payload, expected, digests)
            size = frame.total
            try:
                obj = self.serializers.deserialize(frame.serializer, payload, frame.descriptor)
            except SerializationError as exc:
                raise type(exc)(f"{where}: {exc}") from exc
        with self._lock:
            self._stats.reads += 1
            self._stats.hits += 1
            self._stats.bytes_read += size
        self._metrics.hits.inc()
        self._metrics.bytes_read.inc(size)
        return obj

    def _fetch(self, key: str, mmap: bool) -> Buffer | ResidentObject:
        try:
            if self._objects is not None:
                return self._objects.get_entry(key)
            if mmap and self._mappable is not None:
                return self._mappable.get_mapped(key)
            return self.connector.get(key)
        except ObjectNotFoundError as exc:
            raise self._not_found(key, exc) from None

    def _get_verified_while_reading(self, key: str, expected: str | None) -> Any:
        assert self._observable is not None
        verifier = ReadVerifier(self._where(key), expected)
        try:
            data = self._observable.get_observed(key, verifier)
        except ObjectNotFoundError as exc:
            raise self._not_found(key, exc) from None
        finally:
            verifier.close()
        return self._decode(key, data, expected, verifier.digests(), verifier.frame)

    def get(self, key: str, *, checksum: str | None = None, mmap: bool = False) -> Any:
        """The object under `key`, checked against its frame.

        Args:
            key: the object's key.
            checksum: what the event recorded (checked too when given).
            mmap: map the file instead of reading it (connectors that can; arrays are then read-only views).

        Returns:
            The object.

        Raises:
            ObjectNotFoundError: nothing under `key` (ObjectEvictedError where the connector knows why).
            IntegrityError: the bytes do not match their header or `checksum`.
        """
        validate_key(key)
        tracer = tracing.TRACER
        if tracer is not None:
            with tracing.store_span(tracer, "get", self.name, key):
                return self._read(key, checksum, mmap)
        return self._read(key, checksum, mmap)

    def _read(self, key: str, checksum: str | None, mmap: bool) -> Any:
        start = time.perf_counter()
        if self._observable is not None and not mmap:
            obj = self._get_verified_while_reading(key, checksum)
        else:
            obj = self._decode(key, self._fetch(key, mmap), checksum)
        self._metrics.resolve_seconds.observe(time.perf_counter() - start)
        return obj

    def get_batch(self, keys: Sequence[str], *, checksums: Sequence[str | None] | None = None) -> list[Any]:
        """Objects for `keys`, fetched in one connector batch.

        Args:
            keys: the keys.
            checksums: what the events recorded, one per key (None: the frames' own).

        Returns:
            The objects, in order.

        Raises:
            ObjectNotFoundError: naming every missing key at once.
            IntegrityError: as `get`.
        """
        for key in keys:
            validate_key(key)
        if checksums is not None and len(checksums) != len(keys):
            raise ValueError(f"get_batch got {len(keys)} keys but {len(checksums)} checksums")
        start = time.perf_counter()
        entries: Sequence[Buffer | ResidentObject | None]
        if self._objects is not None:
            entries = self._objects.get_entries(keys)
        else:
            entries = self.connector.get_batch(keys)
        missing = [k for k, e in zip(keys, entries, strict=True) if e is None]
        if missing:
            with self._lock:
                self._stats.reads += len(missing)
                self._stats.misses += len(missing)
            self._metrics.misses.inc(len(missing))
            shown = ", ".join(repr(k) for k in missing[:5]) + (" ..." if len(missing) > 5 else "")
            raise ObjectNotFoundError(f"{len(missing)} object(s) not found in store {self.name!r}: {shown}")
        expected = checksums if checksums is not None else [None] * len(keys)
        objs = [
            self._decode(k, e, c) for k, e, c in zip(keys, entries, expected, strict=True) if e is not None
        ]
        if objs:  # one observation per object: the batch's time shared out
            each = (time.perf_counter() - start) / len(objs)
            for _ in objs:
                self._metrics.resolve_seconds.observe(each)
        return objs

    def exists(self, key: str) -> bool:
        """Whether an object is stored under `key`.

        Args:
            key: the object's key.

        Returns:
            True if it is there.
        """
        return self.connector.exists(validate_key(key))

    # -- eviction and lifecycle --------------------------------------------------------------------------

    def evict(self, key: str) -> bool:
        """Delete the object under `key` (the evictor decides when; see `freight.eviction`).

        Args:
            key: the object's key.

        Returns:
            True if it existed.
        """
        existed = self.connector.evict(validate_key(key))
        if existed:
            with self._lock:
                self._stats.evictions += 1
            self._metrics.evictions.inc()
        return existed

    def evict_batch(self, keys: Sequence[str], *, only_framed: bool = False) -> int:
        """Delete the objects under `keys`; return how many existed.

        Args:
            keys: Store keys (validated: relative, no traversal).
            only_framed: Delete only objects that provably are Freight's: on a connector that can map its
                objects (file stores), an object that does not start with a Freight header is left alone
                and logged. The evictor sets it, since the keys it deletes come from Kafka records.

        Returns:
            The number of objects deleted.
        """
        for key in keys:
            validate_key(key)
        if only_framed and self._mappable is not None:
            keys = [k for k in keys if self._is_framed(k)]
        count = self.connector.evict_batch(keys)
        with self._lock:
            self._stats.evictions += count
        self._metrics.evictions.inc(count)
        return count

    def _is_framed(self, key: str) -> bool:
        """True unless the object exists and does not start with a Freight header (then it is logged)."""
        assert self._mappable is not None
        try:
            view = self._mappable.get_mapped(key)
        except ObjectNotFoundError:
            return True  # nothing to delete; the connector reports it missing
        try:
            if bytes(view[: len(MAGIC)]) == MAGIC:
                return True
        finally:
            view.release()
        LOG.warning(
            "refusing to delete %s: it does not start with a Freight header, so it was not written by a "
            "Freight store (a key from a foreign record?)",
            self._where(key),
        )
        return False

    def close(self) -> None:
        """Release the connector (open files, clients, shared memory)."""
        self.connector.close()

    @property
    def stats(self) -> StoreStats:
        """A snapshot of this store object's counters."""
        with self._lock:
            return StoreStats(**asdict(self._stats))

    def config(self) -> StoreConfig:
        """What another process needs to rebuild this store (published to the store-config topic)."""
        return StoreConfig(
            name=self.name,
            connector=self.connector.kind,
            options=self.connector.config(),
            checksum=self.checksum,
        )

    @classmethod
    def from_config(cls, cfg: StoreConfig) -> Store:
        """Rebuild a store from its config; credentials come from this process's environment only."""
        return cls(cfg.name, build_connector(cfg.connector, cfg.options), checksum=cfg.checksum)
