"""Protobuf compatibility: can a reader schema parse every message a writer schema writes?

BACKWARD checks the new schema as reader against the old one as writer, FORWARD the other way round
(`freight.registry.compat` decides the pairs). The rules are Confluent Schema Registry's (its
`protobuf.diff` package as of 8.4, which matches fields by number across the whole message whatever
oneof they sit in), applied to the descriptors of both schemas. Refused (the finding's name
in capitals, as Confluent names it):

- PACKAGE_CHANGED: the file's package differs (type names on the wire, e.g. in `Any`, change with it);
- MESSAGE_REMOVED: a message of the writer is missing from the reader (a renamed message is one removed);
- FIELD_KIND_CHANGED: a field changed between scalar/enum, message and map;
- FIELD_SCALAR_KIND_CHANGED: a scalar changed outside its wire-compatible group (int32/uint32/int64/
  uint64/bool/enums; sint32/sint64; string/bytes; fixed32/sfixed32; fixed64/sfixed64; float; double);
- FIELD_NAMED_TYPE_CHANGED: a message field names another message type, or its type changed incompatibly;
- FIELD_NUMERIC_LABEL_CHANGED: a numeric field's explicit label changed (e.g. optional <-> repeated);
- REQUIRED_FIELD_ADDED / REQUIRED_FIELD_REMOVED: a proto2 `required` field appeared or disappeared;
- ONEOF_FIELD_REMOVED: a oneof member disappeared (unless its whole oneof went with all its members);
- MULTIPLE_FIELDS_MOVED_TO_ONEOF / FIELD_MOVED_TO_EXISTING_ONEOF: a oneof of the reader joins fields the
  writer set independently (plain fields, or members of different oneofs).

Allowed, as in Confluent: adding or removing optional fields and messages, renaming fields, reordering
messages, any enum change (enums are open), adding, removing or renaming a oneof, adding a field to a
oneof, moving a field out of a oneof, a string/bytes label change, and a change of syntax alone. Fields
match by number, messages by name. The verdicts and findings agree with all 53 examples of Confluent's
own diff test data (`diff-schema-examples.json` in confluentinc/schema-registry; checked while writing
this, not vendored: it is under the Confluent Community License).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeAlias

from google.protobuf import descriptor_pb2

from freight.registry.protobuf_schema import MAIN_FILE, ProtobufModel
from freight.registry.protobuf_text import LABEL_NAMES, SCALAR_NAMES

FDP: TypeAlias = descriptor_pb2.FieldDescriptorProto
_GROUPS = {
    "int32": "int32/uint32/int64/uint64/bool/enum",
    "int64": "int32/uint32/int64/uint64/bool/enum",
    "uint32": "int32/uint32/int64/uint64/bool/enum",
    "uint64": "int32/uint32/int64/uint64/bool/enum",
    "bool": "int32/uint32/int64/uint64/bool/enum",
    "enum": "int32/uint32/int64/uint64/bool/enum",
    "sint32": "sint32/sint64",
    "sint64": "sint32/sint64",
    "string": "string/bytes",
    "bytes": "string/bytes",
    "fixed32": "fixed32/sfixed32",
    "sfixed32": "fixed32/sfixed32",
    "fixed64": "fixed64/sfixed64",
    "sfixed64": "fixed64/sfixed64",
    "float": "float",
    "double": "double",
}


def incompatibilities(reader: ProtobufModel, writer: ProtobufModel) -> list[str]:
    """Why messages written with `writer` may not parse as `reader` (empty: compatible).

    Args:
        reader: the schema that must parse the data.
        writer: the schema the data was written with.

    Returns:
        One message per problem: Confluent's name for it, where (`#/<message>/<field number>`), and what
        changed.
    """
    checker = _Checker(_Side(writer), _Side(reader))
    checker.file()
    return [f"{f.kind} at {f.path}: {f.detail}" for f in checker.findings]


@dataclass(frozen=True)
class _Type:
    """A named type of one side: its descriptor, the file and package it is declared in."""

    proto: descriptor_pb2.DescriptorProto | descriptor_pb2.EnumDescriptorProto
    file: str
    package: str
    syntax: str

    @property
    def is_map(self) -> bool:
        return isinstance(self.proto, descriptor_pb2.DescriptorProto) and self.proto.options.map_entry


class _Side:
    """One schema with every type it can name, by full name (without the leading dot)."""

    def __init__(self, model: ProtobufModel) -> None:
        self.model = model
        self.types: dict[str, _Type] = {}
        for name, file in [(MAIN_FILE, model.file), *model.files.items()]:
            syntax = file.syntax or "proto2"
            for message in file.message_type:
                self._add_message(message, file.package, _Type(message, name, file.package, syntax))
            for enum in file.enum_type:
                self.types[_join(file.package, enum.name)] = _Type(enum, name, file.package, syntax)

    def _add_message(self, message: descriptor_pb2.DescriptorProto, prefix: str, where: _Type) -> None:
        full = _join(prefix, message.name)
        self.types[full] = _Type(message, where.file, where.package, where.syntax)
        for nested in message.nested_type:
            self._add_message(nested, full, where)
        for enum in message.enum_type:
            self.types[_join(full, enum.name)] = _Type(enum, where.file, where.package, where.syntax)

    def syntax(self, full_name: str) -> str:
        found = self.types.get(full_name)
        return found.syntax if found is not None else "proto3"

    def origin(self, file: str) -> tuple[str, int] | None:
        return self.model.origins.get(file)


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


@dataclass(frozen=True)
class _FieldType:
    """How Confluent's diff sees a field's type: kind scalar (enums included), message or map."""

    kind: str  # "scalar" | "message" | "map"
    name: str  # the scalar's name ("enum" for enums) or the message's full name
    key: _FieldType | None = None
    value: _FieldType | None = None


@dataclass(frozen=True)
class _Finding:
    kind: str
    path: str
    detail: str


@dataclass
class _Checker:
    writer: _Side
    reader: _Side
    findings: list[_Finding] = field(default_factory=list)
    path: list[str] = field(default_factory=list)
    active: set[str] = field(default_factory=set)

    def add(self, kind: str, detail: str, *extra: str) -> None:
        self.findings.append(_Finding(kind, "#/" + "/".join([*self.path, *extra]), detail))

    def file(self) -> None:
        old, new = self.writer.model.file, self.reader.model.file
        if old.package != new.package:
            self.add("PACKAGE_CHANGED", f"the package changed from {old.package!r} to {new.package!r}")
        self.types(old.message_type, new.message_type, old.package, new.package)

    def types(
        self,
        old: list[descriptor_pb2.DescriptorProto],
        new: list[descriptor_pb2.DescriptorProto],
        old_prefix: str,
        new_prefix: str,
    ) -> None:
        """Messages match by name; a message the writer has and the reader lacks is refused."""
        new_by_name = {m.name: m for m in new if not m.options.map_entry}
        for message in old:
            if message.options.map_entry:
                continue
            counterpart = new_by_name.get(message.name)
            if counterpart is None:
                self.add(
                    "MESSAGE_REMOVED",
                    f"message {_join(old_prefix, message.name)} of the writer is missing from the reader "
                    "(removed or renamed)",
                    message.name,
                )
                continue
            self.path.append(message.name)
            self.message(
                message, counterpart, _join(old_prefix, message.name), _join(new_prefix, message.name)
            )
            self.path.pop()

    def message(
        self,
        old: descriptor_pb2.DescriptorProto,
        new: descriptor_pb2.DescriptorProto,
        old_full: str,
        new_full: str,
    ) -> None:
        if old_full not in self.active:
            self.active.add(old_full)
            try:
                self.body(old, new, self.writer.syntax(old_full), self.reader.syntax(new_full))
            finally:
                self.active.discard(old_full)
        self.types(list(old.nested_type), list(new.nested_type), old_full, new_full)

    def body(
        self,
        old: descriptor_pb2.DescriptorProto,
        new: descriptor_pb2.DescriptorProto,
        old_syntax: str,
        new_syntax: str,
    ) -> None:
        """Fields match by number across the whole message, whatever oneof they sit in, so that a oneof
        renamed, merged or dissolved cannot hide a field's removal or type change."""
        old_fields = {f.number: f for f in old.field}
        new_fields = {f.number: f for f in new.field}
        old_oneof = _oneof_of(old)
        new_oneof = _oneof_of(new)
        new_oneof_names = set(new_oneof.values())
        # A oneof removed with every member is a deletion like any other (compatible); one that loses
        # only some members is not.
        deleted = {
            name
            for name in set(old_oneof.values()) - new_oneof_names
            if not any(n in new_fields for n, o in old_oneof.items() if o == name)
        }
        for name in sorted(new_oneof_names):
            members = [n for n, o in new_oneof.items() if o == name]
            groups = {
                f"oneof {old_oneof[n]!r}" if n in old_oneof else f"field {n}"
                for n in members
                if n in old_fields
            }
            moved = [n for n in members if n in old_fields and n not in old_oneof]
            if len(groups) > 1:
                if len(moved) > 1:
                    self.add(
                        "MULTIPLE_FIELDS_MOVED_TO_ONEOF",
                        f"fields {', '.join(map(str, moved))} of the writer moved into oneof {name!r}: a "
                        "message that sets more than one of them cannot be read",
                        name,
                    )
                else:
                    self.add(
                        "FIELD_MOVED_TO_EXISTING_ONEOF",
                        f"oneof {name!r} joins fields the writer set independently "
                        f"({', '.join(sorted(groups))})",
                        name,
                    )
        for number in sorted({*old_fields, *new_fields}):
            before, after = old_fields.get(number), new_fields.get(number)
            if after is None and before is not None:
                if number in old_oneof:
                    if old_oneof[number] not in deleted:
                        self.add(
                            "ONEOF_FIELD_REMOVED",
                            f"field {number} ({before.name!r}) of the writer's oneof "
                            f"{old_oneof[number]!r} is missing from the reader",
                            old_oneof[number],
                            str(number),
                        )
                elif _label(before, self.writer, old_syntax) == FDP.LABEL_REQUIRED:
                    self.add(
                        "REQUIRED_FIELD_REMOVED",
                        f"required field {number} ({before.name!r}) of the writer is missing from the reader",
                        str(number),
                    )
            elif before is None and after is not None:
                if number not in new_oneof and _label(after, self.reader, new_syntax) == FDP.LABEL_REQUIRED:
                    self.add(
                        "REQUIRED_FIELD_ADDED",
                        f"required field {number} ({after.name!r}) of the reader is missing from the writer",
                        str(number),
                    )
            elif before is not None and after is not None:
                where = [new_oneof[number], str(number)] if number in new_oneof else [str(number)]
                self.path += where
                self.field(before, after, old_syntax, new_syntax)
                del self.path[-len(where) :]

    def field(
        self,
        old: FDP,
        new: FDP,
        old_syntax: str,
        new_syntax: str,
    ) -> None:
        what = f"field {old.number} ({old.name!r})"
        self.compare(
            what,
            _label(old, self.writer, old_syntax),
            _label(new, self.reader, new_syntax),
            self.field_type(old, self.writer),
            self.field_type(new, self.reader),
        )

    def compare(
        self, what: str, old_label: int | None, new_label: int | None, old: _FieldType, new: _FieldType
    ) -> None:
        if old.kind != new.kind:
            self.add("FIELD_KIND_CHANGED", f"{what} changed from a {old.kind} to a {new.kind}")
            return
        if old.kind == "map":
            assert old.key and new.key and old.value and new.value
            self.compare(f"{what} (map key)", None, None, old.key, new.key)
            self.compare(f"{what} (map value)", None, None, old.value, new.value)
        elif old.kind == "message":
            self.message_type(what, old.name, new.name)
        elif _GROUPS[old.name] != _GROUPS[new.name]:
            self.add(
                "FIELD_SCALAR_KIND_CHANGED",
                f"{what} changed from {old.name} to {new.name}, which the wire format does not convert "
                f"(compatible groups: {_GROUPS[old.name]})",
            )
        elif old_label is not None and new_label is not None and old_label != new_label:
            if _GROUPS[old.name] != "string/bytes":
                self.add(
                    "FIELD_NUMERIC_LABEL_CHANGED",
                    f"{what} changed its label from {LABEL_NAMES[old_label]} to {LABEL_NAMES[new_label]}",
                )

    def message_type(self, what: str, old_name: str, new_name: str) -> None:
        old_type, new_type = self.writer.types.get(old_name), self.reader.types.get(new_name)
        if old_type is None or new_type is None:
            if old_name != new_name:
                self.add("FIELD_NAMED_TYPE_CHANGED", f"{what} changed from {old_name} to {new_name}")
            return
        old_local, new_local = _local(old_name, old_type.package), _local(new_name, new_type.package)
        if old_local != new_local:
            self.add("FIELD_NAMED_TYPE_CHANGED", f"{what} changed from message {old_name} to {new_name}")
            return
        origin = self.writer.origin(old_type.file)
        same_version = origin is not None and origin == self.reader.origin(new_type.file)
        if old_type.file == new_type.file and (old_type.file == MAIN_FILE or same_version):
            return  # the schema's own types are compared on their own; the same referenced version is equal
        assert isinstance(old_type.proto, descriptor_pb2.DescriptorProto)
        assert isinstance(new_type.proto, descriptor_pb2.DescriptorProto)
        saved, before = self.path, len(self.findings)
        self.path = old_local.split(".")
        self.message(old_type.proto, new_type.proto, old_name, new_name)
        self.path = saved
        if len(self.findings) > before:
            self.add("FIELD_NAMED_TYPE_CHANGED", f"{what}: its message type {old_name} changed incompatibly")

    def field_type(self, item: FDP, side: _Side) -> _FieldType:
        if item.type in (FDP.TYPE_MESSAGE, FDP.TYPE_GROUP):
            name = item.type_name.lstrip(".")
            found = side.types.get(name)
            if found is not None and found.is_map:
                assert isinstance(found.proto, descriptor_pb2.DescriptorProto)
                key, value = found.proto.field[0], found.proto.field[1]
                return _FieldType("map", name, self.field_type(key, side), self.field_type(value, side))
            if found is not None and isinstance(found.proto, descriptor_pb2.EnumDescriptorProto):
                return _FieldType("scalar", "enum")
            return _FieldType("message", name)
        if item.type == FDP.TYPE_ENUM:
            return _FieldType("scalar", "enum")
        return _FieldType("scalar", SCALAR_NAMES[item.type])


