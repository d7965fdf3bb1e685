"""Store key validation: a bad key is a clear error, never a file written somewhere else.

Keys are relative, '/'-separated paths of segments made of letters, digits, '.', '_', '-' and '=';
no empty, '.' or '..' segment, no leading '/', at most 512 characters (and 200 per segment, so that a
segment is a valid file name with room for a temporary suffix on every file system).
"""

from __future__ import annotations

import re

from freight.errors import InvalidKeyError

MAX_KEY_LENGTH = 512
MAX_SEGMENT_LENGTH = 200
_SEGMENT = re.compile(r"^[A-Za-z0-9._=-]+$")


def validate_key(key: object) -> str:
    """Return `key` if it is a valid store key; raise InvalidKeyError saying what is wrong otherwise."""
    if not isinstance(key, str):
        raise InvalidKeyError(f"store keys are strings, got {type(key).__name__}: {key!r}")
    if not key:
        raise InvalidKeyError("store key is empty")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidKeyError(f"store key is {len(key)} characters long; the limit is {MAX_KEY_LENGTH}")
    if key.startswith("/") or "\\" in key or (len(key) > 1 and key[1] == ":"):
        raise InvalidKeyError(f"store key {key!r} is absolute; keys are relative paths such as 'topic/id'")
    for segment in key.split("/"):
        if segment in {"", ".", ".."}:
            raise InvalidKeyError(
                f"store key {key!r} has an empty, '.' or '..' segment; keys may not traverse directories"
            )
        if len(segment) > MAX_SEGMENT_LENGTH:
            raise InvalidKeyError(
                f"store key {key!r} has a segment of {len(segment)} characters; the limit is "
                f"{MAX_SEGMENT_LENGTH} (split it with '/')"
            )
        if not _SEGMENT.match(segment):
            raise InvalidKeyError(
                f"store key {key!r} has characters outside letters, digits and . _ = - in {segment!r}"
            )
    return key


def safe_key_part(text: str, limit: int = 120) -> str:
    """Turn arbitrary text (a stream id, a topic) into one valid key segment."""
    cleaned = re.sub(r"[^A-Za-z0-9._=-]", "_", text)[:limit].strip(".") or "_"
    return cleaned
