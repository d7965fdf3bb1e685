"""`FileConnector`: objects as files under a directory on a local or shared file system.

Writes are atomic: the bytes go to a temporary file beside the target (its name holds '~', which no valid
key can, so `get` and `list` never see it), which is then renamed over the target; a reader sees the old
object, the new one, or none, never a partial file. With `fsync=True` the file and its directory are
flushed before `put` returns (durable across a power loss; slower). Reads either copy the file once into a
fresh buffer (`get`) or memory-map it (`get_mapped`, no copy). Large files are preallocated before writing
(as numpy's `tofile` does), which on ext4 and XFS makes writing markedly faster.

Large buffers are written in slices of `WRITE_CHUNK` bytes (views, never copies), one `write` call each.
The kernel sizes the page-cache folios it allocates by the length of the write call: one 64 MiB `write`
(what `tofile` does) asks for the largest folios, and on a machine whose free memory is handed back to its
host (a virtual machine with free-page reporting) fresh high-order pages come at 0.3-0.45 GB/s, while
256 KiB writes into fresh pages run at 3-4 GB/s (`freight bench bulk --profile`, docs/benchmarks.md). A
vectored write of many slices does not help: the kernel sees its total length.
"""

# The hot path works on str paths with os.* calls: pathlib objects cost microseconds per operation.
# ruff: noqa: PTH103, PTH105, PTH108, PTH112, PTH113

from __future__ import annotations

import builtins
import contextlib
import ctypes
import ctypes.util
import errno
import hashlib
import mmap
import os
import socket
import stat
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Self, TypeVar

import numpy as np
from pydantic import Field

from freight.connectors._options import ConnectorOptions
from freight.connectors.keys import validate_key
from freight.connectors.protocol import (
    Blob,
    Buffer,
    DeferredBuffer,
    ObjectInfo,
    ReadObserver,
    blob_items,
    flat_view,
)
from freight.errors import ConfigError, ObjectNotFoundError, StoreAccessError, StoreError
from freight.pids import pid_alive

#: Marks temporary files; never part of a valid key (see keys.validate_key).
TEMP_MARK = "~"
#: Preallocate files at least this large.
PREALLOCATE_MIN = 1 << 20
_MAX_IO = 1 << 30  # bytes per read call (Linux caps one call near 2 GiB)
#: Bytes per write call (see the module docstring: small enough for small page-cache folios).
WRITE_CHUNK = 256 << 10
#: Chunk size of `get_observed`: large enough to amortise calls, small enough to overlap reading and hashing.
OBSERVE_CHUNK = 4 << 20

T = TypeVar("T")
R = TypeVar("R")


class FileOptions(ConnectorOptions):
    kind_name = "file"
    root: Path = Field(description="Directory holding the objects (created if missing).")
    fsync: bool = Field(False, description="Flush file and directory before put returns (durability).")
    threads: int = Field(8, ge=1, le=256, description="Threads for put_batch / get_batch.")


_FALLOC_FL_KEEP_SIZE = 1
_fallocate_fn: Any = None
_fallocate_loaded = False


def _preallocate(fd: int, size: int) -> None:
    """Reserve `size` bytes for `fd` without changing its size (Linux fallocate); a no-op elsewhere."""
    global _fallocate_fn, _fallocate_loaded
    if not _fallocate_loaded:
        _fallocate_loaded = True
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
            fn = libc.fallocate
            fn.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
            fn.restype = ctypes.c_int
            _fallocate_fn = fn
    if _fallocate_fn is not None:
        _fallocate_fn(fd, _FALLOC_FL_KEEP_SIZE, 0, size)  # failure (EOPNOTSUPP) only costs speed


def _write_all(fd: int, view: memoryview) -> None:
    """Write all of `view` at the file position, `WRITE_CHUNK` bytes per call (views, no copies)."""
    pos, total = 0, view.nbytes
    write = os.write
    while pos < total:
        pos += write(fd, view[pos : pos + WRITE_CHUNK])


def _pwrite_all(fd: int, view: memoryview, offset: int) -> None:
    pos, total = 0, view.nbytes
    while pos < total:
        pos += os.pwrite(fd, view[pos : pos + WRITE_CHUNK], offset + pos)


def _read_exact(fd: int, view: memoryview) -> int:
    """Fill `view` from `fd`; return the bytes read (fewer only at end of file)."""
    pos, total = 0, view.nbytes
    while pos < total:
        n = os.readv(fd, [view[pos : pos + _MAX_IO]])
        if n == 0:
            break
        pos += n
    return pos


