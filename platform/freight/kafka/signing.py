"""HMAC authentication of Freight's internal records (store catalog, retention policies).

Anyone who may write `_freight_stores` or `_freight_retention` could otherwise steer every Freight process
on the cluster. With `FREIGHT_CATALOG_KEY` set, writers add an HMAC-SHA256 of (topic, key, value) in the
`freight-sig` header and readers refuse records whose header is missing or wrong. The key lives only in the
environment of the processes that hold it; the signature says nothing about it.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from typing import Any

SIGNATURE_HEADER = "freight-sig"


def _message(topic: str, key: bytes, value: bytes | None) -> bytes:
    parts = [topic.encode(), key, b"" if value is None else value]
    framed = b"".join(struct.pack(">I", len(p)) + p for p in parts)
    return framed + (b"\x00" if value is None else b"\x01")  # a tombstone signs differently from b""


def sign(secret: bytes, topic: str, key: bytes, value: bytes | None) -> bytes:
    """The hex HMAC-SHA256 of one record (what goes into the `freight-sig` header).

    Args:
        secret: The shared key (`FREIGHT_CATALOG_KEY`).
        topic: The record's topic (a record copied to another topic does not verify).
        key: The record's Kafka key.
        value: The record's value, or None for a tombstone.

    Returns:
        64 hex digits as bytes.
    """
    return hmac.new(secret, _message(topic, key, value), hashlib.sha256).hexdigest().encode()


def verify(secret: bytes, topic: str, key: bytes, value: bytes | None, signature: bytes | None) -> bool:
    """True if `signature` is the record's HMAC under `secret` (constant-time comparison)."""
    if not signature:
        return False
    return hmac.compare_digest(sign(secret, topic, key, value), signature)


def header_value(headers: Any) -> bytes | None:
    """The `freight-sig` header of a consumed record (a list of (name, value) pairs), if any."""
    for name, value in headers or ():
        if name == SIGNATURE_HEADER:
            return value if isinstance(value, bytes) else None
    return None
