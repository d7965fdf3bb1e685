"""Plan writes: from the state and a request, the records to commit and the answer to give - or an error.

Pure logic over `RegistryState` (no Kafka, no HTTP), shared by the service and the unit tests. The rules
follow Confluent Schema Registry: ids are global and content-addressed (the same schema in another subject
keeps its id), versions count up per subject, soft deletes keep ids resolvable, hard deletes need a soft
delete first and are refused while other schemas reference the version, IMPORT mode takes explicit ids.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from freight.registry import errors
from freight.registry.avro_schema import (
    InvalidSchemaError,
    ParsedSchema,
    ReferenceResolver,
    SchemaReference,
    parse_avro,
)
from freight.registry.compat import CompatibilityLevel, PreviousSchema, check
from freight.registry.contracts import validate_contract
from freight.registry.json_schema import parse_json_schema
from freight.registry.models import RegisterSchemaRequest
from freight.registry.protobuf_schema import parse_protobuf
from freight.registry.records import (
    ConfigValue,
    IdFloorValue,
    KeyType,
    ModeValue,
    Record,
    RecordKey,
    ReferenceValue,
    SchemaValue,
)
from freight.registry.state import Mode, RegistryState, SchemaContent, VersionEntry

log = logging.getLogger(__name__)

SCHEMA_TYPES = ["AVRO", "JSON", "PROTOBUF"]
MAX_INT = 2**31 - 1
MAX_SUBJECT_LENGTH = 1024


@dataclass
class Plan:
    """What a write commits (possibly nothing) and what it answers."""

    result: Any
    records: list[Record] = field(default_factory=list)


def parse_schema(
    schema_type: str, text: str, refs: Sequence[SchemaReference], resolve: ReferenceResolver
) -> ParsedSchema:
    """Parse a schema of `schema_type` (one of SCHEMA_TYPES) or raise InvalidSchemaError."""
    if schema_type == "JSON":
        return parse_json_schema(text, refs, resolve)
    if schema_type == "PROTOBUF":
        return parse_protobuf(text, refs, resolve)
    return parse_avro(text, refs, resolve)


def parse_version(raw: str) -> int | None:
    """A version path segment: a number in [1, 2^31-1], or 'latest' / -1 (returned as None)."""
    text = raw.strip()
    if text.lower() == "latest" or text == "-1":
        return None
    try:
        number = int(text)
    except ValueError:
        raise errors.invalid_version(raw) from None
    if not 1 <= number <= MAX_INT:
        raise errors.invalid_version(raw)
    return number


def check_subject(subject: str) -> None:
    """Subjects are non-empty, at most 1024 characters, without control characters (42208 otherwise)."""
    if not subject:
        raise errors.invalid_subject(subject, "it is empty")
    if len(subject) > MAX_SUBJECT_LENGTH:
        raise errors.invalid_subject(subject[:40] + "...", f"longer than {MAX_SUBJECT_LENGTH} characters")
    if any(unicodedata.category(ch) == "Cc" for ch in subject):
        raise errors.invalid_subject(subject, "it contains control characters")


def version_body(entry: VersionEntry, content: SchemaContent) -> dict[str, Any]:
    """The JSON of one subject version, as Confluent returns it (schemaType omitted for AVRO)."""
    body: dict[str, Any] = {
        "subject": entry.subject,
        "version": entry.version,
        "id": entry.schema_id,
        "schema": content.text,
    }
    return _with_type_and_refs(body, content)


def schema_body(content: SchemaContent) -> dict[str, Any]:
    return _with_type_and_refs({"schema": content.text}, content)


def _with_type_and_refs(body: dict[str, Any], content: SchemaContent) -> dict[str, Any]:
    if content.schema_type != "AVRO":
        body["schemaType"] = content.schema_type
    if content.references:
        body["references"] = [r.to_json() for r in content.references]
    if content.contract.metadata is not None:
        body["metadata"] = content.contract.metadata
    if content.contract.rule_set is not None:
        body["ruleSet"] = content.contract.rule_set
    return body


def _schema_value(entry_subject: str, version: int, content: SchemaContent, deleted: bool) -> SchemaValue:
    return SchemaValue(
        subject=entry_subject,
        version=version,
        id=content.schema_id,
        schema_type=content.schema_type,
        schema_text=content.text,
        references=[
            ReferenceValue(name=r.name, subject=r.subject, version=r.version) for r in content.references
        ],
        metadata=content.contract.metadata,
        rule_set=content.contract.rule_set,
        deleted=deleted,
        fingerprint=content.fingerprint,
    )


def _read_only(subject: str) -> errors.RegistryError:
    return errors.operation_not_permitted(f"Subject {subject} is in read-only mode; change it with PUT /mode")


class Planner:
    """Validates requests against the state and plans the records of each write."""

    def __init__(self, max_schema_bytes: int) -> None:
        self.max_schema_bytes = max_schema_bytes
        self._parsed: dict[int, ParsedSchema] = {}

    # ------------------------------------------------------------------------------------------ helpers

    @staticmethod
    def resolver(state: RegistryState) -> ReferenceResolver:
        """Resolve references to versions (soft-deleted ones too: schemas that use them must still parse)."""

        def resolve(subject: str, version: int) -> tuple[str, tuple[SchemaReference, ...]] | None:
            entry = state.version(subject, version)
            content = None if entry is None else state.content(entry.schema_id)
            return None if content is None else (content.text, content.references)

        return resolve

    def parse_request(self, state: RegistryState, body: RegisterSchemaRequest) -> ParsedSchema:
        """Validate the schema of a request (type, size, data contracts, Avro) or raise 42201 / 42209."""
        schema_type = (body.schema_type or "AVRO").strip().upper()
        if schema_type not in SCHEMA_TYPES:
            raise errors.invalid_schema(
                f"schemaType {body.schema_type!r} is not supported; this registry supports "
                f"{', '.join(SCHEMA_TYPES)}"
            )
        if body.schema_text is None or not body.schema_text.strip():
            raise errors.invalid_schema('the request has no schema; send {"schema": "<schema text>"}')
        size = len(body.schema_text.encode())
        if size > self.max_schema_bytes:
            raise errors.schema_too_large(size, self.max_schema_bytes)
        try:
            contract = validate_contract(body.metadata, body.rule_set)
        except ValueError as exc:
            raise errors.invalid_schema(str(exc)) from None
        refs = tuple(SchemaReference(r.name, r.subject, r.version) for r in body.references or [])
        for ref in refs:
            if not 1 <= ref.version <= MAX_INT:
                raise errors.invalid_schema(f"reference {ref.name!r} has invalid version {ref.version}")
        try:
            parsed = parse_schema(schema_type, body.schema_text, refs, self.resolver(state))
        except InvalidSchemaError as exc:
            raise errors.invalid_schema(str(exc)) from None
        return replace(parsed, contract=contract)

    def parsed_by_id(self, state: RegistryState, schema_id: int) -> ParsedSchema | None:
        """The parsed form of a stored schema, cached (an id's content never changes)."""
        content = state.content(schema_id)
        if content is None:
            return None
        cached = self._parsed.get(schema_id)
        if cached is not None and cached.identity == content.fingerprint:
            return cached
        try:
            parsed = parse_schema(content.schema_type, content.text, content.references, self.resolver(state))
        except InvalidSchemaError as exc:
            log.error("stored schema %d no longer parses: %s", schema_id, exc)
            return None
        parsed = replace(parsed, contract=content.contract)
        self._parsed[schema_id] = parsed
        return parsed

    def previous(self, state: RegistryState, entries: Sequence[VersionEntry]) -> list[PreviousSchema]:
        out = []
        for entry in entries:
            parsed = self.parsed_by_id(state, entry.schema_id)
            if parsed is not None:
                out.append(PreviousSchema(entry.version, parsed.model, parsed.schema_type))
        return out

    @staticmethod
    def content(state: RegistryState, entry: VersionEntry) -> SchemaContent:
        found = state.content(entry.schema_id)
        if found is None:  # an index bug, never a client error
            raise errors.store_error(
                f"schema {entry.schema_id} of {entry.subject} v{entry.version} is missing"
            )
        return found

    @staticmethod
    def resolve(state: RegistryState, subject: str, raw_version: str, *, deleted: bool) -> VersionEntry:
        """The version a path names ('latest' = newest live one), or 40401 / 40402 / 42202."""
        number = parse_version(raw_version)
        if number is None:
            entry = state.latest(subject, deleted=deleted)
        else:
            entry = state.version(subject, number)
            if entry is not None and entry.deleted and not deleted:
                entry = None
        if entry is None:
            if not state.has_subject(subject, deleted=deleted):
                raise errors.subject_not_found(subject)
            raise errors.version_not_found(subject, raw_version)
        return entry

    @staticmethod
    def inherit_contract(state: RegistryState, subject: str, parsed: ParsedSchema) -> ParsedSchema:
        """Like Confluent: a registration without metadata and ruleSet keeps those of the latest version."""
        if not parsed.contract.empty:
            return parsed
        latest = state.latest(subject)
        content = None if latest is None else state.content(latest.schema_id)
        return parsed if content is None else replace(parsed, contract=content.contract)

    @staticmethod
    def existing_version(state: RegistryState, subject: str, parsed: ParsedSchema) -> dict[str, Any] | None:
        """{"id", "version"} of the live version of `subject` holding this schema (and contract), if any."""
        parsed = Planner.inherit_contract(state, subject, parsed)
        for entry in reversed(state.subject_versions(subject)):
            content = state.content(entry.schema_id)
            if content is not None and content.fingerprint == parsed.identity:
                return {"id": entry.schema_id, "version": entry.version}
        return None

    @staticmethod
    def _id_floor(state: RegistryState) -> list[Record]:
        """An ID_FLOOR record when a hard delete could otherwise lower the highest id on replay."""
        top = state.max_id()
        if top > state.id_floor:
            return [Record(RecordKey(KeyType.ID_FLOOR), IdFloorValue(id=top))]
        return []

    @staticmethod
    def _settings_tombstones(state: RegistryState, subject: str) -> list[Record]:
        out = []
        if state.config(subject) is not None:
            out.append(Record(RecordKey(KeyType.CONFIG, subject), None))
        if state.mode(subject) is not None:
            out.append(Record(RecordKey(KeyType.MODE, subject), None))
        return out

    # ------------------------------------------------------------------------------------------ plans

    def register(self, state: RegistryState, subject: str, body: RegisterSchemaRequest) -> Plan:
        """POST /subjects/{subject}/versions."""
        check_subject(subject)
        mode = state.effective_mode(subject)
        if mode.read_only:
            raise _read_only(subject)
        if body.id is not None and mode is not Mode.IMPORT:
            raise errors.operation_not_permitted(
                f"Subject {subject} is not in import mode: registering with an explicit id needs mode IMPORT"
            )
        if body.id is None and mode is Mode.IMPORT:
            raise errors.operation_not_permitted(
                f"Subject {subject} is in import mode: give the schema's id (and version) to register it"
            )
        parsed = self.parse_request(state, body)
        if mode is not Mode.IMPORT:
            parsed = self.inherit_contract(state, subject, parsed)
        if not body.version:
            existing = self.existing_version(state, subject, parsed)
            if existing is not None and (body.id is None or body.id == existing["id"]):
                return Plan(existing)
        if body.id is not None:
            if not 1 <= body.id <= MAX_INT:
                raise errors.invalid_schema(f"id {body.id} is out of range [1, 2^31-1]")
            taken = state.content(body.id)
            if taken is not None and taken.fingerprint != parsed.identity:
                raise errors.id_does_not_match(body.id)
            schema_id = body.id
        else:
            level = state.effective_config(subject)
            messages = check(
                level, parsed.model, self.previous(state, state.subject_versions(subject)), parsed.schema_type
            )
            if messages:
                raise errors.incompatible_schema(subject, messages)
            known = state.id_for(parsed.identity)
            schema_id = known if known is not None else state.max_id() + 1
        version = self._version(state, subject, body, mode)
        # An id always names the text it was first registered with.
        content = state.content(schema_id) or SchemaContent(
            schema_id, parsed.schema_type, parsed.text, parsed.references, parsed.identity, parsed.contract
        )
        records = [
            Record(
                RecordKey(KeyType.SCHEMA, subject, version), _schema_value(subject, version, content, False)
            )
        ]
        for old in state.subject_versions(subject, deleted=True):
            # Like Confluent: a soft-deleted older version of the same schema gives way to the new one.
            if old.deleted and old.schema_id == schema_id and old.version < version:
                if not state.referencing_ids(subject, old.version, deleted=True):
                    records.append(Record(RecordKey(KeyType.SCHEMA, subject, old.version), None))
        return Plan({"id": schema_id, "version": version}, records)

    @staticmethod
    def _version(state: RegistryState, subject: str, body: RegisterSchemaRequest, mode: Mode) -> int:
        following = state.next_version(subject)
        if not body.version:
            return following
        if not 1 <= body.version <= MAX_INT:
            raise errors.invalid_version(str(body.version))
        if mode is Mode.IMPORT:
            if state.version(subject, body.version) is not None:
                raise errors.invalid_schema(f"subject {subject!r} already has version {body.version}")
            return body.version
        if body.version != following:
            raise errors.invalid_schema(
                f"version {body.version} is not one more than the latest version of {subject!r} "
                f"({following - 1})"
            )
        return following

    def delete_version(self, state: RegistryState, subject: str, raw: str, *, permanent: bool) -> Plan:
        """DELETE /subjects/{subject}/versions/{version}: soft, then (permanent=true) hard."""
        number = parse_version(raw)
        if state.effective_mode(subject).read_only:
            raise _read_only(subject)
        if not state.has_subject(subject, deleted=True):
            raise errors.subject_not_found(subject)
        entry = state.latest(subject, deleted=permanent) if number is None else state.version(subject, number)
        if entry is None:
            raise errors.version_not_found(subject, raw)
        if not permanent and entry.deleted:
            raise errors.version_soft_deleted(subject, entry.version)
        if permanent and not entry.deleted:
            raise errors.version_not_soft_deleted(subject, entry.version)
        referrers = state.referencing_ids(subject, entry.version, deleted=permanent)
        if referrers:
            raise errors.reference_exists(subject, entry.version, referrers)
        key = RecordKey(KeyType.SCHEMA, subject, entry.version)
        if not permanent:
            return Plan(
                entry.version,
                [Record(key, _schema_value(subject, entry.version, self.content(state, entry), True))],
            )
        records = [*self._id_floor(state), Record(key, None)]
        if len(state.subject_versions(subject, deleted=True)) == 1:
            records += self._settings_tombstones(state, subject)
        return Plan(entry.version, records)

    def delete_subject(self, state: RegistryState, subject: str, *, permanent: bool) -> Plan:
        """DELETE /subjects/{subject}: soft-delete every live version, or (permanent=true) remove them all."""
        if state.effective_mode(subject).read_only:
            raise _read_only(subject)
        if not state.has_subject(subject, deleted=True):
            raise errors.subject_not_found(subject)
        if not permanent and not state.has_subject(subject):
            raise errors.subject_soft_deleted(subject)
        entries = state.subject_versions(subject, deleted=permanent)
        if permanent and any(not e.deleted for e in entries):
            raise errors.subject_not_soft_deleted(subject)
        for entry in entries:
            outside = [
                i
                for i in state.referencing_ids(subject, entry.version, deleted=permanent)
                if any(u.subject != subject for u in state.users_of(i, deleted=True))
            ]
            if outside:
                raise errors.reference_exists(subject, entry.version, outside)
        versions = [e.version for e in entries]
        if not permanent:
            records = [
                Record(
                    RecordKey(KeyType.SCHEMA, subject, e.version),
                    _schema_value(subject, e.version, self.content(state, e), True),
                )
                for e in entries
            ]
            return Plan(versions, records)
        records = self._id_floor(state)
        records += [Record(RecordKey(KeyType.SCHEMA, subject, v), None) for v in reversed(versions)]
        records += self._settings_tombstones(state, subject)
        return Plan(versions, records)

    @staticmethod
    def set_config(
        state: RegistryState,
        subject: str | None,
        level: CompatibilityLevel | None,
        normalize: bool | None = None,
    ) -> Plan:
        """PUT /config and /config/{subject}: a field left out keeps its current value at that level."""
        if subject is not None:
            check_subject(subject)
            if state.effective_mode(subject).read_only:
                raise _read_only(subject)
        new_level = level or state.config(subject)
        new_normalize = state.normalize_setting(subject) if normalize is None else normalize
        answer: dict[str, Any] = {}
        if level is not None:
            answer["compatibility"] = level.value
        if normalize is not None:
            answer["normalize"] = normalize
        if new_level is state.config(subject) and new_normalize == state.normalize_setting(subject):
            return Plan(answer)
        value = ConfigValue(
            compatibility_level=None if new_level is None else new_level.value, normalize=new_normalize
        )
        return Plan(answer, [Record(RecordKey(KeyType.CONFIG, subject), value)])

    @staticmethod
    def delete_config(state: RegistryState, subject: str | None) -> Plan:
        """DELETE /config (back to the default) and /config/{subject} (back to the global level)."""
        current = state.config(subject)
        configured = current is not None or state.normalize_setting(subject) is not None
        if subject is None:
            old = state.effective_config(None)
        elif not configured:
            raise errors.subject_not_found(subject)
        else:
            old = current or state.effective_config(None)
            if state.effective_mode(subject).read_only:
                raise _read_only(subject)
        records = [Record(RecordKey(KeyType.CONFIG, subject), None)] if configured else []
        return Plan({"compatibilityLevel": old.value}, records)

    @staticmethod
    def set_mode(state: RegistryState, subject: str | None, mode: Mode, *, force: bool) -> Plan:
        """PUT /mode and /mode/{subject}; IMPORT needs an empty registry (or subject) unless force=true."""
        if subject is not None:
            check_subject(subject)
        if mode is Mode.IMPORT and state.effective_mode(subject) is not Mode.IMPORT and not force:
            taken = state.has_subject(subject) if subject is not None else bool(state.subjects())
            if taken:
                raise errors.operation_not_permitted(
                    "Cannot import since found existing subjects; delete them or pass force=true"
                )
        record = Record(RecordKey(KeyType.MODE, subject), ModeValue(mode=mode.value))
        return Plan({"mode": mode.value}, [] if state.mode(subject) is mode else [record])

    @staticmethod
    def delete_mode(state: RegistryState, subject: str | None) -> Plan:
        """DELETE /mode (back to READWRITE) and /mode/{subject} (back to the global mode)."""
        current = state.mode(subject)
        if subject is None:
            old = state.effective_mode(None)
        elif current is None:
            raise errors.subject_mode_not_configured(subject)
        else:
            old = current
        records = [] if current is None else [Record(RecordKey(KeyType.MODE, subject), None)]
        return Plan({"mode": old.value}, records)
