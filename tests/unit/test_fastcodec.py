"""The specialised ObjectEvent codec writes exactly fastavro's bytes and reads them back, and rejects garbage
with ValueError/IndexError only (which EventSerde turns into EventDecodeError)."""

from __future__ import annotations

import contextlib
import io

import pytest
from fastavro import parse_schema, schemaless_reader, schemaless_writer
from hypothesis import given, settings
from hypothesis import strategies as st

from freight.schemas import schema_dict
from freight.schemas.events import (
    ArrayDescriptor,
    EventKind,
    EvictionMode,
    InlinePayload,
    ObjectEvent,
    ObjectRef,
)
from freight.schemas.fastcodec import TrailingBytesError, decode_event, encode_event

SCHEMA = parse_schema(schema_dict("object_event"))
text = st.text(max_size=40)
longs = st.integers(min_value=-(2**63), max_value=2**63 - 1)

refs = st.builds(
    ObjectRef,
    store=text,
    key=text,
    size=longs,
    serializer=text,
    checksum=st.none() | text,
    eviction=st.sampled_from(list(EvictionMode)),
)
inlines = st.builds(InlinePayload, data=st.binary(max_size=300), serializer=text)
descriptors = st.builds(
    ArrayDescriptor, dtype=text, shape=st.lists(longs, max_size=6).map(tuple), device=text
)


@st.composite
def events(draw: st.DrawFn) -> ObjectEvent:
    end = draw(st.booleans())
    stored = draw(st.booleans())
    return ObjectEvent(
        stream=draw(text),
        sequence=draw(longs),
        producer_id=draw(text),
        kind=EventKind.END_OF_STREAM if end else EventKind.OBJECT,
        object=None if end or not stored else draw(refs),
        inline=None if end or stored else draw(inlines),
        descriptor=draw(st.none() | descriptors),
        metadata=draw(st.dictionaries(text, text, max_size=5)),
        created_at=draw(st.integers(min_value=0, max_value=2**42)),  # fastavro reads a datetime
    )


def fastavro_bytes(event: ObjectEvent) -> bytes:
    out = io.BytesIO()
    schemaless_writer(out, SCHEMA, event.to_avro())
    return out.getvalue()


@settings(max_examples=400, deadline=None)
@given(events())
def test_encoding_is_byte_identical_to_fastavro(event: ObjectEvent) -> None:
    assert encode_event(event) == fastavro_bytes(event)
    assert encode_event(event, b"\x00\x00\x00\x00\x07") == b"\x00\x00\x00\x00\x07" + fastavro_bytes(event)


@settings(max_examples=400, deadline=None)
@given(events())
def test_decoding_fastavro_bytes_gives_the_same_event(event: ObjectEvent) -> None:
    body = fastavro_bytes(event)
    expected = ObjectEvent.from_avro(schemaless_reader(io.BytesIO(body), SCHEMA, None))
    assert decode_event(body, 0) == expected == event
    assert decode_event(b"HEAD!" + body, 5) == event


@settings(max_examples=600, deadline=None)
@given(st.binary(max_size=200))
def test_garbage_raises_only_value_or_index_errors(data: bytes) -> None:
    with contextlib.suppress(ValueError, IndexError):  # anything else fails the test
        decode_event(data, 0)


@settings(max_examples=300, deadline=None)
@given(events(), st.data())
def test_truncated_or_extended_bodies_are_rejected(event: ObjectEvent, data: st.DataObject) -> None:
    body = encode_event(event)
    cut = data.draw(st.integers(min_value=0, max_value=len(body) - 1))
    with pytest.raises((ValueError, IndexError)):
        decode_event(body[:cut], 0)
    with pytest.raises(TrailingBytesError):
        decode_event(body + b"\x00", 0)
