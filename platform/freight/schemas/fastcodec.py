"""A codec specialised to `freight.v1.ObjectEvent` (schemas/object_event.avsc), the record on every event.

fastavro is general: it walks the parsed schema for every record and, for unions, tests each branch against
the datum. For the one record on the hot path that costs more than the rest of a small send together, so
this module writes and reads exactly that record's Avro binary encoding directly. The bytes are identical
to fastavro's (tests/unit/test_fastcodec.py checks both directions with hypothesis); `EventSerde` uses it
only for data written with the v1 schema itself and goes through fastavro's schema resolution for any other
writer schema (an evolved v2, a foreign writer).

Avro binary encoding used here: long/int = zigzag varint; string/bytes = long length + bytes; union = long
branch index + value; enum = int index; map/array = one block (long count, items) then a 0 count.
"""

from __future__ import annotations

from typing import Any

from freight.schemas._codec_errors import TrailingBytesError
from freight.schemas.events import (
    ArrayDescriptor,
    EventKind,
    EvictionMode,
    InlinePayload,
    ObjectEvent,
    ObjectRef,
)

_KINDS = (EventKind.OBJECT, EventKind.END_OF_STREAM)
_KIND_INDEX = {k: i for i, k in enumerate(_KINDS)}
_MODES = (EvictionMode.WATERMARK, EvictionMode.ON_RESOLVE, EvictionMode.RETENTION, EvictionMode.NEVER)
_MODE_INDEX = {m: i for i, m in enumerate(_MODES)}
# Zigzag varints of small non-negative numbers, precomputed (lengths, counts, indices, sequences).
_SMALL = [
    bytes([(n << 1)]) if n < 64 else bytes([((n << 1) & 0x7F) | 0x80, (n << 1) >> 7]) for n in range(8192)
]


def _long(out: bytearray, value: int) -> None:
    if 0 <= value < 8192:
        out += _SMALL[value]
        return
    n = (value << 1) ^ (value >> 63)
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def _string(out: bytearray, text: str) -> None:
    raw = text.encode()
    _long(out, len(raw))
    out += raw


def encode_event(event: ObjectEvent, prefix: bytes = b"") -> bytes:
    """`prefix` (the wire-format header) followed by the Avro body of `event`."""
    out = bytearray(prefix)
    _string(out, event.stream)
    _long(out, event.sequence)
    out += _SMALL[_KIND_INDEX[event.kind]]
    ref = event.object
    if ref is None:
        out += b"\x00"
    else:
        out += b"\x02"
        _string(out, ref.store)
        _string(out, ref.key)
        _long(out, ref.size)
        if ref.checksum is None:
            out += b"\x00"
        else:
            out += b"\x02"
            _string(out, ref.checksum)
        _string(out, ref.serializer)
        out += _SMALL[_MODE_INDEX[ref.eviction]]
    inline = event.inline
    if inline is None:
        out += b"\x00"
    else:
        out += b"\x02"
        _long(out, len(inline.data))
        out += inline.data
        _string(out, inline.serializer)
    desc = event.descriptor
    if desc is None:
        out += b"\x00"
    else:
        out += b"\x02"
        _string(out, desc.dtype)
        if desc.shape:
            _long(out, len(desc.shape))
            for dim in desc.shape:
                _long(out, dim)
        out += b"\x00"
        _string(out, desc.device)
    meta = event.metadata
    if meta:
        _long(out, len(meta))
        for key, value in meta.items():
            _string(out, key)
            _string(out, value)
    out += b"\x00"
    _string(out, event.producer_id)
    _long(out, event.created_at)
    return bytes(out)


