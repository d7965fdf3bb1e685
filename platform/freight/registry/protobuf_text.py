"""Print a FileDescriptorProto back as .proto text, the form Confluent's registry serves Protobuf schemas in.

confluent-kafka's ProtobufSerializer registers a schema as a base64 serialized FileDescriptorProto; the
registry serves schemas as .proto text, so it prints the descriptor. The printer covers what protoc
writes into descriptors for proto2 and proto3 files: packages, imports, options (standard ones, and custom
ones whose extension the descriptor's message class knows), messages, nested types (in their order, map
entries included: message indexes on the wire count them), map fields, oneofs, proto3 `optional`,
defaults, `json_name`, reserved ranges and names, extension ranges, extensions and services. Anything
else (groups, editions, options no extension names) raises `UnprintableError`; the caller then keeps the
descriptor's base64 form. The caller also checks every printed text by compiling it again, so a printer
gap can never change a schema.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, TypeAlias

from google.protobuf import descriptor_pb2, text_encoding, text_format
from google.protobuf.unknown_fields import UnknownFieldSet

FDP: TypeAlias = descriptor_pb2.FieldDescriptorProto
# The .proto names of scalar types and labels (the compatibility checker's messages use them too).
SCALAR_NAMES = {
    FDP.TYPE_DOUBLE: "double",
    FDP.TYPE_FLOAT: "float",
    FDP.TYPE_INT64: "int64",
    FDP.TYPE_UINT64: "uint64",
    FDP.TYPE_INT32: "int32",
    FDP.TYPE_FIXED64: "fixed64",
    FDP.TYPE_FIXED32: "fixed32",
    FDP.TYPE_BOOL: "bool",
    FDP.TYPE_STRING: "string",
    FDP.TYPE_BYTES: "bytes",
    FDP.TYPE_UINT32: "uint32",
    FDP.TYPE_SFIXED32: "sfixed32",
    FDP.TYPE_SFIXED64: "sfixed64",
    FDP.TYPE_SINT32: "sint32",
    FDP.TYPE_SINT64: "sint64",
}
LABEL_NAMES = {FDP.LABEL_OPTIONAL: "optional", FDP.LABEL_REQUIRED: "required", FDP.LABEL_REPEATED: "repeated"}
#: Message field numbers and reserved ranges end at 2^29 - 1 ("max" in .proto text).
_MESSAGE_MAX = 536870911
_INDENT = "  "


class UnprintableError(ValueError):
    """The descriptor uses something this printer does not write (the message says what)."""


def to_proto_text(file: descriptor_pb2.FileDescriptorProto) -> str:
    """The .proto text of `file`.

    Args:
        file: a FileDescriptorProto with fully qualified type names (as protoc and a DescriptorPool give).

    Returns:
        The text; compiling it gives back the same descriptor (the caller verifies that).

    Raises:
        UnprintableError: the descriptor uses a feature the printer does not write.
    """
    syntax = file.syntax or "proto2"
    if syntax not in ("proto2", "proto3"):
        raise UnprintableError(f"syntax {syntax!r} (editions) is not printed")
    out = [f'syntax = "{syntax}";']
    if file.package:
        out.append(f"package {file.package};")
    public = set(file.public_dependency)
    weak = set(file.weak_dependency)
    for index, dependency in enumerate(file.dependency):
        kind = "public " if index in public else "weak " if index in weak else ""
        out.append(f"import {kind}{_quote(dependency)};")
    out += _options(file.options, "")
    proto3 = syntax == "proto3"
    for message in file.message_type:
        out += _message(message, "", proto3)
    for enum in file.enum_type:
        out += _enum(enum, "")
    out += _extensions(file.extension, "", proto3)
    for service in file.service:
        out += _service(service)
    return "\n".join(out) + "\n"


def _quote(value: str | bytes) -> str:
    raw = value.encode() if isinstance(value, str) else value
    return '"' + str(text_encoding.CEscape(raw, as_utf8=isinstance(value, str))) + '"'


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | bytes):
        return _quote(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    return str(value)


def _option_values(options: Any) -> list[tuple[str, str]]:
    """(name, value text) of every set option; custom options as `(full.name)`."""
    if len(UnknownFieldSet(options)):
        raise UnprintableError("options the protobuf runtime does not know")
    found: list[tuple[str, str]] = []
    for field, value in options.ListFields():
        name = f"({field.full_name})" if field.is_extension else field.name
        if name == "uninterpreted_option":
            raise UnprintableError("uninterpreted options")
        values = list(value) if field.is_repeated else [value]
        for item in values:
            found.append((name, _option_value(field, item)))
    return found


def _option_value(field: Any, value: Any) -> str:
    if field.type == field.TYPE_MESSAGE:
        return "{ " + str(text_format.MessageToString(value, as_one_line=True, as_utf8=True)) + " }"
    if field.type == field.TYPE_ENUM:
        found = field.enum_type.values_by_number.get(value)
        return found.name if found is not None else str(value)
    return _scalar(value)


def _options(options: Any, indent: str) -> list[str]:
    return [f"{indent}option {name} = {value};" for name, value in _option_values(options)]


def _inline_options(pairs: Iterable[tuple[str, str]]) -> str:
    items = [f"{name} = {value}" for name, value in pairs]
    return f" [{', '.join(items)}]" if items else ""


def _message(message: descriptor_pb2.DescriptorProto, indent: str, proto3: bool) -> list[str]:
    inner = indent + _INDENT
    out = [f"{indent}message {message.name} {{"]
    out += _options(message.options, inner)
    maps = {f".{nested.name}": nested for nested in message.nested_type if nested.options.map_entry}
    fields = list(message.field)
    printed_oneofs: set[int] = set()
    done = 0  # fields[:done] are printed

    def print_fields(stop: int) -> None:
        nonlocal done
        for field in fields[done:stop]:
            if field.HasField("oneof_index") and not field.proto3_optional:
                if field.oneof_index not in printed_oneofs:
                    printed_oneofs.add(field.oneof_index)
                    out.extend(_oneof(message, field.oneof_index, inner, proto3))
                continue
            out.append(inner + _field(field, proto3, maps, in_oneof=False))
        done = max(done, stop)

    # Nested messages and map fields keep their relative order (a map field declares its entry type where
    # it stands), because message indexes on the wire count nested types, map entries included.
    for nested in message.nested_type:
        if nested.options.map_entry:
            owner = next((i for i, f in enumerate(fields) if f.type_name.endswith(f".{nested.name}")), None)
            if owner is None:
                raise UnprintableError(f"map entry {nested.name} without its map field")
            print_fields(owner + 1)
        else:
            out += _message(nested, inner, proto3)
    print_fields(len(fields))
    for index, _ in enumerate(message.oneof_decl):
        if index not in printed_oneofs and not any(
            f.HasField("oneof_index") and f.oneof_index == index for f in fields
        ):
            raise UnprintableError("an empty oneof")
    for enum in message.enum_type:
        out += _enum(enum, inner)
    out += _extensions(message.extension, inner, proto3)
    for extension_range in message.extension_range:
        if extension_range.HasField("options"):
            raise UnprintableError("extension range options")
        out.append(f"{inner}extensions {_range(extension_range.start, extension_range.end - 1)};")
    out += _reserved(message.reserved_range, message.reserved_name, inner, exclusive_end=True)
    out.append(f"{indent}}}")
    return out


def _oneof(message: descriptor_pb2.DescriptorProto, index: int, indent: str, proto3: bool) -> list[str]:
    decl = message.oneof_decl[index]
    inner = indent + _INDENT
    out = [f"{indent}oneof {decl.name} {{"]
    out += _options(decl.options, inner)
    for field in message.field:
        if field.HasField("oneof_index") and field.oneof_index == index and not field.proto3_optional:
            out.append(inner + _field(field, proto3, {}, in_oneof=True))
    out.append(f"{indent}}}")
    return out


def _field(
    field: FDP, proto3: bool, maps: dict[str, descriptor_pb2.DescriptorProto], *, in_oneof: bool
) -> str:
    if field.type == FDP.TYPE_GROUP:
        raise UnprintableError("proto2 groups")
    entry = next((m for suffix, m in maps.items() if field.type_name.endswith(suffix)), None)
    if entry is not None and field.label == FDP.LABEL_REPEATED:
        key, value = entry.field[0], entry.field[1]
        kind = f"map<{_type(key)}, {_type(value)}>"
        label = ""
    else:
        kind = _type(field)
        label = _label(field, proto3, in_oneof)
    pairs: list[tuple[str, str]] = []
    if field.HasField("default_value"):
        pairs.append(("default", _default(field)))
    if field.HasField("json_name") and field.json_name != default_json_name(field.name):
        pairs.append(("json_name", _quote(field.json_name)))
    pairs += _option_values(field.options)
    return f"{label}{kind} {field.name} = {field.number}{_inline_options(pairs)};"


def _label(field: FDP, proto3: bool, in_oneof: bool) -> str:
    if in_oneof:
        return ""
    if proto3:
        if field.label == FDP.LABEL_REPEATED:
            return "repeated "
        if field.label == FDP.LABEL_REQUIRED:
            raise UnprintableError("a required field in a proto3 file")
        return "optional " if field.proto3_optional else ""
    return LABEL_NAMES[field.label] + " "


def _type(field: FDP) -> str:
    if field.type in (FDP.TYPE_MESSAGE, FDP.TYPE_ENUM):
        return str(field.type_name)
    return SCALAR_NAMES[field.type]


def _default(field: FDP) -> str:
    raw = str(field.default_value)
    if field.type == FDP.TYPE_STRING:
        return _quote(raw)
    if field.type == FDP.TYPE_BYTES:
        return '"' + raw + '"'  # protoc keeps bytes defaults C-escaped already
    return raw


def default_json_name(name: str) -> str:
    """The JSON name protoc derives from a field name (underscores dropped, the next letter upper-cased)."""
    out: list[str] = []
    upper = False
    for char in name:
        if char == "_":
            upper = True
        elif upper:
            out.append(char.upper())
            upper = False
        else:
            out.append(char)
    return "".join(out)


def _range(start: int, end: int, maximum: int = _MESSAGE_MAX) -> str:
    if start == end:
        return str(start)
    return f"{start} to {'max' if end >= maximum else end}"


def _reserved(ranges: Iterable[Any], names: Iterable[str], indent: str, *, exclusive_end: bool) -> list[str]:
    out = []
    spans = [_range(r.start, r.end - 1 if exclusive_end else r.end) for r in ranges]
    if spans:
        out.append(f"{indent}reserved {', '.join(spans)};")
    quoted = [_quote(n) for n in names]
    if quoted:
        out.append(f"{indent}reserved {', '.join(quoted)};")
    return out


def _enum(enum: descriptor_pb2.EnumDescriptorProto, indent: str) -> list[str]:
    inner = indent + _INDENT
    out = [f"{indent}enum {enum.name} {{"]
    out += _options(enum.options, inner)
    for value in enum.value:
        out.append(f"{inner}{value.name} = {value.number}{_inline_options(_option_values(value.options))};")
    spans = [_range(r.start, r.end, maximum=2**31 - 1) for r in enum.reserved_range]
    if spans:
        out.append(f"{inner}reserved {', '.join(spans)};")
    if enum.reserved_name:
        out.append(f"{inner}reserved {', '.join(_quote(n) for n in enum.reserved_name)};")
    out.append(f"{indent}}}")
    return out


def _extensions(fields: Iterable[FDP], indent: str, proto3: bool) -> list[str]:
    by_extendee: dict[str, list[FDP]] = {}
    for field in fields:
        by_extendee.setdefault(field.extendee, []).append(field)
    out = []
    for extendee, group in by_extendee.items():
        out.append(f"{indent}extend {extendee} {{")
        for field in group:
            out.append(indent + _INDENT + _field(field, proto3, {}, in_oneof=False))
        out.append(f"{indent}}}")
    return out


def _service(service: descriptor_pb2.ServiceDescriptorProto) -> list[str]:
    out = [f"service {service.name} {{"]
    out += _options(service.options, _INDENT)
    for method in service.method:
        source = f"{'stream ' if method.client_streaming else ''}{method.input_type}"
        sink = f"{'stream ' if method.server_streaming else ''}{method.output_type}"
        options = _options(method.options, _INDENT * 2)
        head = f"{_INDENT}rpc {method.name} ({source}) returns ({sink})"
        if options:
            out += [f"{head} {{", *options, f"{_INDENT}}}"]
        else:
            out.append(f"{head};")
    out.append("}")
    return out
