"""The registry's operations, independent of HTTP: reads from the replayed state, writes through the log.

Reads answer from this instance's state. A write is planned (`planner.py`) against the state under the write
lock and then committed by `LogWriter`; it returns only after this instance has read its own record back, so
a client sees its write on the instance it wrote to. Before its first write (and after being fenced) an
instance takes over the writer role: it fences the previous writer, commits a WRITER record announcing its
URL, and reads up to that record, which makes its state complete. Plans are computed from that complete
state, so ids and versions are never given twice; a plan whose commit is fenced is recomputed after taking
over again.

Every operation raises `RegistryError` naming the `Problem` for a bad request (the API maps it to
Confluent's status and error code).
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from freight.config import FreightSettings
from freight.registry import errors
from freight.registry.compat import CompatibilityLevel, check
from freight.registry.errors import (
    Problem,
    RegistryError,
    StoreUnavailableError,
    WriteAbortedError,
    WriterFencedError,
    WriterMovedError,
)
from freight.registry.log import LogReader, LogWriter, StateStore, ensure_topic, log_end_offset
from freight.registry.models import RegisterSchemaRequest
from freight.registry.options import RegistryOptions
from freight.registry.planner import (
    Plan,
    Planner,
    check_subject,
    parse_version,
    schema_body,
    version_body,
)
from freight.registry.records import KeyType, Record, RecordKey, WriterValue
from freight.registry.state import Mode, RegistryState, SchemaContent

log = logging.getLogger(__name__)

WRITE_ATTEMPTS = 6


@dataclass(frozen=True)
class WriteResult:
    result: Any
    offset: int | None  # offset of the last committed record; None if nothing was written


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
        self.planner = Planner(options.max_schema_bytes)
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

    def get_version(
        self, subject: str, version: str, *, deleted: bool = False, fmt: str | None = None
    ) -> dict[str, Any]:
        """One version's body; `fmt="serialized"` gives a Protobuf schema as a base64 descriptor."""
        with self.store.read() as state:
            entry = self.planner.resolve(state, subject, version, deleted=deleted)
            content = self.planner.content(state, entry)
            body = version_body(entry, content)
            return self._formatted(state, content, body, fmt)

    def _formatted(
        self, state: RegistryState, content: SchemaContent, body: dict[str, Any], fmt: str | None
    ) -> dict[str, Any]:
        """Apply Confluent's `format` query parameter: "serialized" turns a Protobuf schema's text into the
        base64 of its FileDescriptorProto (what confluent-kafka's Protobuf serde asks for); other formats
        and types keep the stored text."""
        if fmt is None or fmt.strip().lower() != "serialized" or content.schema_type != "PROTOBUF":
            return body
        parsed = self.planner.parsed_by_id(state, content.schema_id)
        if parsed is None:
            raise errors.store_error(f"schema {content.schema_id} can no longer be parsed")
        return {**body, "schema": parsed.model.serialized()}

    def referenced_by(self, subject: str, version: str, *, deleted: bool = False) -> list[int]:
        with self.store.read() as state:
            entry = self.planner.resolve(state, subject, version, deleted=True)
            return state.referencing_ids(entry.subject, entry.version, deleted=deleted)

    def schema_by_id_json(self, schema_id: int, fmt: str | None = None) -> bytes:
        """The JSON body of GET /schemas/ids/{id}, cached per id (ids never change meaning)."""
        with self.store.read() as state:
            content = state.content(schema_id)
            if content is None:
                raise errors.schema_not_found(schema_id)
            if fmt:
                body = self._formatted(state, content, schema_body(content), fmt)
                return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
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
            parsed = self.planner.parse_request(state, body)
            for entry in reversed(state.subject_versions(subject, deleted=deleted)):
                content = self.planner.content(state, entry)
                # A lookup without metadata and ruleSet matches the text whatever contract it carries.
                contract = content.contract if parsed.contract.empty else parsed.contract
                if content.fingerprint == contract.identity(parsed.fingerprint):
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
                parsed = self.planner.parse_request(state, body)
            except RegistryError:
                return None
            return self.planner.existing_version(state, subject, parsed)

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
                parsed = self.planner.parse_request(state, body)
            except RegistryError as exc:
                if verbose and exc.problem is Problem.INVALID_SCHEMA:
                    return {"is_compatible": False, "messages": [exc.message]}
                raise
            level = state.effective_config(subject)
            messages = check(level, parsed.model, self.planner.previous(state, targets), parsed.schema_type)
        result: dict[str, Any] = {"is_compatible": not messages}
        if verbose:
            result["messages"] = messages
        return result

    def get_config(self, subject: str | None, *, default_to_global: bool = False) -> dict[str, Any]:
        """GET /config[/{subject}]: the compatibility level and, where set, `normalize`."""
        with self.store.read() as state:
            if subject is None:
                return _config_body(state.effective_config(None), state.normalize_setting(None))
            level, normalize = state.config(subject), state.normalize_setting(subject)
            if level is None and normalize is None and not default_to_global:
                raise errors.subject_compatibility_not_configured(subject)
            if default_to_global:
                level = level or state.effective_config(None)
                normalize = normalize if normalize is not None else state.normalize_setting(None)
            return _config_body(level, normalize)

    def latest_with_metadata(
        self, subject: str, wanted: dict[str, str], *, deleted: bool = False
    ) -> dict[str, Any]:
        """GET /subjects/{subject}/metadata: the newest version whose metadata holds every key=value."""
        with self.store.read() as state:
            entries = state.subject_versions(subject, deleted=deleted)
            if not entries:
                raise errors.subject_not_found(subject)
            for entry in reversed(entries):
                content = self.planner.content(state, entry)
                if content.contract.properties_match(wanted):
                    return version_body(entry, content)
            pairs = ", ".join(f"{k}={v}" for k, v in wanted.items())
            raise errors.version_not_found(subject, f"with metadata {pairs}")

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

    def _execute(self, plan: Callable[[RegistryState], Plan], *, forwarded: bool = False) -> WriteResult:
        """Plan against complete state and commit; after being fenced, retry or hand over to the new writer.

        A request that came straight from a client raises `WriterMovedError` once another instance has
        announced itself as the writer, so that the HTTP layer relays it there instead of fencing that
        instance back; a request relayed to us by another instance is retried here (after a random pause,
        so that two instances never keep fencing each other in lockstep).
        """
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
                except WriteAbortedError as exc:
                    log.info("registry %s: %s; writing again", self.instance, exc)
                    time.sleep(random.uniform(0.01, 0.1))  # noqa: S311 - jitter, not cryptography
                    continue
                except WriterFencedError as exc:
                    log.info("registry %s was fenced (%s)", self.instance, exc)
                    if not forwarded and self._another_writer_announced(deadline):
                        raise WriterMovedError("another instance took the writer role over") from None
                    time.sleep(random.uniform(0.02, 0.2))  # noqa: S311 - jitter, not cryptography
                    continue
                except StoreUnavailableError as exc:
                    raise errors.store_error(str(exc)) from None
                if not self.store.wait_for(offset + 1, max(deadline - time.monotonic(), 0.1)):
                    raise errors.operation_timeout(
                        f"the write at offset {offset} was not read back in {timeout:g}s"
                    )
                return WriteResult(planned.result, offset)
        raise errors.operation_timeout(f"could not hold the writer role for {WRITE_ATTEMPTS} attempts")

    def _another_writer_announced(self, deadline: float, wait_s: float = 3.0) -> bool:
        """Wait (briefly) until the log names another instance as the writer."""
        end = min(deadline, time.monotonic() + wait_s)
        while True:
            with self.store.read() as state:
                writer = state.writer
            if writer is not None and writer.instance != self.instance:
                return True
            if time.monotonic() > end:
                return False
            time.sleep(0.01)

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

    def register(self, subject: str, body: RegisterSchemaRequest, *, forwarded: bool = False) -> WriteResult:
        """POST /subjects/{subject}/versions."""
        check_subject(subject)
        return self._execute(lambda state: self.planner.register(state, subject, body), forwarded=forwarded)

    def delete_version(
        self, subject: str, version: str, *, permanent: bool = False, forwarded: bool = False
    ) -> WriteResult:
        """DELETE /subjects/{subject}/versions/{version}."""
        parse_version(version)
        return self._execute(
            lambda state: self.planner.delete_version(state, subject, version, permanent=permanent),
            forwarded=forwarded,
        )

    def delete_subject(
        self, subject: str, *, permanent: bool = False, forwarded: bool = False
    ) -> WriteResult:
        """DELETE /subjects/{subject}."""
        return self._execute(
            lambda state: self.planner.delete_subject(state, subject, permanent=permanent),
            forwarded=forwarded,
        )

    def set_config(
        self,
        subject: str | None,
        level: str | None,
        *,
        normalize: bool | None = None,
        unsupported: Sequence[str] = (),
        forwarded: bool = False,
    ) -> WriteResult:
        """PUT /config and /config/{subject}: the level, `normalize`, or both (at least one)."""
        if unsupported:
            raise errors.operation_not_permitted(
                f"{', '.join(unsupported)} in /config are not supported by this registry; send metadata "
                "and ruleSet with each registration instead (a version without them inherits the latest's)"
            )
        parsed = None
        if level is not None or normalize is None:
            try:
                parsed = CompatibilityLevel.parse(level)
            except ValueError:
                raise errors.invalid_compatibility(level, CompatibilityLevel.names()) from None
        return self._execute(
            lambda state: self.planner.set_config(state, subject, parsed, normalize), forwarded=forwarded
        )

    def delete_config(self, subject: str | None, *, forwarded: bool = False) -> WriteResult:
        """DELETE /config and /config/{subject}."""
        return self._execute(lambda state: self.planner.delete_config(state, subject), forwarded=forwarded)

    def set_mode(
        self, subject: str | None, mode: str | None, *, force: bool = False, forwarded: bool = False
    ) -> WriteResult:
        """PUT /mode and /mode/{subject}."""
        try:
            parsed = Mode.parse(mode)
        except ValueError:
            raise errors.invalid_mode(mode, Mode.names()) from None
        return self._execute(
            lambda state: self.planner.set_mode(state, subject, parsed, force=force), forwarded=forwarded
        )

    def delete_mode(self, subject: str | None, *, forwarded: bool = False) -> WriteResult:
        """DELETE /mode and /mode/{subject}."""
        return self._execute(lambda state: self.planner.delete_mode(state, subject), forwarded=forwarded)


def _config_body(level: CompatibilityLevel | None, normalize: bool | None) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if level is not None:
        body["compatibilityLevel"] = level.value
    if normalize is not None:
        body["normalize"] = normalize
    return body
