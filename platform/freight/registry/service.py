"""The registry's operations, independent of HTTP: reads from the replayed state, writes through the log.

Reads answer from this instance's state. A write is planned against the state under the write lock and then
committed by `LogWriter`; it returns only after this instance has read its own record back, so a client sees
its write on the instance it wrote to. Before the first write (and after being fenced) the instance takes
over the writer role: it fences the previous writer, commits a WRITER record announcing its URL, and reads
up to that record, which makes its state complete. Plans are computed from that complete state, so ids and
versions are never given twice; a plan whose commit is fenced is recomputed after taking over again.

Every operation raises `RegistryHTTPError` with Confluent's status and error code for a bad request.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import unicodedata
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from freight.config import FreightSettings
from freight.registry import errors
from freight.registry.avro_schema import (
    InvalidSchemaError,
    ParsedSchema,
    ReferenceResolver,
    SchemaReference,
    parse_avro,
)
from freight.registry.compat import CompatibilityLevel, PreviousSchema, check
from freight.registry.errors import RegistryHTTPError, StoreUnavailableError, WriterFencedError
from freight.registry.log import LogReader, LogWriter, StateStore, ensure_topic, log_end_offset
from freight.registry.models import RegisterSchemaRequest
from freight.registry.options import RegistryOptions
from freight.registry.records import (
    ConfigValue,
    IdFloorValue,
    KeyType,
    ModeValue,
    Record,
    RecordKey,
    ReferenceValue,
    SchemaValue,
    WriterValue,
)
from freight.registry.state import Mode, RegistryState, SchemaContent, VersionEntry

log = logging.getLogger(__name__)

SCHEMA_TYPES = ["AVRO"]
MAX_VERSION = 2**31 - 1
MAX_SUBJECT_LENGTH = 1024
WRITE_ATTEMPTS = 4


@dataclass
class Plan:
    """What a write commits (possibly nothing) and what it answers."""

    result: Any
    records: list[Record] = field(default_factory=list)


@dataclass(frozen=True)
class WriteResult:
    result: Any
    offset: int | None  # offset of the last committed record; None if nothing was written


def parse_version(raw: str) -> int | None:
    """A version path segment: a number in [1, 2^31-1], or 'latest' / -1 (returned as None)."""
    text = raw.strip()
    if text.lower() == "latest" or text == "-1":
        return None
    try:
        number = int(text)
    except ValueError:
        raise errors.invalid_version(raw) from None
    if not 1 <= number <= MAX_VERSION:
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
    return body


def _page(items: list[Any], offset: int, limit: int) -> list[Any]:
    start = max(offset, 0)
    return items[start:] if limit < 0 else items[start : start + limit]


class RegistryService:
    """One registry instance: the state replayed from the log, the reader, and the fenced writer."""

    def __init__(self, options: RegistryOptions, settings: FreightSettings) -> None:
        self.options = options
        self.settings = settings
        self.instance = uuid.uuid4().hex[:16]
        self.store = StateStore()
        self.reader = LogReader(settings, options.topic, self.store, self.instance)
        self.writer = LogWriter(settings, options.topic, timeout=options.write_timeout_s)
        self._write_lock = threading.Lock()
        self._parsed: dict[int, ParsedSchema] = {}
        self._unreachable: dict[str, float] = {}
        self._id_bodies: dict[int, tuple[str, bytes]] = {}

    # ------------------------------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Create/check the topic and replay it up to its current end before serving."""
        ensure_topic(self.settings, self.options.topic)
        end = log_end_offset(self.settings, self.options.topic)
        self.reader.start()
        if not self.store.wait_for(end, self.options.startup_timeout_s):
            raise StoreUnavailableError(
                f"replaying {self.options.topic!r} did not reach offset {end} within "
                f"{self.options.startup_timeout_s:g}s (at {self.store.position}); is the broker healthy?"
            )
        with self.store.read() as state:
            log.info(
                "registry %s replayed %s up to offset %d: %d subjects, %d schemas",
                self.instance,
                self.options.topic,
                self.store.position,
                len(state.versions),
                len(state.contents),
            )

    def stop(self) -> None:
        self.reader.stop()
        self.writer.drop()

    # ------------------------------------------------------------------------------------------ helpers

    def _resolver(self, state: RegistryState) -> ReferenceResolver:
        def resolve(subject: str, version: int) -> tuple[str, tuple[SchemaReference, ...]] | None:
            entry = state.version(subject, version)
            content = None if entry is None else state.content(entry.schema_id)
            return None if content is None else (content.text, content.references)

        return resolve

    def _parse_request(self, state: RegistryState, body: RegisterSchemaRequest) -> ParsedSchema:
        """Validate the schema of a request body (type, size, data contracts, Avro) or raise 42201/42209."""
        schema_type = (body.schema_type or "AVRO").strip().upper()
        if schema_type not in SCHEMA_TYPES:
            raise errors.invalid_schema(
                f"schemaType {body.schema_type!r} is not supported; this registry supports "
                f"{', '.join(SCHEMA_TYPES)} (JSON Schema and Protobuf may follow later)"
            )
        if body.schema_text is None or not body.schema_text.strip():
            raise errors.invalid_schema('the request has no schema; send {"schema": "<Avro schema JSON>"}')
        size = len(body.schema_text.encode())
        if size > self.options.max_schema_bytes:
            raise errors.schema_too_large(size, self.options.max_schema_bytes)
        if body.metadata or body.rule_set:
            raise errors.invalid_schema("schema metadata and rule sets (data contracts) are not supported")
        refs = tuple(SchemaReference(r.name, r.subject, r.version) for r in body.references or [])
        for ref in refs:
            if not 1 <= ref.version <= MAX_VERSION:
                raise errors.invalid_schema(f"reference {ref.name!r} has invalid version {ref.version}")
        try:
            return parse_avro(body.schema_text, refs, self._resolver(state))
        except InvalidSchemaError as exc:
            raise errors.invalid_schema(str(exc)) from None

    def _parsed_by_id(self, state: RegistryState, schema_id: int) -> ParsedSchema | None:
        cached = self._parsed.get(schema_id)
        content = state.content(schema_id)
        if content is None:
            return None
        if cached is not None and cached.fingerprint == content.fingerprint:
            return cached
        try:
            parsed = parse_avro(content.text, content.references, self._resolver(state))
        except InvalidSchemaError as exc:
            log.error("stored schema %d no longer parses: %s", schema_id, exc)
            return None
        self._parsed[schema_id] = parsed
        return parsed

    def _resolve(
        self, state: RegistryState, subject: str, raw_version: str, *, deleted: bool
    ) -> VersionEntry:
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

    def _content(self, state: RegistryState, entry: VersionEntry) -> SchemaContent:
        content = state.content(entry.schema_id)
        if content is None:  # an index bug, never a client error
            raise errors.store_error(
                f"schema {entry.schema_id} of {entry.subject} v{entry.version} is missing"
            )
        return content

    # ------------------------------------------------------------------------------------------ reads

    def list_subjects(
        self,
        *,
        prefix: str = "",
        deleted: bool = False,
        deleted_only: bool = False,
        offset: int = 0,
        limit: int = -1,
    ) -> list[str]:
        with self.store.read() as state:
            return _page(
                state.subjects(deleted=deleted, deleted_only=deleted_only, prefix=prefix), offset, limit
            )

    def list_versions(
        self,
        subject: str,
        *,
        deleted: bool = False,
        deleted_only: bool = False,
        offset: int = 0,
        limit: int = -1,
    ) -> list[int]:
        with self.store.read() as state:
            entries = state.subject_versions(subject, deleted=deleted or deleted_only)
            if not entries:
                raise errors.subject_not_found(subject)
            versions = [e.version for e in entries if e.deleted or not deleted_only]
            return _page(versions, offset, limit)

    def get_version(self, subject: str, version: str, *, deleted: bool = False) -> dict[str, Any]:
        with self.store.read() as state:
            entry = self._resolve(state, subject, version, deleted=deleted)
            return version_body(entry, self._content(state, entry))

    def referenced_by(self, subject: str, version: str, *, deleted: bool = False) -> list[int]:
        with self.store.read() as state:
            entry = self._resolve(state, subject, version, deleted=True)
            return state.referencing_ids(entry.subject, entry.version, deleted=deleted)

    def schema_by_id_json(self, schema_id: int) -> bytes:
        """The JSON body of GET /schemas/ids/{id}, cached per id (ids never change meaning)."""
        with self.store.read() as state:
            content = state.content(schema_id)
            if content is None:
                raise errors.schema_not_found(schema_id)
            cached = self._id_bodies.get(schema_id)
            if cached is not None and cached[0] == content.fingerprint:
                return cached[1]
            raw = json.dumps(schema_body(content), separators=(",", ":"), ensure_ascii=False).encode()
            self._id_bodies[schema_id] = (content.fingerprint, raw)
            return raw

    def schema_text_by_id(self, schema_id: int) -> str:
        with self.store.read() as state:
            content = state.content(schema_id)
            if content is None:
                raise errors.schema_not_found(schema_id)
            return content.text

    def subjects_for_id(self, schema_id: int, *, deleted: bool = False) -> list[str]:
        with self.store.read() as state:
            if state.content(schema_id) is None:
                raise errors.schema_not_found(schema_id)
            return sorted({e.subject for e in state.users_of(schema_id, deleted=deleted)})

    def versions_for_id(self, schema_id: int, *, deleted: bool = False) -> list[dict[str, Any]]:
        with self.store.read() as state:
            if state.content(schema_id) is None:
                raise errors.schema_not_found(schema_id)
            return [
                {"subject": e.subject, "version": e.version}
                for e in state.users_of(schema_id, deleted=deleted)
            ]

    def lookup(self, subject: str, body: RegisterSchemaRequest, *, deleted: bool = False) -> dict[str, Any]:
        """POST /subjects/{subject}: the version of `subject` holding this schema."""
        with self.store.read() as state:
            parsed = self._parse_request(state, body)
            for entry in reversed(state.subject_versions(subject, deleted=deleted)):
                content = self._content(state, entry)
                if content.fingerprint == parsed.fingerprint:
                    return version_body(entry, content)
            if not state.has_subject(subject, deleted=deleted):
                raise errors.subject_not_found(subject)
            raise errors.schema_not_found()

    def find_registered(self, subject: str, body: RegisterSchemaRequest) -> dict[str, Any] | None:
        """The answer to a registration that needs no write (schema live in the subject), else None."""
        with self.store.read() as state:
            mode = state.effective_mode(subject)
            if mode is not Mode.READWRITE or body.id is not None or body.version:
                return None
            try:
                parsed = self._parse_request(state, body)
            except RegistryHTTPError:
                return None
            return self._existing_version(state, subject, parsed)

    def _existing_version(
        self, state: RegistryState, subject: str, parsed: ParsedSchema
    ) -> dict[str, Any] | None:
        for entry in reversed(state.subject_versions(subject)):
            content = state.content(entry.schema_id)
            if content is not None and content.fingerprint == parsed.fingerprint:
                return {"id": entry.schema_id, "version": entry.version}
        return None

    def check_compatibility(
        self, subject: str, version: str | None, body: RegisterSchemaRequest, *, verbose: bool = False
    ) -> dict[str, Any]:
        """POST /compatibility/...: is the schema compatible with one version, or with the subject."""
        with self.store.read() as state:
            if version is None:
                targets = state.subject_versions(subject)
            else:
                number = parse_version(version)
                target = state.latest(subject) if number is None else state.version(subject, number)
                if target is not None and target.deleted:
                    target = None
                if target is None and number is not None:
                    if not state.has_subject(subject):
                        raise errors.subject_not_found(subject)
                    raise errors.version_not_found(subject, version)
                targets = [] if target is None else [target]
            try:
                parsed = self._parse_request(state, body)
            except RegistryHTTPError as exc:
                if verbose and exc.error_code == 42201:
                    return {"is_compatible": False, "messages": [exc.message]}
                raise
            level = state.effective_config(subject)
            messages = check(level, parsed.avro, self._previous(state, targets))
        result: dict[str, Any] = {"is_compatible": not messages}
        if verbose:
            result["messages"] = messages
        return result

    def _previous(self, state: RegistryState, entries: Sequence[VersionEntry]) -> list[PreviousSchema]:
        out = []
        for entry in entries:
            parsed = self._parsed_by_id(state, entry.schema_id)
            if parsed is not None:
                out.append(PreviousSchema(entry.version, parsed.avro))
        return out

    def get_config(self, subject: str | None, *, default_to_global: bool = False) -> dict[str, Any]:
        with self.store.read() as state:
            if subject is None:
                return {"compatibilityLevel": state.effective_config(None).value}
            level = state.config(subject)
            if level is None and default_to_global:
                level = state.effective_config(None)
            if level is None:
                raise errors.subject_compatibility_not_configured(subject)
            return {"compatibilityLevel": level.value}

    def get_mode(self, subject: str | None, *, default_to_global: bool = False) -> dict[str, Any]:
        with self.store.read() as state:
            if subject is None:
                return {"mode": state.effective_mode(None).value}
            mode = state.mode(subject)
            if mode is None and default_to_global:
                mode = state.effective_mode(None)
            if mode is None:
                raise errors.subject_mode_not_configured(subject)
            return {"mode": mode.value}

    def status(self) -> dict[str, Any]:
        with self.store.read() as state:
            writer = state.writer
            return {
                "instance": self.instance,
                "url": self.options.url,
                "writer": None if writer is None else writer.model_dump(),
                "writing": self.writer.active,
                "log_position": self.store.position,
                "subjects": len(state.subjects()),
                "schemas": len(state.contents),
                "digest": state.digest(),
                "skipped_records": state.skipped,
            }

    # ------------------------------------------------------------------------------------------ writes

    def forward_target(self) -> str | None:
        """URL of the instance that holds the writer role, if that is another, reachable instance."""
        if self.writer.active:
            return None
        with self.store.read() as state:
            writer = state.writer
        if writer is None or writer.instance == self.instance or writer.url == self.options.url:
            return None
        if self._unreachable.get(writer.url, 0.0) > time.monotonic():
            return None
        return writer.url

    def mark_unreachable(self, url: str, for_s: float = 10.0) -> None:
        """Stop forwarding to `url` for a while; the next write takes the writer role over instead."""
        self._unreachable[url] = time.monotonic() + for_s

    def _execute(self, plan: Callable[[RegistryState], Plan]) -> WriteResult:
        """Plan against complete state and commit; retry after being fenced by another instance."""
        timeout = self.options.write_timeout_s
        deadline = time.monotonic() + timeout
        with self._write_lock:
            for _attempt in range(WRITE_ATTEMPTS):
                try:
                    if not self.writer.active:
                        self._take_over()
                    with self.store.read() as state:
                        planned = plan(state)
                    if not planned.records:
                        return WriteResult(planned.result, None)
                    offset = self.writer.write(planned.records)
                except WriterFencedError as exc:
                    log.info("registry %s was fenced (%s); taking over again", self.instance, exc)
                    continue
                except StoreUnavailableError as exc:
                    raise errors.store_error(str(exc)) from None
                if not self.store.wait_for(offset + 1, max(deadline - time.monotonic(), 0.1)):
                    raise errors.operation_timeout(
                        f"the write at offset {offset} was not read back in {timeout:g}s"
                    )
                return WriteResult(planned.result, offset)
        raise errors.operation_timeout(f"could not hold the writer role for {WRITE_ATTEMPTS} attempts")

    def _take_over(self) -> None:
        self.writer.take_over()
        announce = Record(
            RecordKey(KeyType.WRITER),
            WriterValue(url=self.options.url, instance=self.instance, since_ms=time.time_ns() // 1_000_000),
        )
        offset = self.writer.write([announce])
        if not self.store.wait_for(offset + 1, self.options.write_timeout_s):
            self.writer.drop()
            raise StoreUnavailableError(f"did not read back the writer announcement at offset {offset}")
        log.info("registry %s holds the writer role from offset %d", self.instance, offset)

    def register(self, subject: str, body: RegisterSchemaRequest) -> WriteResult:
        """POST /subjects/{subject}/versions."""
        check_subject(subject)
        return self._execute(lambda state: self._plan_register(state, subject, body))

    def _plan_register(self, state: RegistryState, subject: str, body: RegisterSchemaRequest) -> Plan:
        mode = state.effective_mode(subject)
        if mode.read_only:
            raise errors.operation_not_permitted(f"Subject {subject} is in read-only mode")
        if body.id is not None and mode is not Mode.IMPORT:
            raise errors.operation_not_permitted(
                f"Subject {subject} is not in import mode: registering with an explicit id needs mode IMPORT"
            )
        if body.id is None and mode is Mode.IMPORT:
            raise errors.operation_not_permitted(
                f"Subject {subject} is in import mode: give the schema's id (and version) to register it"
            )
        parsed = self._parse_request(state, body)
        if not body.version:
            existing = self._existing_version(state, subject, parsed)
            if existing is not None and (body.id is None or body.id == existing["id"]):
                return Plan(existing)
        known_id = state.id_for(parsed.fingerprint)
        if body.id is not None:
            if not 1 <= body.id <= MAX_VERSION:
                raise errors.invalid_schema(f"id {body.id} is out of range [1, 2^31-1]")
            content = state.content(body.id)
            if content is not None and content.fingerprint != parsed.fingerprint:
                raise errors.id_does_not_match(body.id)
            schema_id = body.id
        else:
            level = state.effective_config(subject)
            messages = check(level, parsed.avro, self._previous(state, state.subject_versions(subject)))
            if messages:
                raise errors.incompatible_schema(subject, messages)
            schema_id = known_id if known_id is not None else state.max_id() + 1
        version = self._plan_version(state, subject, body, mode)
        content = state.content(schema_id)
        text, refs = (
            (parsed.text, parsed.references) if content is None else (content.text, content.references)
        )
        value = SchemaValue(
            subject=subject,
            version=version,
            id=schema_id,
            schema_type="AVRO",
            schema_text=text,
            references=[ReferenceValue(name=r.name, subject=r.subject, version=r.version) for r in refs],
            deleted=False,
            fingerprint=parsed.fingerprint if content is None else content.fingerprint,
        )
        records = [Record(RecordKey(KeyType.SCHEMA, subject, version), value)]
        for old in state.subject_versions(subject, deleted=True):
            # Like Confluent: a soft-deleted older version of the same schema gives way to the new one.
            if old.deleted and old.schema_id == schema_id and old.version < version:
                if not state.referencing_ids(subject, old.version, deleted=True):
                    records.append(Record(RecordKey(KeyType.SCHEMA, subject, old.version), None))
        return Plan({"id": schema_id, "version": version}, records)

    def _plan_version(
        self, state: RegistryState, subject: str, body: RegisterSchemaRequest, mode: Mode
    ) -> int:
        following = state.next_version(subject)
        if not body.version:
            return following
        if not 1 <= body.version <= MAX_VERSION:
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

    def _id_floor(self, state: RegistryState) -> list[Record]:
        """An ID_FLOOR record when a hard delete could otherwise lower the highest id on replay."""
        top = state.max_id()
        if top > state.id_floor:
            return [Record(RecordKey(KeyType.ID_FLOOR), IdFloorValue(id=top))]
        return []

    def _soft_deleted(self, state: RegistryState, entry: VersionEntry) -> Record:
        content = self._content(state, entry)
        value = SchemaValue(
            subject=entry.subject,
            version=entry.version,
            id=entry.schema_id,
            schema_type=content.schema_type,
            schema_text=content.text,
            references=[
                ReferenceValue(name=r.name, subject=r.subject, version=r.version) for r in content.references
            ],
            deleted=True,
            fingerprint=content.fingerprint,
        )
        return Record(RecordKey(KeyType.SCHEMA, entry.subject, entry.version), value)

    def _subject_settings_tombstones(self, state: RegistryState, subject: str) -> list[Record]:
        out = []
        if state.config(subject) is not None:
            out.append(Record(RecordKey(KeyType.CONFIG, subject), None))
        if state.mode(subject) is not None:
            out.append(Record(RecordKey(KeyType.MODE, subject), None))
        return out

    def delete_version(self, subject: str, version: str, *, permanent: bool = False) -> WriteResult:
        """DELETE /subjects/{subject}/versions/{version}: soft, then (permanent=true) hard."""
        number = parse_version(version)
        return self._execute(
            lambda state: self._plan_delete_version(state, subject, number, version, permanent)
        )

    def _plan_delete_version(
        self, state: RegistryState, subject: str, number: int | None, raw: str, permanent: bool
    ) -> Plan:
        if state.effective_mode(subject).read_only:
            raise errors.operation_not_permitted(f"Subject {subject} is in read-only mode")
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
        if not permanent:
            return Plan(entry.version, [self._soft_deleted(state, entry)])
        records = [*self._id_floor(state), Record(RecordKey(KeyType.SCHEMA, subject, entry.version), None)]
        if len(state.subject_versions(subject, deleted=True)) == 1:
            records += self._subject_settings_tombstones(state, subject)
        return Plan(entry.version, records)

    def delete_subject(self, subject: str, *, permanent: bool = False) -> WriteResult:
        """DELETE /subjects/{subject}: soft-delete every live version, or (permanent=true) remove them all."""
        return self._execute(lambda state: self._plan_delete_subject(state, subject, permanent))

    def _plan_delete_subject(self, state: RegistryState, subject: str, permanent: bool) -> Plan:
        if state.effective_mode(subject).read_only:
            raise errors.operation_not_permitted(f"Subject {subject} is in read-only mode")
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
            return Plan(versions, [self._soft_deleted(state, e) for e in entries])
        records = self._id_floor(state)
        records += [Record(RecordKey(KeyType.SCHEMA, subject, v), None) for v in reversed(versions)]
        records += self._subject_settings_tombstones(state, subject)
        return Plan(versions, records)

    def set_config(self, subject: str | None, level: str | None) -> WriteResult:
        """PUT /config and /config/{subject}."""
        if subject is not None:
            check_subject(subject)
        try:
            parsed = CompatibilityLevel.parse(level)
        except ValueError:
            raise errors.invalid_compatibility(level, CompatibilityLevel.names()) from None

        def plan(state: RegistryState) -> Plan:
            if subject is not None and state.effective_mode(subject).read_only:
                raise errors.operation_not_permitted(f"Subject {subject} is in read-only mode")
            record = Record(RecordKey(KeyType.CONFIG, subject), ConfigValue(compatibility_level=parsed.value))
            records = [] if state.config(subject) is parsed else [record]
            return Plan({"compatibility": parsed.value}, records)

        return self._execute(plan)

    def delete_config(self, subject: str | None) -> WriteResult:
        """DELETE /config (back to the default) and /config/{subject} (back to the global level)."""

        def plan(state: RegistryState) -> Plan:
            current = state.config(subject)
            if subject is None:
                old = state.effective_config(None)
            elif current is None:
                raise errors.subject_not_found(subject)
            else:
                old = current
                if state.effective_mode(subject).read_only:
                    raise errors.operation_not_permitted(f"Subject {subject} is in read-only mode")
            records = [] if current is None else [Record(RecordKey(KeyType.CONFIG, subject), None)]
            return Plan({"compatibilityLevel": old.value}, records)

        return self._execute(plan)

    def set_mode(self, subject: str | None, mode: str | None, *, force: bool = False) -> WriteResult:
        """PUT /mode and /mode/{subject}; IMPORT needs an empty registry (or subject) unless force=true."""
        if subject is not None:
            check_subject(subject)
        try:
            parsed = Mode.parse(mode)
        except ValueError:
            raise errors.invalid_mode(mode, Mode.names()) from None

        def plan(state: RegistryState) -> Plan:
            if parsed is Mode.IMPORT and state.effective_mode(subject) is not Mode.IMPORT and not force:
                taken = state.has_subject(subject) if subject is not None else bool(state.subjects())
                if taken:
                    raise errors.operation_not_permitted(
                        "Cannot import since found existing subjects; delete them or pass force=true"
                    )
            record = Record(RecordKey(KeyType.MODE, subject), ModeValue(mode=parsed.value))
            records = [] if state.mode(subject) is parsed else [record]
            return Plan({"mode": parsed.value}, records)

        return self._execute(plan)

    def delete_mode(self, subject: str | None) -> WriteResult:
        """DELETE /mode (back to READWRITE) and /mode/{subject} (back to the global mode)."""

        def plan(state: RegistryState) -> Plan:
            current = state.mode(subject)
            if subject is None:
                old = state.effective_mode(None)
            elif current is None:
                raise errors.subject_mode_not_configured(subject)
            else:
                old = current
            records = [] if current is None else [Record(RecordKey(KeyType.MODE, subject), None)]
            return Plan({"mode": old.value}, records)

        return self._execute(plan)
