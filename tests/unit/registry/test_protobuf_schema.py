"""Protobuf in the registry: parsing .proto text and base64 descriptors, identity, imports and references,
printing descriptors back to text, and Confluent's compatibility rules, pair by pair."""

from __future__ import annotations

import base64
import random
import re

import pytest
from google.protobuf import descriptor_pb2, timestamp_pb2

from freight.registry.avro_schema import InvalidSchemaError, ParsedSchema, SchemaReference
from freight.registry.compat import CompatibilityLevel, PreviousSchema, check
from freight.registry.protobuf_compat import incompatibilities
from freight.registry.protobuf_schema import parse_protobuf
from freight.registry.protobuf_text import to_proto_text

ORDER = """syntax = "proto3";
package shop.v1;
import "google/protobuf/timestamp.proto";

// An order, as the shop writes it.
message Order {
  string id = 1;
  int64 amount_cents = 2;
  google.protobuf.Timestamp at = 3;
  map<string, string> labels = 4;
  optional string note = 5;
  oneof payment {
    string card = 6;
    bytes token = 7;
  }
  Status status = 8;
  repeated Line lines = 9 [deprecated = true];
  reserved 20 to 25;
  reserved "legacy";
  enum Status { UNKNOWN = 0; PAID = 1; }
  message Line { string sku = 1; uint32 qty = 2; }
}
message Refund { string order_id = 1; }
"""


def proto3(body: str, package: str = "p") -> str:
    return f'syntax = "proto3";\npackage {package};\n{body}\n'


def proto2(body: str, package: str = "p") -> str:
    return f'syntax = "proto2";\npackage {package};\n{body}\n'


def b64(file: descriptor_pb2.FileDescriptorProto) -> str:
    return base64.standard_b64encode(file.SerializeToString()).decode()


def test_text_parses_and_keeps_the_registered_text() -> None:
    parsed = parse_protobuf(ORDER)
    assert parsed.schema_type == "PROTOBUF"
    assert parsed.text == ORDER.strip()
    assert [m.name for m in parsed.model.file.message_type] == ["Order", "Refund"]
    assert "google/protobuf/timestamp.proto" in parsed.model.files


def test_equivalent_texts_share_an_id() -> None:
    reformatted = ORDER.replace("// An order, as the shop writes it.", "/* other comment */").replace(
        "  ", "    "
    )
    moved_option = ORDER.replace("package shop.v1;", 'package shop.v1;\noption java_package = "a";\n')
    assert parse_protobuf(reformatted).fingerprint == parse_protobuf(ORDER).fingerprint
    assert parse_protobuf(moved_option).fingerprint != parse_protobuf(ORDER).fingerprint
    two = proto3('import "google/protobuf/timestamp.proto";\nimport "google/protobuf/duration.proto";')
    swapped = proto3('import "google/protobuf/duration.proto";\nimport "google/protobuf/timestamp.proto";')
    assert parse_protobuf(two).fingerprint == parse_protobuf(swapped).fingerprint


def test_a_base64_descriptor_gets_the_id_of_its_text_and_is_stored_as_text() -> None:
    text = parse_protobuf(ORDER)
    descriptor = parse_protobuf(text.model.serialized())
    assert descriptor.fingerprint == text.fingerprint
    assert descriptor.text.startswith('syntax = "proto3";')
    assert "map<string, string> labels = 4;" in descriptor.text
    assert parse_protobuf(descriptor.text).fingerprint == text.fingerprint


def test_a_generated_modules_descriptor_parses_as_the_serializer_sends_it() -> None:
    # What confluent-kafka's ProtobufSerializer registers: base64 of the module's serialized_pb.
    parsed = parse_protobuf(base64.b64encode(timestamp_pb2.DESCRIPTOR.serialized_pb).decode())
    assert "message Timestamp {" in parsed.text
    assert 'option go_package = "google.golang.org/protobuf/types/known/timestamppb";' in parsed.text