def _long_at(data: bytes, pos: int) -> tuple[int, int]:
    """The zigzag varint at `pos` and the position after it (IndexError past the end)."""
    b = data[pos]
    pos += 1
    if b < 0x80:
        return (b >> 1) ^ -(b & 1), pos
    n = b & 0x7F
    shift = 7
    while b & 0x80:
        if shift > 63:
            raise ValueError("varint longer than 64 bits")
        b = data[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        shift += 7
    if n >> 64:
        raise ValueError("varint does not fit in 64 bits")
    return (n >> 1) ^ -(n & 1), pos


def _bytes_at(data: bytes, pos: int) -> tuple[bytes, int]:
    """The length-prefixed bytes at `pos` and the position after them."""
    b = data[pos]
    if b < 0x80:
        size = (b >> 1) ^ -(b & 1)
        pos += 1
    else:
        size, pos = _long_at(data, pos)
    stop = pos + size
    if size < 0 or stop > len(data):
        raise ValueError(f"length {size} runs past the end of the record")
    return data[pos:stop], stop


def _index_at(data: bytes, pos: int, limit: int) -> tuple[int, int]:
    """A union branch or enum symbol index (small, one byte when valid)."""
    b = data[pos]
    if b < 0x80:
        i = (b >> 1) ^ -(b & 1)
        pos += 1
    else:  # a longer (non-canonical) encoding of a small number: read on after all of it, as fastavro does
        i, pos = _long_at(data, pos)
    if not 0 <= i < limit:
        raise ValueError(f"branch or symbol index {i} out of range")
    return i, pos


def _count_at(data: bytes, pos: int) -> tuple[int, int]:
    """An array/map block count (a negative count is followed by the block's byte size)."""
    count, pos = _long_at(data, pos)
    if count < 0:
        _, pos = _long_at(data, pos)
        count = -count
    return count, pos


def decode_event(data: bytes, pos: int) -> ObjectEvent:
    """The event whose Avro body starts at `data[pos]`; raises ValueError/IndexError on malformed data."""
    raw, pos = _bytes_at(data, pos)
    stream = raw.decode()
    sequence, pos = _long_at(data, pos)
    k, pos = _index_at(data, pos, 2)
    branch, pos = _index_at(data, pos, 2)
    ref = None
    if branch:
        raw, pos = _bytes_at(data, pos)
        store = raw.decode()
        raw, pos = _bytes_at(data, pos)
        key = raw.decode()
        size, pos = _long_at(data, pos)
        branch, pos = _index_at(data, pos, 2)
        checksum = None
        if branch:
            raw, pos = _bytes_at(data, pos)
            checksum = raw.decode()
        raw, pos = _bytes_at(data, pos)
        mode, pos = _index_at(data, pos, 4)
        ref = ObjectRef(store, key, size, raw.decode(), checksum, _MODES[mode])
    branch, pos = _index_at(data, pos, 2)
    inline = None
    if branch:
        payload, pos = _bytes_at(data, pos)
        raw, pos = _bytes_at(data, pos)
        inline = InlinePayload(payload, raw.decode())
    branch, pos = _index_at(data, pos, 2)
    desc = None
    if branch:
        raw, pos = _bytes_at(data, pos)
        dtype = raw.decode()
        shape: list[int] = []
        count, pos = _count_at(data, pos)
        while count:
            for _ in range(count):
                dim, pos = _long_at(data, pos)
                shape.append(dim)
            count, pos = _count_at(data, pos)
        raw, pos = _bytes_at(data, pos)
        desc = ArrayDescriptor(dtype, tuple(shape), raw.decode())
    metadata: dict[str, str] = {}
    count, pos = _count_at(data, pos)
    while count:
        for _ in range(count):
            kraw, pos = _bytes_at(data, pos)
            vraw, pos = _bytes_at(data, pos)
            metadata[kraw.decode()] = vraw.decode()
        count, pos = _count_at(data, pos)
    raw, pos = _bytes_at(data, pos)
    producer_id = raw.decode()
    created_at, pos = _long_at(data, pos)
    if pos != len(data):
        raise TrailingBytesError(f"{len(data) - pos} bytes")
    return ObjectEvent(stream, sequence, producer_id, _KINDS[k], ref, inline, desc, metadata, created_at)


# --- native: the code above this line is also compiled by `make native` (mypyc) ---------------------------
# `make native` compiles the source above into the extension module `_fastcodec_native` (4x faster decoding,
# 1.6x faster encoding, docs/benchmarks.md), stamped with the SHA-256 of that source. It replaces the pure
# functions only while the stamp matches this file, so an edit here can never run stale compiled code;
# without a compiler, or with FREIGHT_PURE_PYTHON=1, the pure-Python code above runs.
NATIVE_MARKER = "# --- native: the code above this line"


def source_digest(text: str) -> str:
    """SHA-256 of the part of this module's source that `make native` compiles."""
    import hashlib

    return hashlib.sha256(text.split(NATIVE_MARKER, 1)[0].encode()).hexdigest()


def _load_native() -> Any:
    """The compiled module when it is built from exactly this source (and not disabled), else None."""
    import importlib
    import os
    from pathlib import Path

    if os.environ.get("FREIGHT_PURE_PYTHON", "") not in ("", "0"):
        return None
    try:
        native = importlib.import_module("freight.schemas._fastcodec_native")
        own = source_digest(Path(__file__).read_text(encoding="utf-8"))
    except (ImportError, OSError):
        return None
    return native if getattr(native, "SOURCE_SHA256", None) == own else None


NATIVE = _load_native()
if NATIVE is not None:  # the compiled twins of the two functions above replace them
    globals().update(encode_event=NATIVE.encode_event, decode_event=NATIVE.decode_event)

__all__ = ["NATIVE", "TrailingBytesError", "decode_event", "encode_event", "source_digest"]