def _in_oneof(item: FDP) -> bool:
    """In a real oneof (proto3 `optional` fields sit in a synthetic one, which does not count)."""
    return item.HasField("oneof_index") and not item.proto3_optional


def _oneof_of(message: descriptor_pb2.DescriptorProto) -> dict[int, str]:
    """Field number -> the name of the (real) oneof it belongs to."""
    return {
        item.number: str(message.oneof_decl[item.oneof_index].name)
        for item in message.field
        if _in_oneof(item)
    }


def _label(item: FDP, side: _Side, syntax: str) -> int | None:
    """The label as written in the source (None where none is written: oneof members, maps, proto3 fields
    without `optional`/`repeated`), which is what Confluent's rules compare."""
    if _in_oneof(item):
        return None
    if item.type == FDP.TYPE_MESSAGE:
        found = side.types.get(item.type_name.lstrip("."))
        if found is not None and found.is_map:
            return None
    if syntax == "proto3":
        if item.label == FDP.LABEL_REPEATED:
            return int(FDP.LABEL_REPEATED)
        return int(FDP.LABEL_OPTIONAL) if item.proto3_optional else None
    return int(item.label)


def _local(full_name: str, package: str) -> str:
    return full_name[len(package) + 1 :] if package and full_name.startswith(package + ".") else full_name
