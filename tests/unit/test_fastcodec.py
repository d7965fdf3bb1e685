"""The specialised ObjectEvent codec writes exactly fastavro's bytes and reads them back, and rejects garbage
with ValueError/IndexError only (which EventSerde turns into EventDecodeError)."""

from __future__ import annotations

import contextlib
import functools
import io
from typing import Any

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


# The compiled codec (`make native`) --------------------------------------------------------------------


def test_compiled_codec_is_used_only_when_built_from_this_very_source(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A compiled module whose stamp differs from fastcodec.py's source (an edit since `make native`) is
    ignored, as is any module when FREIGHT_PURE_PYTHON is set; one built from this source is used."""
    import sys
    import types
    from pathlib import Path

    from freight.schemas import fastcodec

    own = fastcodec.source_digest(Path(fastcodec.__file__).read_text(encoding="utf-8"))
    fake = types.ModuleType("freight.schemas._fastcodec_native")
    monkeypatch.setitem(sys.modules, "freight.schemas._fastcodec_native", fake)
    monkeypatch.delenv("FREIGHT_PURE_PYTHON", raising=False)
    fake.SOURCE_SHA256 = "0" * 64  # type: ignore[attr-defined]
    assert fastcodec._load_native() is None
    fake.SOURCE_SHA256 = own  # type: ignore[attr-defined]
    assert fastcodec._load_native() is fake
    monkeypatch.setenv("FREIGHT_PURE_PYTHON", "1")
    assert fastcodec._load_native() is None
    # The stamp covers only the compiled part: the loader below the marker may change without a rebuild.
    text = Path(fastcodec.__file__).read_text(encoding="utf-8")
    assert fastcodec.source_digest(text + "\n# a comment below the marker\n") == own
    assert fastcodec.source_digest("# a change above\n" + text) != own


@functools.cache
def _pure_codec() -> Any:
    """fastcodec.py loaded again as a separate module, with the compiled codec disabled."""
    import importlib.util
    import os
    from pathlib import Path

    from freight.schemas import fastcodec

    spec = importlib.util.spec_from_file_location("_pure_fastcodec", Path(fastcodec.__file__))
    assert spec is not None and spec.loader is not None
    pure = importlib.util.module_from_spec(spec)
    os.environ["FREIGHT_PURE_PYTHON"] = "1"
    try:
        spec.loader.exec_module(pure)
    finally:
        del os.environ["FREIGHT_PURE_PYTHON"]
    assert pure.NATIVE is None
    return pure


@settings(max_examples=300, deadline=None)
@given(events())
def test_compiled_and_pure_codecs_agree_byte_for_byte(event: ObjectEvent) -> None:
    """Where `make native` was run, the compiled codec writes and reads exactly what the pure one does."""
    from freight.schemas import fastcodec

    if fastcodec.NATIVE is None:
        pytest.skip("the compiled codec is not built here (make native)")
    pure = _pure_codec()
    data = fastcodec.encode_event(event, b"\x00\x00\x00\x00\x01")
    assert data == pure.encode_event(event, b"\x00\x00\x00\x00\x01")
    assert fastcodec.decode_event(data, 5) == pure.decode_event(data, 5)
    with pytest.raises(TrailingBytesError):
        fastcodec.decode_event(data + b"\x00", 5)


def test_event_serde_decodes_any_bytes_like_value() -> None:
    """EventSerde hands the codec bytes, whatever buffer type it was given (the compiled codec takes
    exactly bytes), so a bytearray value decodes as before."""
    from freight.schemas.serde import EventSerde

    serde = EventSerde.__new__(EventSerde)
    serde.fast = True
    serde._v1_ids = {1}
    serde._writer_schemas = {}
    event = ObjectEvent("s", 3, "p", EventKind.OBJECT, None, InlinePayload(b"abc", "bytes"), None, {}, 9)
    data = encode_event(event, b"\x00\x00\x00\x00\x01")
    assert serde.decode("t", data) == event
    assert serde.decode("t", bytearray(data)) == event  # type: ignore[arg-type]