def test_an_unprintable_descriptor_is_kept_as_base64() -> None:
    file = descriptor_pb2.FileDescriptorProto(name="g.proto", package="p", syntax="proto2")
    message = file.message_type.add(name="M")
    group = message.nested_type.add(name="G")
    group.field.add(name="x", number=1, type=5, label=1)
    message.field.add(name="g", number=1, type=10, type_name=".p.M.G", label=1)  # a proto2 group
    raw = b64(file)
    assert parse_protobuf(raw).text == raw


def test_printer_round_trips_what_protoc_writes() -> None:
    parsed = parse_protobuf(
        proto2(
            """
message A {
  required int32 a = 1 [default = 7];
  optional string s = 2 [default = "x\\"y"];
  optional bytes b = 3 [default = "\\001z"];
  repeated int32 packed = 4 [packed = true];
  optional E e = 5 [default = TWO];
  extensions 100 to max;
  enum E { option allow_alias = true; ONE = 1; UNO = 1; TWO = 2; reserved 10 to 20; }
}
extend A { optional string more = 100; }
service S { rpc Get (A) returns (stream A); }
"""
        )
    )
    printed = to_proto_text(parsed.model.file)
    assert parse_protobuf(printed).fingerprint == parsed.fingerprint
    assert parse_protobuf(parsed.model.serialized()).text == printed


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (proto3("message A { int32 a = 1 }"), 'line 3, column 25: Expected ";"'),
        (proto3("message A { Missing m = 1; }"), '"Missing" is not defined'),
        (proto3("message A { int32 a = 1; string a = 2; }"), '"a" is already defined'),
        (proto3("message A { int32 a = 1; string b = 1; }"), "has already been used"),
        ('syntax = "proto4";', 'Unrecognized syntax identifier "proto4"'),
        (proto3('import "other.proto";\nmessage A { int32 a = 1; }'), "needs a reference"),
        ("QUJD", "base64 of a serialized FileDescriptorProto"),
    ],
)
def test_invalid_schemas_say_why(text: str, says: str) -> None:
    with pytest.raises(InvalidSchemaError, match=re.escape(says)):
        parse_protobuf(text)


def test_an_invalid_descriptor_names_the_unresolved_type() -> None:
    file = descriptor_pb2.FileDescriptorProto(name="x.proto", package="p", syntax="proto3")
    file.message_type.add(name="M").field.add(name="o", number=1, type=11, type_name=".p.Nope", label=1)
    with pytest.raises(InvalidSchemaError, match="Nope"):
        parse_protobuf(b64(file))


OTHER = proto3("message Address { string street = 1; }", package="common")
STORE = {("common-address", 1): (OTHER, ())}


def resolve(subject: str, version: int) -> tuple[str, tuple[SchemaReference, ...]] | None:
    return STORE.get((subject, version))


def test_references_make_registered_schemas_importable() -> None:
    refs = [SchemaReference("common/address.proto", "common-address", 1)]
    text = proto3('import "common/address.proto";\nmessage Customer { common.Address home = 1; }')
    parsed = parse_protobuf(text, refs, resolve)
    assert parsed.model.origins == {"common/address.proto": ("common-address", 1)}
    assert parsed.model.file.message_type[0].field[0].type_name == ".common.Address"
    # A schema registered as a descriptor imports the same reference.
    again = parse_protobuf(parsed.model.serialized(), refs, resolve)
    assert again.fingerprint == parsed.fingerprint
    with pytest.raises(InvalidSchemaError, match="does not exist"):
        parse_protobuf(text, [SchemaReference("common/address.proto", "common-address", 2)], resolve)
    with pytest.raises(InvalidSchemaError, match="not an import path"):
        parse_protobuf(text, [SchemaReference("../etc/passwd", "common-address", 1)], resolve)
    with pytest.raises(InvalidSchemaError, match="needs a reference"):
        parse_protobuf(text)


def model(text: str) -> ParsedSchema:
    return parse_protobuf(text)


def source(short: str) -> str:
    """A case's schema: proto3 in package p; "2:" makes it proto2, "q:" puts it in package q."""
    if short.startswith("2:"):
        return proto2(short[2:])
    if short.startswith("q:"):
        return proto3(short[2:], package="q")
    return proto3(short)


