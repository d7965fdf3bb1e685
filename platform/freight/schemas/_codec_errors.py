"""Errors of the event codec, outside the module `make native` compiles, so that the pure and the compiled
codec raise the very same classes."""

from __future__ import annotations


class TrailingBytesError(ValueError):
    """The record decoded but bytes are left over: corrupt, or written with another schema."""
