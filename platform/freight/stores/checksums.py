"""Payload checksums written as 'algorithm:hex' (e.g. 'xxh3_64:9a1c...'), the form events carry.

xxh3 runs at memory speed (tens of GB/s, and releases the GIL); sha256 is offered where a cryptographic
digest is required. A checksum covers the payload only, never the framing header.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from typing import Protocol

import xxhash

from freight.connectors.protocol import Buffer
from freight.errors import ConfigError, IntegrityError

DEFAULT_ALGORITHM = "xxh3_64"


class Hasher(Protocol):
    """The part of hashlib's / xxhash's hasher interface that checksums use."""

    def update(self, data: Buffer, /) -> None: ...

    def hexdigest(self) -> str: ...


ALGORITHMS: dict[str, Callable[[], Hasher]] = {
    "xxh3_64": xxhash.xxh3_64,
    "xxh3_128": xxhash.xxh3_128,
    "sha256": hashlib.sha256,
}


def check_algorithm(name: str | None) -> str | None:
    """`name` if it is a known algorithm (or None for no checksum); ConfigError naming the choices else."""
    if name is not None and name not in ALGORITHMS:
        raise ConfigError(f"unknown checksum algorithm {name!r}; use one of {', '.join(ALGORITHMS)} or none")
    return name


def compute(algorithm: str, buffers: Iterable[Buffer]) -> str:
    """'algorithm:hex' of the concatenation of `buffers` (hashed in place, not joined)."""
    hasher = ALGORITHMS[check_algorithm(algorithm) or DEFAULT_ALGORITHM]()
    for buf in buffers:
        hasher.update(buf)
    return f"{algorithm}:{hasher.hexdigest()}"


def placeholder(algorithm: str) -> str:
    """A checksum string of the length `algorithm` produces (to size a header before the digest is known)."""
    return f"{algorithm}:{'0' * len(ALGORITHMS[algorithm]().hexdigest())}"


def parse(checksum: str) -> tuple[str, str]:
    """Split 'algorithm:hex'; an unknown algorithm or malformed value is an IntegrityError saying which."""
    algorithm, sep, digest = checksum.partition(":")
    if not sep or not digest or algorithm not in ALGORITHMS:
        raise IntegrityError(
            f"checksum {checksum!r} is not of the form 'algorithm:hex' with algorithm one of "
            f"{', '.join(ALGORITHMS)}"
        )
    return algorithm, digest.lower()
