"""Schema parsing: both Avro libraries must accept a schema; equivalent texts normalize to one identity."""

from __future__ import annotations

import json

import pytest
from tests.registry_cases import S1, object_event_v1, object_event_v2, reformatted

from freight.registry.avro_schema import InvalidSchemaError, SchemaReference, parse_avro


def test_equivalent_texts_share_a_fingerprint() -> None:
    original = parse_avro(object_event_v1())
    again = parse_avro(reformatted(object_event_v1()))
    assert again.fingerprint == original.fingerprint
    assert again.text != original.text  # the text served keeps the registrant's layout


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ('{"type": "string"}', '"string"'),
        ('{"type":"array","items":{"type":"int"}}', '{"items":"int","type":"array"}'),
        (
            '{"type":"record","name":"R","namespace":"n","fields":[{"name":"x","type":"int"}]}',
            '{"type":"record","name":"n.R","fields":[{"name":"x","type":"int"}]}',
        ),
        (
            '{"type":"record","name":"R","namespace":"n","fields":[{"name":"s","type":'
            '{"type":"enum","name":"E","symbols":["A"]}},{"name":"t","type":"E"}]}',
            '{"type":"record","name":"n.R","fields":[{"name":"s","type":'
            '{"type":"enum","name":"n.E","symbols":["A"]}},{"name":"t","type":"n.E"}]}',
        ),
    ],
)
def test_normalization_covers_common_spellings(left: str, right: str) -> None:
    assert parse_avro(left).fingerprint == parse_avro(right).fingerprint


def test_different_schemas_differ() -> None:
    assert parse_avro(object_event_v1()).fingerprint != parse_avro(object_event_v2()).fingerprint
    with_doc = json.loads(S1)
    with_doc["doc"] = "a doc string is part of the schema"
    assert parse_avro(json.dumps(with_doc)).fingerprint != parse_avro(S1).fingerprint


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("{not json", "not valid JSON"),
        ("", "not valid JSON"),
        ("null", "empty"),
        ("{}", "empty"),
        ('{"type":"record","name":"R","fields":[{"name":"x","type":"strin"}]}', "strin"),
        ('{"type":"record","name":"R","fields":[{"name":"x","type":"int","default":"abc"}]}', "Default"),
        ('{"type":"enum","name":"E","symbols":["A","A"]}', "uplicate"),
        ('{"type":"record","name":"A-b","fields":[]}', "not a valid Avro name"),
        ('{"type":"fixed","name":"F","size":-1}', "size"),
        ("12", "12"),
        ("[" * 5000 + "]" * 5000, "deeply"),
    ],
)
def test_invalid_schemas_say_why(text: str, why: str) -> None:
    with pytest.raises(InvalidSchemaError, match=why):
        parse_avro(text)


def test_references_resolve_through_the_resolver() -> None:
    stored = {
        ("refs-value", 1): (
            '{"type":"record","name":"Ref","namespace":"y","fields":[{"name":"q","type":"long"}]}',
            (),
        )
    }
    main = '{"type":"record","name":"Main","fields":[{"name":"r","type":"y.Ref"}]}'
    refs = [SchemaReference("y.Ref", "refs-value", 1)]
    parsed = parse_avro(main, refs, lambda subject, version: stored.get((subject, version)))
    assert parsed.references == tuple(refs)
    with pytest.raises(InvalidSchemaError, match="does not exist"):
        parse_avro(main, [SchemaReference("y.Ref", "refs-value", 2)], lambda s, v: stored.get((s, v)))
    with pytest.raises(InvalidSchemaError, match=r"y\.Ref"):
        parse_avro(main)


def test_served_avro_text_uses_javas_attribute_order() -> None:
    # Confluent's registry stores Avro's Schema.toString(): type, name, namespace, doc, fields; fields name,
    # type, doc, default; a bare {"type": "int"} becomes "int". Custom properties keep their place after.
    from freight.registry.avro_schema import parse_avro

    shuffled = (
        '{"fields":[{"default":0,"type":{"type":"int"},"name":"n"},'
        '{"type":{"values":"long","type":"map"},"name":"m"}],'
        '"aliases":["U"],"doc":"d","name":"User","namespace":"a.b","type":"record"}'
    )
    assert parse_avro(shuffled).text == (
        '{"type":"record","name":"User","namespace":"a.b","doc":"d","fields":['
        '{"name":"n","type":"int","default":0},{"name":"m","type":{"type":"map","values":"long"}}],'
        '"aliases":["U"]}'
    )
