"""Checksums computed on another core while the bytes move: hashing overlaps writing and reading.

On `put`, the payload's digest is computed in a worker thread while the connector writes the payload; the
header that holds it is a `DeferredBuffer` written last. On `get`, an observer receives each chunk as the
connector reads it and feeds it to hashers in a worker thread, so verification ends moments after the read.
xxhash and hashlib release the GIL on large buffers, so two cores do the two jobs at once.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from freight.connectors.protocol import Buffer
from freight.stores import checksums
from freight.stores.checksums import Hasher
from freight.stores.framing import Frame, decode_header

#: Payloads from this size on are hashed on a worker thread while they are written (below it a hand-off
#: costs more than it saves).
STREAM_MIN = 4 << 20
#: Objects from this size on are hashed on a worker thread while they are read (measured: below it, hashing
#: after the read is as fast; see `freight bench stores`).
VERIFY_WHILE_READING_MIN = 32 << 20

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def hash_pool() -> ThreadPoolExecutor:
    """The process-wide pool of hashing threads."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max(4, 2 * (os.cpu_count() or 2)), thread_name_prefix="freight-hash")
        return _pool


def hash_later(algorithm: str, buffers: Sequence[Buffer]) -> Future[str]:
    """'algorithm:hex' of `buffers`, computed on a worker thread."""
    return hash_pool().submit(checksums.compute, algorithm, list(buffers))


class ReadVerifier:
    """A read observer: parses the header from the first chunk, then hashes payload chunks as they arrive.

    Used as `connector.get_observed(key, verifier)`; afterwards `digests()` gives 'algorithm:hex' for the
    header's algorithm and for the expected checksum's (if different).
    """

    def __init__(self, where: str, expected: str | None) -> None:
        self.where = where
        self.expected = expected
        self.frame: Frame | None = None
        self._hashers: dict[str, Hasher] = {}
        self._queue: queue.SimpleQueue[memoryview | None] | None = None
        self._worker: Future[None] | None = None

    def __call__(self, offset: int, chunk: memoryview, total: int) -> None:
        if self.frame is None:
            self.frame = decode_header(chunk, self.where, whole=False)
            algorithms = set()
            if self.frame.checksum is not None:
                algorithms.add(checksums.parse(self.frame.checksum)[0])
            if self.expected is not None:
                algorithms.add(checksums.parse(self.expected)[0])
            self._hashers = {a: checksums.ALGORITHMS[a]() for a in algorithms}
            if self._hashers and total >= VERIFY_WHILE_READING_MIN:
                self._queue = queue.SimpleQueue()
                self._worker = hash_pool().submit(self._drain)
        if not self._hashers:
            return
        lo = max(self.frame.header_len - offset, 0)
        hi = min(self.frame.total - offset, chunk.nbytes)
        if lo < hi:
            self._feed(chunk[lo:hi])

    def _feed(self, part: memoryview) -> None:
        if self._queue is not None:
            self._queue.put(part)
        else:
            for hasher in self._hashers.values():
                hasher.update(part)

    def _drain(self) -> None:
        assert self._queue is not None
        while (part := self._queue.get()) is not None:
            for hasher in self._hashers.values():
                hasher.update(part)

    def digests(self) -> dict[str, str]:
        """Wait for the hashing to finish; {algorithm: 'algorithm:hex'}."""
        self.close()
        return {a: f"{a}:{h.hexdigest()}" for a, h in self._hashers.items()}

    def close(self) -> None:
        """Stop the worker (also after a failed read)."""
        if self._queue is not None and self._worker is not None:
            self._queue.put(None)
            self._worker.result()
            self._queue = None


DigestSource = Callable[[], str | None]