# (case, writer (old), reader (new), compatible, the finding Confluent names): can `reader` parse what
# `writer` writes?
CASES: list[tuple[str, str, str, bool, str]] = [
    ("same schema", "message M { int32 a = 1; }", "message M { int32 a = 1; }", True, ""),
    ("field added", "message M { int32 a = 1; }", "message M { int32 a = 1; string b = 2; }", True, ""),
    ("field removed", "message M { int32 a = 1; string b = 2; }", "message M { int32 a = 1; }", True, ""),
    ("field renamed", "message M { int32 a = 1; }", "message M { int32 b = 1; }", True, ""),
    ("int32 to int64", "message M { int32 a = 1; }", "message M { int64 a = 1; }", True, ""),
    ("uint32 to bool", "message M { uint32 a = 1; }", "message M { bool a = 1; }", True, ""),
    ("sint32 to sint64", "message M { sint32 a = 1; }", "message M { sint64 a = 1; }", True, ""),
    ("string to bytes", "message M { string a = 1; }", "message M { bytes a = 1; }", True, ""),
    ("fixed32 to sfixed32", "message M { fixed32 a = 1; }", "message M { sfixed32 a = 1; }", True, ""),
    ("fixed64 to sfixed64", "message M { fixed64 a = 1; }", "message M { sfixed64 a = 1; }", True, ""),
    (
        "enum to int32",
        "enum E { Z = 0; } message M { E a = 1; }",
        "enum E { Z = 0; } message M { int32 a = 1; }",
        True,
        "",
    ),
    (
        "int32 to string",
        "message M { int32 a = 1; }",
        "message M { string a = 1; }",
        False,
        "FIELD_SCALAR_KIND_CHANGED",
    ),
    (
        "int32 to sint32",
        "message M { int32 a = 1; }",
        "message M { sint32 a = 1; }",
        False,
        "FIELD_SCALAR_KIND_CHANGED",
    ),
    (
        "fixed32 to fixed64",
        "message M { fixed32 a = 1; }",
        "message M { fixed64 a = 1; }",
        False,
        "FIELD_SCALAR_KIND_CHANGED",
    ),
    (
        "float to double",
        "message M { float a = 1; }",
        "message M { double a = 1; }",
        False,
        "FIELD_SCALAR_KIND_CHANGED",
    ),
    (
        "scalar to message",
        "message N {} message M { int32 a = 1; }",
        "message N {} message M { N a = 1; }",
        False,
        "FIELD_KIND_CHANGED",
    ),
    (
        "scalar to map",
        "message M { string a = 1; }",
        "message M { map<string, string> a = 1; }",
        False,
        "FIELD_KIND_CHANGED",
    ),
    (
        "map value type changed",
        "message M { map<string, int32> a = 1; }",
        "message M { map<string, string> a = 1; }",
        False,
        "FIELD_SCALAR_KIND_CHANGED",
    ),
    (
        "message type changed",
        "message N {} message O {} message M { N a = 1; }",
        "message N {} message O {} message M { O a = 1; }",
        False,
        "FIELD_NAMED_TYPE_CHANGED",
    ),
    (
        "optional to repeated number",
        "message M { optional int32 a = 1; }",
        "message M { repeated int32 a = 1; }",
        False,
        "FIELD_NUMERIC_LABEL_CHANGED",
    ),
    (
        "optional to repeated string",
        "message M { optional string a = 1; }",
        "message M { repeated string a = 1; }",
        True,
        "",
    ),
    (
        "message removed",
        "message M { int32 a = 1; } message N { int32 a = 1; }",
        "message M { int32 a = 1; }",
        False,
        "MESSAGE_REMOVED",
    ),
    (
        "message renamed",
        "message M { int32 a = 1; }",
        "message M2 { int32 a = 1; }",
        False,
        "MESSAGE_REMOVED",
    ),
    ("message added", "message M { int32 a = 1; }", "message M { int32 a = 1; } message N {}", True, ""),
    ("messages reordered", "message M {} message N {}", "message N {} message M {}", True, ""),
    (
        "nested message removed",
        "message M { message I { int32 x = 1; } }",
        "message M { }",
        False,
        "MESSAGE_REMOVED",
    ),
    (
        "package changed",
        "message M { int32 a = 1; }",
        "q:message M { int32 a = 1; }",
        False,
        "PACKAGE_CHANGED",
    ),
    (
        "syntax changed alone",
        "2:message M { optional int32 a = 1; }",
        "message M { optional int32 a = 1; }",
        True,
        "",
    ),
    (
        "required field added",
        "2:message M { optional int32 a = 1; }",
        "2:message M { optional int32 a = 1; required int32 b = 2; }",
        False,
        "REQUIRED_FIELD_ADDED",
    ),
    (
        "required field removed",
        "2:message M { required int32 a = 1; optional int32 b = 2; }",
        "2:message M { optional int32 b = 2; }",
        False,
        "REQUIRED_FIELD_REMOVED",
    ),
    (
        "required to optional",
        "2:message M { required int32 a = 1; }",
        "2:message M { optional int32 a = 1; }",
        False,
        "FIELD_NUMERIC_LABEL_CHANGED",
    ),
    (
        "enum value added",
        "enum E { Z = 0; } message M { E e = 1; }",
        "enum E { Z = 0; O = 1; } message M { E e = 1; }",
        True,
        "",
    ),
    (
        "enum value removed",
        "enum E { Z = 0; O = 1; } message M { E e = 1; }",
        "enum E { Z = 0; } message M { E e = 1; }",
        True,
        "",
    ),
    (
        "oneof added",
        "message M { int32 a = 1; }",
        "message M { int32 a = 1; oneof o { string b = 2; } }",
        True,
        "",
    ),
    (
        "field added to a oneof",
        "message M { oneof o { string a = 1; } }",
        "message M { oneof o { string a = 1; int32 b = 2; } }",
        True,
        "",
    ),
    (
        "field removed from a oneof",
        "message M { oneof o { string a = 1; int32 b = 2; } }",
        "message M { oneof o { string a = 1; } }",
        False,
        "ONEOF_FIELD_REMOVED",
    ),
    (
        "one field moved into a new oneof",
        "message M { string a = 1; }",
        "message M { oneof o { string a = 1; } }",
        True,
        "",
    ),
    (
        "two fields moved into a oneof",
        "message M { string a = 1; int32 b = 2; }",
        "message M { oneof o { string a = 1; int32 b = 2; } }",
        False,
        "MULTIPLE_FIELDS_MOVED_TO_ONEOF",
    ),
    (
        "field moved into an existing oneof",
        "message M { string a = 1; oneof o { int32 b = 2; } }",
        "message M { oneof o { string a = 1; int32 b = 2; } }",
        False,
        "FIELD_MOVED_TO_EXISTING_ONEOF",
    ),
    (
        "oneof renamed",
        "message M { oneof o { string a = 1; int32 b = 2; } }",
        "message M { oneof p { string a = 1; int32 b = 2; } }",
        True,
        "",
    ),
    (
        "field moved out of a oneof",
        "message M { oneof o { string a = 1; int32 b = 2; } }",
        "message M { string a = 1; oneof o { int32 b = 2; } }",
        True,
        "",
    ),
    (
        "oneof removed with its fields",
        "message M { int32 x = 9; oneof o { string a = 1; int32 b = 2; } }",
        "message M { int32 x = 9; }",
        True,
        "",
    ),
    (
        "oneof dissolved, a member dropped",
        "message M { oneof o { string a = 1; int32 b = 2; } }",
        "message M { string a = 1; }",
        False,
        "ONEOF_FIELD_REMOVED",
    ),
    (
        "type change hidden by a oneof rename",
        "message M { oneof o { string a = 1; } }",
        "message M { oneof p { int32 a = 1; } }",
        False,
        "FIELD_SCALAR_KIND_CHANGED",
    ),
    (
        "two oneofs merged",
        "message M { oneof o { string a = 1; } oneof p { int32 b = 2; } }",
        "message M { oneof o { string a = 1; int32 b = 2; } }",
        False,
        "FIELD_MOVED_TO_EXISTING_ONEOF",
    ),
]


