"""Parse, validate and normalize Protobuf schemas (`schemaType: "PROTOBUF"`), with Confluent-style references.

A schema arrives either as .proto text or, as confluent-kafka's ProtobufSerializer registers it, as the
base64 of a serialized FileDescriptorProto. Text is compiled by protoc itself (the `grpcio-tools` package
runs it in-process), so the registry accepts exactly what protoc accepts and reports protoc's own errors
with their line and column. Every descriptor, compiled or received, is then built in a fresh
`google.protobuf` DescriptorPool together with its imports, which checks that every type it names exists.

Imports resolve as in Confluent's registry: each reference `{"name": "<import path>", "subject",
"version"}` makes that registered schema importable as `import "<import path>";`, and the well-known
`google/protobuf/*.proto`, `google/type/*.proto` and `confluent/*.proto` (field metadata, Decimal)
files import without references (confluent-kafka's serializer never registers those; a reference that
names one anyway is used instead). Identity: two schemas get the same id when their descriptors are equal
once source positions, the file name, default JSON names and import order are set aside, so whitespace,
comments, option order and the base64 form of the same file do not matter.

Stored text: .proto text is kept as registered; a descriptor is printed back to .proto text (what Confluent
serves), and kept as base64 only when its printed text would not compile back to the same descriptor.
`ProtobufModel.serialized()` gives the base64 form that `?format=serialized` serves.
"""

from __future__ import annotations

import base64
import binascii
import importlib.util
import re
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format
from google.protobuf.message import DecodeError

if TYPE_CHECKING:
    from grpc_tools import _protoc_compiler

from freight.registry.avro_schema import (
    InvalidSchemaError,
    ParsedSchema,
    ReferenceResolver,
    SchemaReference,
    fingerprint,
    walk_references,
)
from freight.registry.protobuf_text import UnprintableError, default_json_name, to_proto_text

SCHEMA_TYPE = "PROTOBUF"
#: The file name the schema itself gets while it is compiled (references use their import paths).
MAIN_FILE = "freight_registry_schema.proto"
#: Imports that resolve without a reference, as in confluent-kafka (`_is_builtin`).
BUILTIN_PREFIXES = ("google/protobuf/", "google/type/", "confluent/")
#: confluent/*.proto (field metadata, Decimal, Variant) come from confluent-kafka's generated modules.
_CONFLUENT_MODULES = (
    "confluent_kafka.schema_registry.confluent.meta_pb2",
    "confluent_kafka.schema_registry.confluent.type.decimal_pb2",
    "confluent_kafka.schema_registry.confluent.type.variant_pb2",
    "confluent_kafka.schema_registry.confluent.types.decimal_pb2",
)
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_IMPORT_PATH = re.compile(r"[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)*")
# grpcio-tools does not document its in-process protoc as thread-safe: one compilation at a time.
_PROTOC_LOCK = threading.Lock()


@dataclass(frozen=True)
class ProtobufModel:
    """What the Protobuf compatibility checker works on.

    Attributes:
        file: the schema's FileDescriptorProto, normalized (fully qualified type names, no source info).
        files: every file it imports, directly or not, by import path (references and well-known files).
        origins: for each imported file, the (subject, version) it was registered as; None for well-known
            files.
    """

    file: descriptor_pb2.FileDescriptorProto
    files: dict[str, descriptor_pb2.FileDescriptorProto] = field(default_factory=dict)
    origins: dict[str, tuple[str, int] | None] = field(default_factory=dict)

    def serialized(self) -> str:
        """The schema as base64 of its serialized FileDescriptorProto (Confluent's `format=serialized`)."""
        return base64.standard_b64encode(self.file.SerializeToString(deterministic=True)).decode("ascii")


