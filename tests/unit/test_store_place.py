"""`Store.place`: the store decides once where an object goes (inline bytes, or written under a key)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from freight.connectors.file import FileConnector
from freight.stores import InlineObject, Store, StoredObject


def test_small_objects_stay_inline_and_use_no_key(tmp_path: Path) -> None:
    store = Store("place-inline", FileConnector(tmp_path))
    keys: list[str] = []

    def key() -> str:
        keys.append(f"k/{len(keys)}")
        return keys[-1]

    placed = store.place(b"tiny", key=key, inline_threshold=100)
    assert isinstance(placed, InlineObject) and placed.payload == b"tiny" and placed.serializer == "bytes"
    assert keys == [] and store.stats.objects_written == 0


def test_large_objects_are_written_under_a_new_key(tmp_path: Path) -> None:
    store = Store("place-stored", FileConnector(tmp_path))
    placed = store.place(np.arange(1000), key=lambda: "t/p/000000000001", inline_threshold=100)
    assert isinstance(placed, StoredObject) and placed.key == "t/p/000000000001"
    assert placed.serializer == "numpy" and np.array_equal(store.get(placed.key), np.arange(1000))


def test_serializer_is_honoured_and_threshold_zero_never_inlines(tmp_path: Path) -> None:
    store = Store("place-ser", FileConnector(tmp_path))
    placed = store.place([1, 2], key=lambda: "a/b/1", serializer="json")
    assert isinstance(placed, StoredObject) and placed.serializer == "json"
    assert store.get("a/b/1") == [1, 2]


def test_small_bytes_fast_path_gives_what_the_serializers_give(tmp_path: Path) -> None:
    # The fast path for small `bytes` must be indistinguishable from asking the serializers.
    store = Store("place-fast", FileConnector(tmp_path))
    fast = store.place(b"x" * 10, key=lambda: "k/1/1", inline_threshold=64)
    slow = store.place(bytearray(b"x" * 10), key=lambda: "k/1/2", inline_threshold=64)
    assert isinstance(fast, InlineObject) and isinstance(slow, InlineObject)
    assert (bytes(fast.payload), fast.serializer, fast.descriptor) == (
        bytes(slow.payload),
        slow.serializer,
        slow.descriptor,
    )
    # At the threshold it is written, as before.
    assert isinstance(store.place(b"x" * 64, key=lambda: "k/1/3", inline_threshold=64), StoredObject)


def test_a_registered_bytes_serializer_still_comes_first(tmp_path: Path) -> None:
    from freight.stores.serializers import BytesSerializer, SerializedObject

    class Tagged(BytesSerializer):
        name = "tagged-bytes"

        def serialize(self, obj: Any) -> SerializedObject:
            return SerializedObject(self.name, [b"T" + bytes(obj)], len(obj) + 1)

    store = Store("place-custom", FileConnector(tmp_path))
    store.serializers.register(Tagged())
    placed = store.place(b"abc", key=lambda: "k/2/1", inline_threshold=64)
    assert isinstance(placed, InlineObject)
    assert (placed.serializer, bytes(placed.payload)) == ("tagged-bytes", b"Tabc")