@pytest.mark.parametrize(("case", "writer", "reader", "compatible", "kind"), CASES, ids=[c[0] for c in CASES])
def test_rules(case: str, writer: str, reader: str, compatible: bool, kind: str) -> None:
    found = incompatibilities(model(source(reader)).model, model(source(writer)).model)
    assert (not found) is compatible, found
    if kind:
        assert found[0].startswith(f"{kind} at #/"), found


def test_findings_name_the_field_and_both_types() -> None:
    found = incompatibilities(
        model(proto3("message M { string a = 1; }")).model, model(proto3("message M { int32 a = 1; }")).model
    )
    assert found == [
        "FIELD_SCALAR_KIND_CHANGED at #/M/1: field 1 ('a') changed from int32 to string, which the wire "
        "format does not convert (compatible groups: int32/uint32/int64/uint64/bool/enum)"
    ]


def test_a_referenced_message_changed_incompatibly_is_found_through_the_field() -> None:
    v2 = proto3("message Address { int32 street = 1; }", package="common")
    store = {**STORE, ("common-address", 2): (v2, ())}
    text = proto3('import "common/address.proto";\nmessage Customer { common.Address home = 1; }')

    def resolve2(subject: str, version: int) -> tuple[str, tuple[SchemaReference, ...]] | None:
        return store.get((subject, version))

    old = parse_protobuf(text, [SchemaReference("common/address.proto", "common-address", 1)], resolve2)
    new = parse_protobuf(text, [SchemaReference("common/address.proto", "common-address", 2)], resolve2)
    found = incompatibilities(new.model, old.model)
    assert any(f.startswith("FIELD_NAMED_TYPE_CHANGED at #/Customer/1") for f in found), found
    assert incompatibilities(old.model, old.model) == []