def parse_protobuf(
    text: str, references: Sequence[SchemaReference] = (), resolve: ReferenceResolver | None = None
) -> ParsedSchema:
    """Validate `text` as a Protobuf schema (resolving its references through `resolve`).

    Args:
        text: .proto text, or the base64 of a serialized FileDescriptorProto.
        references: Confluent references (import path -> subject/version).
        resolve: finds a referenced version's text and its own references.

    Returns:
        The parsed schema (`model` is a `ProtobufModel`; `text` the .proto text to store and serve).

    Raises:
        InvalidSchemaError: not a valid schema, an import no reference provides, or a bad reference.
    """
    if not text.strip():
        raise InvalidSchemaError("the schema is empty")
    refs = tuple(references)
    files: dict[str, descriptor_pb2.FileDescriptorProto] = {}
    sources: dict[str, str] = {}
    origins: dict[str, tuple[str, int] | None] = {}
    if refs:
        if resolve is None:
            raise InvalidSchemaError("the schema has references but none can be resolved here")
        for ref, ref_text in walk_references(refs, resolve):
            _check_import_path(ref.name)
            what = f"referenced schema {ref.name!r} ({ref.subject!r} v{ref.version})"
            files[ref.name], source = _descriptor(ref_text, ref.name, sources, what)
            if source is not None:
                sources[ref.name] = source
            origins[ref.name] = (ref.subject, ref.version)
    main, _ = _descriptor(text, MAIN_FILE, sources, "the schema")
    built, pool = _build_in_pool(main, files, origins)
    canonical = text_format.MessageToString(_normalized(built.file), as_utf8=True, print_unknown_fields=True)
    stored = text.strip() if not _looks_base64(text) else _printed_or_base64(text, built, pool, sources)
    return ParsedSchema(
        stored, canonical, refs, fingerprint(SCHEMA_TYPE, canonical, refs), built, SCHEMA_TYPE
    )


def _check_import_path(name: str) -> None:
    if not _IMPORT_PATH.fullmatch(name) or ".." in name.split("/") or name == MAIN_FILE:
        raise InvalidSchemaError(
            f"reference name {name!r} is not an import path: use the path the schema imports, e.g. "
            "'common/address.proto' (letters, digits, '_', '-', '.', separated by '/')"
        )


def _looks_base64(text: str) -> bool:
    stripped = text.strip()
    return len(stripped) % 4 == 0 and _BASE64.fullmatch(stripped) is not None


def _descriptor(
    text: str, name: str, sources: Mapping[str, str], what: str
) -> tuple[descriptor_pb2.FileDescriptorProto, str | None]:
    """(The FileDescriptorProto of `text` named `name`, .proto text that declares the same types).

    The returned text is what later schemas that import `name` are compiled against (None when a
    descriptor cannot be printed: then only descriptors, not .proto text, can import it).
    """
    if _looks_base64(text):
        try:
            raw = base64.b64decode(text.strip(), validate=True)
            file = descriptor_pb2.FileDescriptorProto.FromString(raw)
        except (binascii.Error, DecodeError) as exc:
            raise InvalidSchemaError(
                f"{what} is neither .proto text nor the base64 of a serialized FileDescriptorProto: {exc}"
            ) from None
        file.ClearField("source_code_info")
        _check_strings(file, what)
        file.name = name
        try:
            return file, to_proto_text(file)
        except Exception:  # not validated yet: whatever the printer trips on, the pool reports below
            return file, None
    file = compile_proto(text, name, sources, what)
    return file, text


def _check_strings(message: Any, what: str) -> None:
    """Refuse a descriptor whose names are not UTF-8 (the runtime hands such strings out as bytes)."""
    for field_descriptor, value in message.ListFields():
        values = value if field_descriptor.is_repeated else [value]
        if field_descriptor.type == field_descriptor.TYPE_STRING:
            if any(not isinstance(v, str) for v in values):
                raise InvalidSchemaError(
                    f"{what} is a FileDescriptorProto whose {field_descriptor.name!r} is not UTF-8 text"
                )
        elif field_descriptor.type == field_descriptor.TYPE_MESSAGE:
            for item in values:
                _check_strings(item, what)


def compile_proto(
    text: str, name: str, sources: Mapping[str, str], what: str
) -> descriptor_pb2.FileDescriptorProto:
    """Compile .proto `text` with protoc; `sources` are the files it may import (by import path).

    Raises:
        InvalidSchemaError: protoc's errors, each with its line and column.
    """
    files = {**_confluent_sources(), **sources} if "confluent/" in text else dict(sources)
    with tempfile.TemporaryDirectory(prefix="freight-proto-") as tmp:
        root = Path(tmp)
        for path, source in {**files, name: text}.items():
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                target.write_bytes(source.encode("utf-8"))
            except UnicodeEncodeError as exc:
                raise InvalidSchemaError(f"{what} is not valid UTF-8 text: {exc.reason}") from None
        out = root / "freight-descriptor-set.pb"
        include = [f"-I{root}".encode(), *(f"-I{p}".encode() for p in _include_roots())]
        _protoc_compiler = _protoc()
        with _PROTOC_LOCK:
            try:
                _protoc_compiler.get_protos(name.encode(), [str(root).encode(), *_include_bytes()])
            except _protoc_compiler.ProtocErrors as exc:
                raise InvalidSchemaError(f"{what} is not valid .proto text: {_protoc_errors(exc)}") from None
            code = _protoc_compiler.run_main(
                [b"protoc", *include, f"--descriptor_set_out={out}".encode(), name.encode()]
            )
        if code != 0 or not out.exists():
            raise InvalidSchemaError(f"{what} is not valid .proto text (protoc exit status {code})")
        found = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    file: descriptor_pb2.FileDescriptorProto = found.file[-1]
    return file


