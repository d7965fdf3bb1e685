"""Unit tests of stream/decode.py (records to items, the bad-event policy) and stream/offsets.py.

The decoder is given a stand-in serde and stand-in records (the few accessors of confluent_kafka.Message
it uses), so the policy is checked without a broker; the dead-letter path with a real broker is in
tests/faults/test_faults_input.py.
"""

from __future__ import annotations

from typing import Any, cast

import pytest

from freight.config import FreightSettings
from freight.errors import ConfigError, EventDecodeError
from freight.schemas.events import EventKind, EvictionMode, InlinePayload, ObjectEvent, ObjectRef
from freight.stream.decode import ConsumerStats, RecordDecoder, proxy_ref
from freight.stream.offsets import OffsetBook
from freight.stream.proxy import extract

EVENTS = {
    b"stored": ObjectEvent(
        "s", 1, "p", object=ObjectRef("st", "k1", 10, "bytes", "xxh3:00", EvictionMode.ON_RESOLVE)
    ),
    b"inline": ObjectEvent("s", 2, "p", inline=InlinePayload(b"hello", "bytes")),
    b"end": ObjectEvent("s", 3, "p", kind=EventKind.END_OF_STREAM),
}


class _Serde:
    def decode(self, topic: str, data: bytes) -> ObjectEvent:
        if data not in EVENTS:
            raise EventDecodeError("not a Freight event: wrong magic byte")
        return EVENTS[data]


class _Msg:
    def __init__(self, value: bytes | None, offset: int = 5) -> None:
        self._value = value
        self._offset = offset

    def topic(self) -> str:
        return "t-dec"

    def partition(self) -> int:
        return 1

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes | None:
        return self._value

    def key(self) -> bytes | None:
        return None

    def timestamp(self) -> tuple[int, int]:
        return (1, 1234)


def _decoder(policy: str, stats: ConsumerStats) -> RecordDecoder:
    settings = FreightSettings(kafka_bootstrap="127.0.0.1:1")
    return RecordDecoder(
        settings,
        group_id="g",
        stats=stats,
        on_bad_event=policy,
        serde=cast(Any, _Serde()),  # type: ignore[arg-type]
    )


def test_stored_object_ref_carries_coordinates_cluster_and_group() -> None:
    ref = proxy_ref(EVENTS[b"stored"], topic="t", partition=2, offset=9, bootstrap="b:1", group="g")
    assert (ref.topic, ref.partition, ref.offset, ref.stream, ref.sequence) == ("t", 2, 9, "s", 1)
    assert (ref.store, ref.key, ref.checksum, ref.serializer) == ("st", "k1", "xxh3:00", "bytes")
    assert ref.eviction is EvictionMode.ON_RESOLVE
    assert (ref.bootstrap, ref.group, ref.inline) == ("b:1", "g", None)


def test_inline_object_ref_resolves_without_a_store() -> None:
    ref = proxy_ref(EVENTS[b"inline"], topic="t", partition=0, offset=1, bootstrap="b:1", group="g")
    assert ref.store is None and ref.inline == b"hello" and ref.group is None
    assert ref.eviction is EvictionMode.WATERMARK


def test_decoder_builds_records_and_counts() -> None:
    stats = ConsumerStats()
    dec = _decoder("raise", stats)
    stored = dec.decode(_Msg(b"stored"))  # type: ignore[arg-type]
    inline = dec.decode(_Msg(b"inline", 6))  # type: ignore[arg-type]
    end = dec.decode(_Msg(b"end", 7))  # type: ignore[arg-type]
    assert stored is not None and stored.proxy is not None and stored.timestamp == 1234
    assert inline is not None and inline.proxy is not None and extract(inline.proxy) == b"hello"
    assert end is not None and end.proxy is None and end.metadata.end_of_stream
    assert (stats.events, stats.objects, stats.end_of_streams, stats.bad_events) == (3, 2, 1, 0)


def test_bad_record_raise_names_where_and_what_to_do() -> None:
    stats = ConsumerStats()
    dec = _decoder("raise", stats)
    with pytest.raises(
        EventDecodeError, match=r"wrong magic byte.*'t-dec' partition 1 offset 5.*on_bad_event"
    ):
        dec.decode(_Msg(b"garbage"))  # type: ignore[arg-type]
    with pytest.raises(EventDecodeError, match="tombstone"):
        dec.decode(_Msg(None))  # type: ignore[arg-type]
    assert stats.bad_events == 2 and stats.events == 0


def test_bad_record_skip_reads_on() -> None:
    stats = ConsumerStats()
    dec = _decoder("skip", stats)
    assert dec.decode(_Msg(b"garbage")) is None  # type: ignore[arg-type]
    assert dec.decode(_Msg(b"inline", 6)) is not None  # type: ignore[arg-type]
    assert (stats.bad_events, stats.events) == (1, 1)


def test_unknown_policy_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="on_bad_event must be"):
        _decoder("ignore", ConsumerStats())


def test_offset_book_finishes_only_what_was_handed_out_and_owned() -> None:
    book = OffsetBook()
    book.hand_out("t", 0, 4)
    book.finish_last(record=True)
    book.hand_out("t", 1, 8)
    book.finish_last(record=False)  # manual commits: let go of, not recorded
    book.hand_out("t", 2, 3)
    book.finish_last(record=True)
    taken = book.take(None, owned={("t", 0)})
    assert [(tp.topic, tp.partition, tp.offset) for tp in taken] == [("t", 0, 5)]
    assert book.done == {}  # partition 2 is no longer owned: dropped, not stored


def test_offset_book_release_and_forget() -> None:
    book = OffsetBook()
    book.hand_out("t", 0, 4)
    book.release(("t", 1))
    assert book.last == ("t", 0, 4)
    book.release(("t", 0))
    book.finish_last(record=True)
    assert book.done == {}  # released: read again, never committed past
    book.read_up_to(("t", 0), 10)
    book.read_up_to(("t", 0), 7)
    assert book.seen[("t", 0)] == 10
    book.hand_out("t", 0, 11)
    book.forget([("t", 0)])
    assert book.last is None and ("t", 0) not in book.seen
