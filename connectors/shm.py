"""Named shared-memory segments: files in /dev/shm mapped by the producer and by readers on the same host.

A segment is a file `freight-<pid>-<id>` in the shared-memory directory (tmpfs on Linux; the temp directory
elsewhere), created with mode 0600 so only the same user can map it. The producer maps it read-write and
fills it; a reader maps the same pages, so nothing is copied between processes. Unlinking (eviction) removes
the name; pages live on until the last mapping is gone, so a reader that already mapped an object keeps it.
Segments of a producer that died without cleaning up are swept by the next producer on the host.
"""

# Segments are str paths handled with os.* calls, like the file connector's; /dev/shm is meant here.
# ruff: noqa: PTH108, PTH112, PTH116, PTH118, PTH208, S108

from __future__ import annotations

import contextlib
import mmap
import os
import re
import socket
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from freight.pids import pid_alive

PREFIX = "freight-"
_NAME = re.compile(r"^freight-(\d+)-[0-9a-f]{16}$")


def shm_dir() -> str:
    """Where segments live: FREIGHT_SHM_DIR, else /dev/shm where it exists, else the temp directory."""
    env = os.environ.get("FREIGHT_SHM_DIR")
    if env:
        return env
    if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
        return "/dev/shm"
    return tempfile.gettempdir()


def host_id() -> str:
    """Identifies this host (and boot) so a reader knows whether it can map a producer's segments."""
    boot = ""
    with contextlib.suppress(OSError):
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    return f"{socket.gethostname()}/{boot}/{shm_dir()}"


@dataclass(eq=False)
class Segment:
    """One shared-memory file and the producer's read-write mapping of it."""

    path: str
    size: int
    mapping: mmap.mmap | None
    refs: int = 0
    created: float = field(default_factory=time.time)

    @classmethod
    def create(cls, size: int) -> Segment:
        """A new zero-filled segment of `size` bytes (at least one page is mapped for an empty one)."""
        path = os.path.join(shm_dir(), f"{PREFIX}{os.getpid()}-{uuid.uuid4().hex[:16]}")
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
        try:
            os.ftruncate(fd, max(size, 1))
            mapping = mmap.mmap(fd, max(size, 1))
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(path)
            raise
        os.close(fd)
        return cls(path, size, mapping)

    def view(self) -> memoryview:
        """A read-only view of the segment's bytes."""
        assert self.mapping is not None
        return memoryview(self.mapping)[: self.size].toreadonly()

    def unlink(self) -> None:
        """Remove the name; mappings (ours, readers') stay valid until dropped."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        self.mapping = None  # unmapped when the last view over it is gone


def check_segment_path(path: str) -> str:
    """`path` if it names a segment in this host's shared-memory directory (never any other file)."""
    directory, name = os.path.split(path)
    if os.path.realpath(directory) != os.path.realpath(shm_dir()) or not _NAME.match(name):
        raise ValueError(f"{path!r} is not a Freight shared-memory segment in {shm_dir()}")
    return path


def attach(path: str, size: int, *, writable: bool) -> mmap.mmap:
    """Map an existing segment (FileNotFoundError once it has been evicted)."""
    check_segment_path(path)
    fd = os.open(path, (os.O_RDWR if writable else os.O_RDONLY) | getattr(os, "O_CLOEXEC", 0))
    try:
        length = max(size, 1)
        if os.fstat(fd).st_size < length:
            raise ValueError(f"shared-memory segment {path} is smaller than the {length} bytes announced")
        return mmap.mmap(fd, length, access=mmap.ACCESS_WRITE if writable else mmap.ACCESS_READ)
    finally:
        os.close(fd)


def sweep_stale(min_age_s: float = 30.0) -> int:
    """Unlink segments of producers on this host that are no longer running; return how many."""
    removed = 0
    directory = shm_dir()
    try:
        names = os.listdir(directory)
    except OSError:
        return 0
    now = time.time()
    for name in names:
        match = _NAME.match(name)
        if not match or pid_alive(int(match.group(1))):
            continue
        path = os.path.join(directory, name)
        with contextlib.suppress(OSError):
            st = os.stat(path)
            if st.st_uid == os.getuid() and now - st.st_mtime >= min_age_s:
                os.unlink(path)
                removed += 1
    return removed