def _protoc_errors(exc: _protoc_compiler.ProtocErrors) -> str:
    messages = []
    for error in exc.errors()[:10]:
        message = (
            error.message.decode(errors="replace") if isinstance(error.message, bytes) else error.message
        )
        if error.line >= 0:
            messages.append(f"line {error.line + 1}, column {error.column + 1}: {message}")
        else:
            filename = (
                error.filename.decode(errors="replace")
                if isinstance(error.filename, bytes)
                else error.filename
            )
            messages.append(f"{filename}: {message}")
    if any("File not found" in m for m in messages):
        messages.append(
            "an import other than google/protobuf/*, google/type/* and confluent/* needs a reference "
            '{"name": "<import path>", "subject": ..., "version": ...} to a registered schema'
        )
    return "; ".join(messages)


def _protoc() -> Any:
    """grpcio-tools' compiler, imported on first use only: its native library cannot share a process
    with NIXL's (the tensor store's transfer engine), so importing the registry must not load it."""
    from grpc_tools import _protoc_compiler

    return _protoc_compiler


@lru_cache(maxsize=1)
def _include_roots() -> tuple[str, ...]:
    """protoc's include directories for the well-known files: grpcio-tools' google/protobuf, and the
    google/type files of googleapis-common-protos."""
    import grpc_tools

    roots = [str(Path(grpc_tools.__file__).parent / "_proto")]
    spec = importlib.util.find_spec("google.type")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            roots.append(str(Path(location).parent.parent))
    return tuple(roots)


def _include_bytes() -> list[bytes]:
    return [r.encode() for r in _include_roots()]


@lru_cache(maxsize=256)
def _builtin(name: str) -> descriptor_pb2.FileDescriptorProto | None:
    """The descriptor of a well-known file (compiled once from the .proto files the packages ship)."""
    if not name.startswith(BUILTIN_PREFIXES) or not _IMPORT_PATH.fullmatch(name):
        return None
    if name.startswith("confluent/"):
        return _confluent_files().get(name)
    if not any((Path(root) / name).is_file() for root in _include_roots()):
        return None  # not shipped: asking protoc would only print its complaint to stderr
    with tempfile.TemporaryDirectory(prefix="freight-proto-") as tmp:
        out = Path(tmp) / "set.pb"
        include = [f"-I{p}".encode() for p in _include_roots()]
        _protoc_compiler = _protoc()
        with _PROTOC_LOCK:
            code = _protoc_compiler.run_main(
                [
                    b"protoc",
                    *include,
                    b"--include_imports",
                    f"--descriptor_set_out={out}".encode(),
                    name.encode(),
                ]
            )
        if code != 0 or not out.exists():
            return None
        found = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    return next((f for f in found.file if f.name == name), None)


@lru_cache(maxsize=1)
def _confluent_files() -> dict[str, descriptor_pb2.FileDescriptorProto]:
    """confluent/*.proto by import path, from the descriptors confluent-kafka's modules carry."""
    found: dict[str, descriptor_pb2.FileDescriptorProto] = {}
    for module_name in _CONFLUENT_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:  # an older confluent-kafka without this file
            continue
        file = descriptor_pb2.FileDescriptorProto.FromString(module.DESCRIPTOR.serialized_pb)
        found[file.name] = file
    return found


@lru_cache(maxsize=1)
def _confluent_sources() -> dict[str, str]:
    """.proto text of the confluent/*.proto files, so that .proto text can import them."""
    out = {}
    for name, file in _confluent_files().items():
        try:
            out[name] = to_proto_text(file)
        except (UnprintableError, KeyError, ValueError):
            continue
    return out


def _build(
    main: descriptor_pb2.FileDescriptorProto,
    files: dict[str, descriptor_pb2.FileDescriptorProto],
    origins: dict[str, tuple[str, int] | None],
) -> ProtobufModel:
    """Build `main` and its imports in a fresh DescriptorPool (which checks every name resolves)."""
    return _build_in_pool(main, files, origins)[0]