def test_levels_pick_the_direction() -> None:
    v1 = model(proto3("message M { int32 a = 1; } message N { int32 a = 1; }"))
    v2 = model(proto3("message M { int32 a = 1; }"))  # N removed: the new schema cannot read N
    prev = [PreviousSchema(1, v1.model, "PROTOBUF")]
    assert "MESSAGE_REMOVED" in check(CompatibilityLevel.BACKWARD, v2.model, prev, "PROTOBUF")[0]
    assert check(CompatibilityLevel.FORWARD, v2.model, prev, "PROTOBUF") == []
    assert check(CompatibilityLevel.FULL, v2.model, prev, "PROTOBUF")
    assert check(CompatibilityLevel.NONE, v2.model, prev, "PROTOBUF") == []
    avro_prev = [PreviousSchema(1, object(), "AVRO")]
    assert (
        "schema type cannot change" in check(CompatibilityLevel.BACKWARD, v2.model, avro_prev, "PROTOBUF")[0]
    )


def test_confluent_meta_imports_without_a_reference_and_prints_its_options() -> None:
    text = proto3(
        'import "confluent/meta.proto";\n'
        "message A {\n"
        '  option (confluent.message_meta) = { doc: "an A" };\n'
        '  int32 a = 1 [(confluent.field_meta) = { tags: "PII" }];\n'
        "}"
    )
    parsed = parse_protobuf(text)
    assert "confluent/meta.proto" in parsed.model.files
    descriptor = parse_protobuf(parsed.model.serialized())
    assert descriptor.fingerprint == parsed.fingerprint
    assert 'int32 a = 1 [(confluent.field_meta) = { tags: "PII" }];' in descriptor.text
    other_tag = parse_protobuf(text.replace('tags: "PII"', 'tags: "PUBLIC"'))
    assert other_tag.fingerprint != parsed.fingerprint


def test_custom_options_the_runtime_does_not_know_still_tell_schemas_apart() -> None:
    options = proto3(
        'import "google/protobuf/descriptor.proto";\n'
        "extend google.protobuf.FieldOptions { string sensitivity = 50001; }",
        package="opts",
    )
    store = {("opts", 1): (options, ())}
    refs = [SchemaReference("opts.proto", "opts", 1)]

    def resolve_opts(subject: str, version: int) -> tuple[str, tuple[SchemaReference, ...]] | None:
        return store.get((subject, version))

    def with_level(level: str) -> ParsedSchema:
        body = f'import "opts.proto";\nmessage A {{ int32 a = 1 [(opts.sensitivity) = "{level}"]; }}'
        return parse_protobuf(proto3(body), refs, resolve_opts)

    high, low = with_level("high"), with_level("low")
    assert high.fingerprint != low.fingerprint
    # As a descriptor it keeps its identity, and prints with the option the reference defines.
    descriptor = parse_protobuf(high.model.serialized(), refs, resolve_opts)
    assert descriptor.fingerprint == high.fingerprint
    assert 'int32 a = 1 [(opts.sensitivity) = "high"];' in descriptor.text


