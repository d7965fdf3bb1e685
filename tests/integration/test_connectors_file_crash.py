"""A writer killed mid-write never leaves a partial object that readers can see.

A child process rewrites one key in a loop (a 24 MiB array written in 1 MiB pieces through `Store`), while
this process reads the key continuously. As soon as a temporary file is seen partly written, the child gets
SIGKILL. Readers must have seen only complete, checksum-verified versions; afterwards `get` returns a
complete version, `list` shows only the key, and the partial temporary file is left for `cleanup_temp`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from freight.connectors import FileConnector
from freight.errors import ObjectNotFoundError
from freight.stores import Store, encode_header

ITEMS = 3 << 20  # int64 items: 24 MiB per version
WRITER = r"""
import sys
import numpy as np
from freight.connectors import FileConnector
from freight.stores import SerializedObject, Store

store = Store("crash", FileConnector(sys.argv[1]))
ITEMS = int(sys.argv[2])
version = 0
while True:
    ser = store.serialize(np.full(ITEMS, version, dtype=np.int64))
    view = memoryview(ser.buffers[0])
    pieces = [view[i : i + (1 << 20)] for i in range(0, ser.nbytes, 1 << 20)]
    store.put_serialized("obj", SerializedObject(ser.serializer, pieces, ser.nbytes, ser.descriptor))
    version += 1
    print(version, flush=True)
"""


def _check_complete(arr: np.ndarray) -> int:  # type: ignore[type-arg]
    assert arr.shape == (ITEMS,), f"a partial object was read: shape {arr.shape}"
    first = int(arr[0])
    assert (arr == first).all(), "a torn object was read"
    return first


def _kill_mid_write(root: Path, store: Store, total: int) -> bool:
    """Run the writer until a partial temporary file is seen, SIGKILL it; True if caught mid-write."""
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(root), str(ITEMS)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    errors: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        try:
            while not stop.is_set():
                try:
                    _check_complete(store.get("obj", mmap=True))
                    _check_complete(store.get("obj"))
                except ObjectNotFoundError:
                    pass
                assert all("~" not in i.key for i in store.connector.list())
        except BaseException as exc:
            errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    caught = False
    try:
        assert child.stdout is not None
        child.stdout.readline()  # at least one complete version exists
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not caught:
            for entry in os.scandir(root):
                if "~" in entry.name:
                    try:
                        size = entry.stat().st_size
                    except FileNotFoundError:
                        continue
                    if 0 < size < total:
                        os.killpg(child.pid, signal.SIGKILL)
                        caught = True
                        break
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
        child.wait(10)
        time.sleep(0.05)  # a few more reads after the kill
        stop.set()
        reader.join()
    assert not errors, errors
    return caught and any((root / p.name).stat().st_size < total for p in root.glob("*~*"))


def test_reader_never_sees_a_partial_object_when_the_writer_is_killed(tmp_path: Path) -> None:
    conn = FileConnector(tmp_path)
    store = Store("crash", conn)
    ser = store.serialize(np.zeros(ITEMS, dtype=np.int64))
    total = (
        len(encode_header(ser.serializer, ser.nbytes, "xxh3_64:0123456789abcdef", ser.descriptor))
        + ser.nbytes
    )
    caught = False
    for _attempt in range(5):
        if _kill_mid_write(tmp_path, store, total):
            caught = True
            break
    assert caught, "the writer was never caught mid-write"
    # The killed writer's partial file is on disk, invisible to readers ...
    partial = conn.temp_files()
    assert partial and all(p.stat().st_size < total for p in partial)
    assert [i.key for i in conn.list()] == ["obj"]
    version = _check_complete(store.get("obj"))
    assert version >= 0
    # ... until a cleanup removes it (its writer is dead).
    assert conn.cleanup_temp() == len(partial)
    assert conn.temp_files() == []
    assert _check_complete(store.get("obj", mmap=True)) == version