def _build_in_pool(
    main: descriptor_pb2.FileDescriptorProto,
    files: dict[str, descriptor_pb2.FileDescriptorProto],
    origins: dict[str, tuple[str, int] | None],
) -> tuple[ProtobufModel, Any]:
    """`_build`, also returning the DescriptorPool (it knows the custom options the files define)."""
    pool = descriptor_pool.DescriptorPool()
    added: dict[str, descriptor_pb2.FileDescriptorProto] = {}
    all_origins = dict(origins)

    def add(file: descriptor_pb2.FileDescriptorProto, chain: tuple[str, ...]) -> None:
        for dependency in file.dependency:
            if dependency in added:
                continue
            if dependency in chain:
                raise InvalidSchemaError(f"import cycle: {' -> '.join([*chain, dependency])}")
            found = files.get(dependency)
            if found is None:
                found = _builtin(dependency)
                all_origins[dependency] = None
            if found is None:
                raise InvalidSchemaError(
                    f"{_who(file.name)} imports {dependency!r}, which is neither a reference nor a "
                    f'well-known file: register it and add the reference {{"name": {dependency!r}, '
                    '"subject": ..., "version": ...}'
                )
            add(found, (*chain, dependency))
        try:
            built = pool.AddSerializedFile(file.SerializeToString())
        except (TypeError, ValueError) as exc:
            raise InvalidSchemaError(f"{_who(file.name)} is not a valid Protobuf schema: {exc}") from None
        normalized = descriptor_pb2.FileDescriptorProto()
        built.CopyToProto(normalized)
        added[file.name] = normalized

    add(main, (main.name,))
    model_file = added.pop(main.name)
    origins_used = {k: v for k, v in all_origins.items() if k in added}
    return ProtobufModel(model_file, added, origins_used), pool


def _who(name: str) -> str:
    return "the schema" if name == MAIN_FILE else f"{name!r}"


def _normalized(file: descriptor_pb2.FileDescriptorProto) -> descriptor_pb2.FileDescriptorProto:
    """A copy without what does not change the schema: file name, source info, default JSON names, and
    the order of imports."""
    out = descriptor_pb2.FileDescriptorProto()
    out.CopyFrom(file)
    out.ClearField("name")
    out.ClearField("source_code_info")
    public = {file.dependency[i] for i in file.public_dependency}
    weak = {file.dependency[i] for i in file.weak_dependency}
    ordered = sorted(file.dependency)
    out.ClearField("dependency")
    out.ClearField("public_dependency")
    out.ClearField("weak_dependency")
    out.dependency.extend(ordered)
    out.public_dependency.extend(i for i, d in enumerate(ordered) if d in public)
    out.weak_dependency.extend(i for i, d in enumerate(ordered) if d in weak)
    for message in out.message_type:
        _clear_json_names(message)
    for extension in out.extension:
        _clear_json_name(extension)
    return out


def _clear_json_names(message: descriptor_pb2.DescriptorProto) -> None:
    for item in (*message.field, *message.extension):
        _clear_json_name(item)
    for nested in message.nested_type:
        _clear_json_names(nested)


def _clear_json_name(item: descriptor_pb2.FieldDescriptorProto) -> None:
    if item.json_name == default_json_name(item.name):
        item.ClearField("json_name")


def _with_known_options(model: ProtobufModel, pool: Any) -> Any:
    """`model.file` as a message of `pool`'s own descriptor.proto, if the schema imports it: then custom
    options defined in its imports are known extensions the printer can name, not unknown fields."""
    try:
        file_type = pool.FindMessageTypeByName("google.protobuf.FileDescriptorProto")
    except KeyError:
        return model.file
    return message_factory.GetMessageClass(file_type).FromString(model.file.SerializeToString())


def _printed_or_base64(text: str, model: ProtobufModel, pool: Any, sources: Mapping[str, str]) -> str:
    """The .proto text of a schema registered as a descriptor, if it compiles back to the same schema;
    otherwise the base64 as registered."""
    try:
        printed = to_proto_text(_with_known_options(model, pool))
        again = _build(compile_proto(printed, MAIN_FILE, sources, "the printed schema"), model.files, {})
    except (UnprintableError, InvalidSchemaError, LookupError, ValueError, TypeError):
        return text.strip()
    same = _normalized(again.file) == _normalized(model.file)
    return printed if same else text.strip()