#: Tells this host's temporary files from those of other hosts sharing the directory (NFS, Lustre).
_HOST_TAG = hashlib.blake2b(socket.gethostname().encode(), digest_size=4).hexdigest()


class FileConnector:
    """A directory of files, one per key ('a/b' is the file `root/a/b`)."""

    kind = "file"

    def __init__(self, root: str | os.PathLike[str], *, fsync: bool = False, threads: int = 8) -> None:
        opts = FileOptions.parse({"root": root, "fsync": fsync, "threads": threads})
        self.root = opts.root.expanduser().absolute()
        self.fsync = opts.fsync
        self.threads = opts.threads
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create the file store directory {self.root}: {exc.strerror}") from exc
        if not self.root.is_dir():
            raise ConfigError(f"the file store root {self.root} exists but is not a directory")
        self._root = str(self.root)
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"FileConnector(root={self._root!r})"

    def _path(self, key: str) -> str:
        return f"{self._root}/{validate_key(key)}"

    def _map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        if len(items) <= 1:
            return [fn(item) for item in items]
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="freight-file")
            pool = self._pool
        return list(pool.map(fn, items))

    # -- writing -----------------------------------------------------------------------------------------

    def put(self, key: str, data: Blob) -> None:
        """Write `data` to a temporary file and rename it over the key's file.

        Deferred parts (a header holding the payload's checksum) are skipped over and written last, so the
        payload goes to disk while the checksum is still being computed.
        """
        path = self._path(key)
        items = [i if isinstance(i, DeferredBuffer) else flat_view(i) for i in blob_items(data)]
        directory, _, name = path.rpartition("/")
        tmp = f"{directory}/{name}{TEMP_MARK}{os.getpid()}@{_HOST_TAG}{TEMP_MARK}{uuid.uuid4().hex[:12]}"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        try:
            try:
                fd = os.open(tmp, flags, 0o666)
            except FileNotFoundError:
                os.makedirs(directory, exist_ok=True)
                fd = os.open(tmp, flags, 0o666)
        except (NotADirectoryError, FileExistsError) as exc:
            raise StoreError(
                f"cannot store {key!r} in {self._root}: a prefix of the key is an object, not a directory"
            ) from exc
        except OSError as exc:
            raise self._os_error(exc, "write", key) from exc
        try:
            try:
                total = sum(i.size if isinstance(i, DeferredBuffer) else i.nbytes for i in items)
                if total >= PREALLOCATE_MIN:
                    _preallocate(fd, total)
                deferred: builtins.list[tuple[int, DeferredBuffer]] = []
                offset = 0
                for item in items:
                    if isinstance(item, DeferredBuffer):
                        deferred.append((offset, item))
                        offset += item.size
                        os.lseek(fd, offset, os.SEEK_SET)
                    else:
                        _write_all(fd, item)
                        offset += item.nbytes
                for at, part in deferred:
                    _pwrite_all(fd, part.resolve(), at)
                if self.fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.replace(tmp, path)
            except IsADirectoryError as exc:
                raise StoreError(
                    f"cannot store {key!r} in {self._root}: other objects use it as a prefix ({key}/...)"
                ) from exc
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if isinstance(exc, OSError):
                raise self._os_error(exc, "write", key) from exc
            raise
        if self.fsync:
            self._fsync_dir(directory)

    def _os_error(self, exc: OSError, action: str, key: str) -> StoreError:
        """A failed file operation as a StoreError naming the object, the directory and what to do."""
        what = f"cannot {action} object {key!r} in file store {self._root}: {exc.strerror or exc}"
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return StoreAccessError(
                f"{what}. This process may not {action} there (permissions, or a read-only file system): "
                "fix the directory's permissions or choose another root"
            )
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            return StoreError(
                f"{what}. The file system is full, or a quota or file size limit was reached; nothing was "
                "stored. Free space (evict objects: `freight evict`) or move the store to a larger one"
            )
        return StoreError(f"{what} ({errno.errorcode.get(exc.errno or 0, 'OSError')})")

    @staticmethod
    def _fsync_dir(directory: str) -> None:
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def put_batch(self, items: Sequence[tuple[str, Blob]]) -> None:
        self._map(lambda item: self.put(item[0], item[1]), items)

    # -- reading -----------------------------------------------------------------------------------------

    def _open(self, key: str) -> tuple[int, int]:
        """(fd, size) of the object file; ObjectNotFoundError if there is none (or only a directory)."""
        path = self._path(key)
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise ObjectNotFoundError(f"no object {key!r} in file store {self._root}") from None
        except OSError as exc:
            raise self._os_error(exc, "read", key) from exc
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise ObjectNotFoundError(f"no object {key!r} in file store {self._root} (it is a directory)")
        return fd, st.st_size

    def get(self, key: str) -> Buffer:
        fd, size = self._open(key)
        try:
            if size == 0:
                return b""
            # numpy's allocator does not zero-fill (bytearray does) and aligns the data for any dtype.
            view = np.empty(size, dtype=np.uint8).data
            got = _read_exact(fd, view)
        finally:
            os.close(fd)
        return view[:got] if got < size else view

    def get_observed(self, key: str, observe: ReadObserver) -> Buffer:
        """`get`, showing each chunk to `observe(offset, chunk, total)` as soon as it is read."""
        fd, size = self._open(key)
        try:
            view = np.empty(size, dtype=np.uint8).data
            pos = 0
            while pos < size:
                n = os.readv(fd, [view[pos : pos + OBSERVE_CHUNK]])
                if n == 0:
                    break
                observe(pos, view[pos : pos + n], size)
                pos += n
        finally:
            os.close(fd)
        return view[:pos] if pos < size else view

    def get_mapped(self, key: str) -> memoryview:
        """A read-only memory map of the object: no copy; pages are read on first access."""
        fd, size = self._open(key)
        try:
            if size == 0:
                return memoryview(b"")
            mapped = mmap.mmap(fd, size, access=mmap.ACCESS_READ)
        finally:
            os.close(fd)
        return memoryview(mapped)

    def get_batch(self, keys: Sequence[str]) -> list[Buffer | None]:
        def one(key: str) -> Buffer | None:
            try:
                return self.get(key)
            except ObjectNotFoundError:
                return None

        return self._map(one, keys)

    def exists(self, key: str) -> bool:
        return os.path.isfile(self._path(key))

    # -- deleting and listing ----------------------------------------------------------------------------

    def evict(self, key: str) -> bool:
        try:
            os.unlink(self._path(key))
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return False
        except PermissionError as exc:
            if os.path.isdir(self._path(key)):
                return False  # macOS reports EPERM for unlink of a directory
            raise self._os_error(exc, "delete", key) from exc
        except OSError as exc:
            raise self._os_error(exc, "delete", key) from exc
        return True

    def evict_batch(self, keys: Sequence[str]) -> int:
        return sum(self._map(self.evict, keys))

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        if prefix:
            validate_key(prefix.rstrip("/") or "_")
        base = prefix.rpartition("/")[0]
        start = f"{self._root}/{base}" if base else self._root
        yield from self._walk(start, f"{base}/" if base else "", prefix)

    def _walk(self, directory: str, rel: str, prefix: str) -> Iterator[ObjectInfo]:
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except (FileNotFoundError, NotADirectoryError):
            return
        for entry in entries:
            if TEMP_MARK in entry.name:
                continue
            key = rel + entry.name
            if entry.is_dir(follow_symlinks=False):
                if key.startswith(prefix) or prefix.startswith(key + "/"):
                    yield from self._walk(entry.path, key + "/", prefix)
            elif key.startswith(prefix) and entry.is_file(follow_symlinks=False):
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # evicted while listing
                yield ObjectInfo(key, st.st_size, st.st_mtime)

    def temp_files(self) -> builtins.list[Path]:
        """Temporary files left by writers (a writer killed mid-write leaves one; readers never see it)."""
        return sorted(p for p in self.root.rglob(f"*{TEMP_MARK}*") if p.is_file())

    def cleanup_temp(self, older_than_s: float = 3600.0) -> int:
        """Delete temporary files of dead writers on this host, or older than `older_than_s`; return count."""
        removed = 0
        now = time.time()
        for path in self.temp_files():
            parts = path.name.split(TEMP_MARK)
            owner = parts[1].split("@") if len(parts) == 3 else []
            local = len(owner) == 2 and owner[1] == _HOST_TAG and owner[0].isdigit()
            pid = int(owner[0]) if local else None
            try:
                stale = now - path.stat().st_mtime > older_than_s
            except FileNotFoundError:
                continue
            if stale or (pid is not None and not pid_alive(pid)):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed += 1
        return removed

    # -- lifecycle ---------------------------------------------------------------------------------------

    def close(self) -> None:
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def config(self) -> dict[str, Any]:
        return {"root": self._root, "fsync": self.fsync, "threads": self.threads}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Self:
        opts = FileOptions.parse(config)
        return cls(opts.root, fsync=opts.fsync, threads=opts.threads)
