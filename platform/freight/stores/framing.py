"""The framing header that makes every stored object self-describing.

Layout (little endian): a 28-byte fixed part

    magic 'FRGT' | version u8 | flags u8 | meta length u16 | header length u32 | payload length u64 |
    header hash u64 (xxh3_64 of the header with this field zeroed)

then the metadata as compact JSON (serializer, payload checksum, array descriptor), then zero padding up to
a multiple of 64 bytes, where the payload starts. The padding puts the payload at an aligned offset, so a
memory-mapped numpy array is aligned for every dtype and for SIMD loads. The header hash catches a corrupt
header (a flipped length or dtype) before it can be misread.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

import xxhash

from freight.connectors.protocol import Buffer
from freight.errors import IntegrityError, StoreError
from freight.schemas.events import ArrayDescriptor

MAGIC = b"FRGT"
VERSION = 1
ALIGN = 64
_FIXED = struct.Struct("<4sBBHIQQ")
FIXED_SIZE = _FIXED.size
_HASH_OFFSET = FIXED_SIZE - 8


@dataclass(frozen=True, slots=True)
class Frame:
    """A decoded header: what the payload is and where it lies."""

    serializer: str
    checksum: str | None
    descriptor: ArrayDescriptor | None
    header_len: int
    payload_len: int

    @property
    def total(self) -> int:
        return self.header_len + self.payload_len


def _descriptor_json(desc: ArrayDescriptor | None) -> dict[str, Any] | None:
    if desc is None:
        return None
    return {"dtype": desc.dtype, "shape": list(desc.shape), "device": desc.device}


def encode_header(
    serializer: str, payload_len: int, checksum: str | None, descriptor: ArrayDescriptor | None
) -> bytes:
    """The header for a payload of `payload_len` bytes, padded so that the payload starts aligned."""
    meta = json.dumps(
        {"s": serializer, "c": checksum, "d": _descriptor_json(descriptor)}, separators=(",", ":")
    ).encode()
    if len(meta) > 0xFFFF:
        raise StoreError(f"object metadata is {len(meta)} bytes; the header holds at most 65535")
    header_len = -(-(FIXED_SIZE + len(meta)) // ALIGN) * ALIGN
    out = bytearray(header_len)
    _FIXED.pack_into(out, 0, MAGIC, VERSION, 0, len(meta), header_len, payload_len, 0)
    out[FIXED_SIZE : FIXED_SIZE + len(meta)] = meta
    struct.pack_into("<Q", out, _HASH_OFFSET, xxhash.xxh3_64_intdigest(out))
    return bytes(out)


def decode_header(buf: Buffer, where: str, *, whole: bool = True) -> Frame:
    """Parse the header at the start of `buf`; `where` names the object in errors ("store 's' key 'k'").

    With `whole`, `buf` must be the entire object, and its length must match the header's.
    """
    view = memoryview(buf).cast("B") if not isinstance(buf, bytes) else memoryview(buf)
    if view.nbytes < FIXED_SIZE:
        raise IntegrityError(
            f"{where} is {view.nbytes} bytes, shorter than a Freight header: truncated, or not written by "
            "a Freight store"
        )
    magic, version, _flags, meta_len, header_len, payload_len, stored_hash = _FIXED.unpack_from(view, 0)
    if magic != MAGIC:
        # Its bytes are not echoed: the object may be any file a foreign record pointed at.
        raise IntegrityError(
            f"{where} does not start with a Freight header: it was not written by a Freight store"
        )
    if version > VERSION:
        raise StoreError(
            f"{where} was written in framing version {version} by a newer Freight; this one reads up to "
            f"{VERSION}. Upgrade freight in this process."
        )
    if header_len < FIXED_SIZE + meta_len or header_len > view.nbytes:
        raise IntegrityError(f"{where} has a corrupt header (header length {header_len})")
    head = bytearray(view[:header_len])
    struct.pack_into("<Q", head, _HASH_OFFSET, 0)
    if xxhash.xxh3_64_intdigest(head) != stored_hash:
        raise IntegrityError(f"{where} has a corrupt header (its hash does not match)")
    try:
        meta = json.loads(bytes(view[FIXED_SIZE : FIXED_SIZE + meta_len]))
        desc = meta.get("d")
        descriptor = (
            None
            if desc is None
            else ArrayDescriptor(
                str(desc["dtype"]), tuple(int(n) for n in desc["shape"]), str(desc["device"])
            )
        )
        frame = Frame(str(meta["s"]), meta.get("c"), descriptor, header_len, payload_len)
    except (ValueError, KeyError, TypeError) as exc:
        raise IntegrityError(f"{where} has unreadable header metadata: {exc}") from None
    if whole:
        check_size(frame, view.nbytes, where)
    return frame


def check_size(frame: Frame, nbytes: int, where: str) -> None:
    """IntegrityError unless the whole object is `nbytes` long, as its header says."""
    if nbytes != frame.total:
        raise IntegrityError(
            f"{where} is {nbytes} bytes but its header says {frame.total} ({frame.header_len} header + "
            f"{frame.payload_len} payload): the object is truncated or was overwritten"
        )


def payload_view(buf: Buffer, frame: Frame) -> memoryview:
    """The payload part of a whole object, without copying."""
    view = buf if isinstance(buf, memoryview) else memoryview(buf)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view[frame.header_len : frame.total]