def test_a_reference_may_name_a_well_known_file() -> None:
    # Clients that do not skip known types (Java's default) register google/protobuf files as references.
    timestamp = base64.b64encode(timestamp_pb2.DESCRIPTOR.serialized_pb).decode()
    store = {("google/protobuf/timestamp.proto", 1): (timestamp, ())}
    refs = [SchemaReference("google/protobuf/timestamp.proto", "google/protobuf/timestamp.proto", 1)]
    text = proto3('import "google/protobuf/timestamp.proto";\nmessage A { google.protobuf.Timestamp t = 1; }')
    parsed = parse_protobuf(text, refs, lambda subject, version: store.get((subject, version)))
    assert parsed.model.origins == {"google/protobuf/timestamp.proto": ("google/protobuf/timestamp.proto", 1)}


@pytest.mark.parametrize(
    ("text", "says"),
    [("  \n", "the schema is empty"), (proto3("message A {} // \ud800"), "not valid UTF-8")],
)
def test_empty_and_unencodable_texts_say_why(text: str, says: str) -> None:
    with pytest.raises(InvalidSchemaError, match=says):
        parse_protobuf(text)


def test_a_descriptor_with_non_utf8_names_is_refused() -> None:
    file = descriptor_pb2.FileDescriptorProto(name="x.proto", package="p", syntax="proto3")
    file.message_type.add(name="M").field.add(name="a", number=1, type=5, label=1)
    raw = file.SerializeToString().replace(b"\n\x01M", b"\n\x01\xff")  # the message's name: one bad byte
    with pytest.raises(InvalidSchemaError, match="'name' is not UTF-8 text"):
        parse_protobuf(base64.b64encode(raw).decode())


def test_corrupted_descriptors_are_invalid_schemas_never_crashes() -> None:
    # What a hostile or broken client may send: every mutation of a valid descriptor is either a schema
    # or an InvalidSchemaError (a 42201), and whatever parses can be compared and printed.
    rng = random.Random(1)
    seed = parse_protobuf(ORDER).model.file.SerializeToString()
    accepted = []
    for _ in range(400):
        raw = bytearray(seed)
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(raw))
            if rng.random() < 0.6:
                raw[at] = rng.randrange(256)
            else:
                raw[at : at + rng.randint(1, 6)] = b""
        try:
            parsed = parse_protobuf(base64.b64encode(bytes(raw)).decode())
        except InvalidSchemaError:
            continue
        incompatibilities(parsed.model, parse_protobuf(ORDER).model)
        accepted.append(parsed)
    assert accepted  # some mutations (e.g. of a name's letters) are still schemas


def test_printed_text_keeps_nested_types_and_map_entries_in_order() -> None:
    # Message indexes on the wire count nested types, map entries included: the printed text must declare
    # them in the same order, or the descriptor would be kept as base64.
    text = proto3(
        "message A {\n"
        "  message B { int32 x = 1; }\n"
        "  int32 a = 1;\n"
        "  map<string, B> m = 2;\n"
        "  message C { map<int32, string> q = 1; }\n"
        "  oneof o { string s = 3; int32 t = 4; }\n"
        "  map<string, string> n = 5;\n"
        "  message D {}\n"
        "}"
    )
    parsed = parse_protobuf(text)
    assert [n.name for n in parsed.model.file.message_type[0].nested_type] == [
        "B",
        "MEntry",
        "C",
        "NEntry",
        "D",
    ]
    descriptor = parse_protobuf(parsed.model.serialized())
    assert descriptor.text.startswith('syntax = "proto3";')
    assert descriptor.fingerprint == parsed.fingerprint
