"""The registry's in-memory state, rebuilt by applying the `_schemas` records in log order.

`RegistryState.apply` is the only mutation, and it depends on nothing but the record, so every instance that
reads the same log holds the same state; and because each key's latest record carries everything that key
contributes, a compacted log rebuilds the same state as the full one. Derived indexes (id -> schema,
fingerprint -> id, who references whom) exist exactly while some version record uses them. Not thread-safe:
`StateStore` in `log.py` guards it with a lock.
"""

from __future__ import annotations

import enum
import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

from freight.registry.avro_schema import SchemaReference
from freight.registry.compat import DEFAULT_LEVEL, CompatibilityLevel
from freight.registry.contracts import NO_CONTRACT, Contract, validate_contract
from freight.registry.records import (
    ConfigValue,
    IdFloorValue,
    KeyType,
    ModeValue,
    Record,
    SchemaValue,
    WriterValue,
)

log = logging.getLogger(__name__)


class Mode(enum.StrEnum):
    READWRITE = "READWRITE"
    READONLY = "READONLY"
    READONLY_OVERRIDE = "READONLY_OVERRIDE"
    IMPORT = "IMPORT"

    @classmethod
    def parse(cls, value: object) -> Mode:
        if isinstance(value, str):
            try:
                return cls(value.strip().upper())
            except ValueError:
                pass
        raise ValueError(f"invalid mode {value!r}; valid: {', '.join(cls.names())}")

    @classmethod
    def names(cls) -> list[str]:
        return [m.value for m in cls]

    @property
    def read_only(self) -> bool:
        return self in (Mode.READONLY, Mode.READONLY_OVERRIDE)


DEFAULT_MODE = Mode.READWRITE


@dataclass(frozen=True, slots=True)
class SchemaContent:
    """What an id stands for; immutable once given."""

    schema_id: int
    schema_type: str
    text: str
    references: tuple[SchemaReference, ...]
    fingerprint: str
    contract: Contract = NO_CONTRACT


@dataclass(frozen=True, slots=True)
class VersionEntry:
    subject: str
    version: int
    schema_id: int
    deleted: bool


@dataclass
class RegistryState:
    """Subjects, versions, schemas by id, configs, modes and the current writer."""

    versions: dict[str, dict[int, VersionEntry]] = field(default_factory=dict)
    contents: dict[int, SchemaContent] = field(default_factory=dict)
    id_users: dict[int, set[tuple[str, int]]] = field(default_factory=dict)
    by_fingerprint: dict[str, int] = field(default_factory=dict)
    referenced_by: dict[tuple[str, int], set[int]] = field(default_factory=dict)
    configs: dict[str | None, CompatibilityLevel] = field(default_factory=dict)
    normalize: dict[str | None, bool] = field(default_factory=dict)
    modes: dict[str | None, Mode] = field(default_factory=dict)
    writer: WriterValue | None = None
    id_floor: int = 0
    skipped: int = 0

    # ----------------------------------------------------------------------------------------- mutation

    def apply(self, record: Record) -> None:
        """Apply one record (a tombstone when `record.value` is None)."""
        key, value = record.key, record.value
        if key.keytype is KeyType.SCHEMA:
            assert key.subject is not None and key.version is not None
            if value is None:
                self._remove_version(key.subject, key.version)
            elif isinstance(value, SchemaValue):
                self._put_version(value)
        elif key.keytype is KeyType.CONFIG:
            if value is None:
                self.configs.pop(key.subject, None)
                self.normalize.pop(key.subject, None)
            elif isinstance(value, ConfigValue):
                self._put_config(key.subject, value)
        elif key.keytype is KeyType.MODE:
            if value is None:
                self.modes.pop(key.subject, None)
            elif isinstance(value, ModeValue):
                self._put_mode(key.subject, value)
        elif key.keytype is KeyType.WRITER:
            self.writer = value if isinstance(value, WriterValue) else None
        elif key.keytype is KeyType.ID_FLOOR and isinstance(value, IdFloorValue):
            self.id_floor = max(self.id_floor, value.id)

    def _put_config(self, subject: str | None, value: ConfigValue) -> None:
        # A CONFIG record is the whole configuration of its level: absent fields are not configured there.
        level = None
        if value.compatibility_level is not None:
            try:
                level = CompatibilityLevel.parse(value.compatibility_level)
            except ValueError:
                self.skipped += 1
                log.warning("ignoring CONFIG record with unknown level %r", value.compatibility_level)
                return
        if level is None:
            self.configs.pop(subject, None)
        else:
            self.configs[subject] = level
        if value.normalize is None:
            self.normalize.pop(subject, None)
        else:
            self.normalize[subject] = value.normalize

    def _put_mode(self, subject: str | None, value: ModeValue) -> None:
        try:
            self.modes[subject] = Mode.parse(value.mode)
        except ValueError:
            self.skipped += 1
            log.warning("ignoring MODE record with unknown mode %r", value.mode)

    def _put_version(self, value: SchemaValue) -> None:
        subject, version = value.subject, value.version
        try:
            contract = validate_contract(value.metadata, value.rule_set)
        except ValueError as exc:
            self.skipped += 1
            log.error("ignoring %s v%d: %s", subject, version, exc)
            return
        existing = self.contents.get(value.id)
        if existing is not None and existing.fingerprint != value.fingerprint:
            # Cannot happen with one fenced writer; keep the first meaning of an id, deterministically.
            self.skipped += 1
            log.error("ignoring %s v%d: id %d already names a different schema", subject, version, value.id)
            return
        old = self.versions.get(subject, {}).get(version)
        if old is not None and old.schema_id != value.id:
            self._release_id(old.schema_id, subject, version)
        self.versions.setdefault(subject, {})[version] = VersionEntry(
            subject, version, value.id, value.deleted
        )
        if existing is None:
            refs = tuple(r.to_reference() for r in value.references)
            self.contents[value.id] = SchemaContent(
                value.id, value.schema_type, value.schema_text, refs, value.fingerprint, contract
            )
            self.by_fingerprint[value.fingerprint] = value.id
            for ref in refs:
                self.referenced_by.setdefault((ref.subject, ref.version), set()).add(value.id)
        self.id_users.setdefault(value.id, set()).add((subject, version))

    def _remove_version(self, subject: str, version: int) -> None:
        versions = self.versions.get(subject)
        if versions is None or version not in versions:
            return
        entry = versions.pop(version)
        if not versions:
            del self.versions[subject]
        self._release_id(entry.schema_id, subject, version)

    def _release_id(self, schema_id: int, subject: str, version: int) -> None:
        users = self.id_users.get(schema_id)
        if users is None:
            return
        users.discard((subject, version))
        if users:
            return
        del self.id_users[schema_id]
        content = self.contents.pop(schema_id)
        if self.by_fingerprint.get(content.fingerprint) == schema_id:
            del self.by_fingerprint[content.fingerprint]
        for ref in content.references:
            ids = self.referenced_by.get((ref.subject, ref.version))
            if ids is not None:
                ids.discard(schema_id)
                if not ids:
                    del self.referenced_by[(ref.subject, ref.version)]

    # ----------------------------------------------------------------------------------------- queries

    def subject_versions(self, subject: str, *, deleted: bool = False) -> list[VersionEntry]:
        """Versions of `subject`, oldest first; soft-deleted ones only when `deleted`."""
        entries = self.versions.get(subject, {})
        return [entries[v] for v in sorted(entries) if deleted or not entries[v].deleted]

    def has_subject(self, subject: str, *, deleted: bool = False) -> bool:
        return bool(self.subject_versions(subject, deleted=deleted))

    def version(self, subject: str, version: int) -> VersionEntry | None:
        return self.versions.get(subject, {}).get(version)

    def latest(self, subject: str, *, deleted: bool = False) -> VersionEntry | None:
        live = self.subject_versions(subject, deleted=deleted)
        return live[-1] if live else None

    def subjects(self, *, deleted: bool = False, deleted_only: bool = False, prefix: str = "") -> list[str]:
        out = []
        for subject, entries in self.versions.items():
            if not subject.startswith(prefix):
                continue
            flags = [e.deleted for e in entries.values()]
            if (deleted_only and any(flags)) or (not deleted_only and (deleted or not all(flags))):
                out.append(subject)
        return sorted(out)

    def content(self, schema_id: int) -> SchemaContent | None:
        return self.contents.get(schema_id)

    def id_for(self, fingerprint: str) -> int | None:
        return self.by_fingerprint.get(fingerprint)

    def users_of(self, schema_id: int, *, deleted: bool = False) -> list[VersionEntry]:
        """(subject, version) entries that use `schema_id`, sorted."""
        out = []
        for subject, version in sorted(self.id_users.get(schema_id, ())):
            entry = self.versions[subject][version]
            if deleted or not entry.deleted:
                out.append(entry)
        return out

    def referencing_ids(self, subject: str, version: int, *, deleted: bool = False) -> list[int]:
        """Ids of schemas whose references point at `subject` `version` (live ones unless `deleted`)."""
        ids = self.referenced_by.get((subject, version), set())
        return sorted(i for i in ids if deleted or self.users_of(i))

    def config(self, subject: str | None) -> CompatibilityLevel | None:
        return self.configs.get(subject)

    def normalize_setting(self, subject: str | None) -> bool | None:
        return self.normalize.get(subject)

    def effective_config(self, subject: str | None) -> CompatibilityLevel:
        return self.configs.get(subject) or self.configs.get(None) or DEFAULT_LEVEL

    def mode(self, subject: str | None) -> Mode | None:
        return self.modes.get(subject)

    def effective_mode(self, subject: str | None) -> Mode:
        return self.modes.get(subject) or self.modes.get(None) or DEFAULT_MODE

    def max_id(self) -> int:
        """The highest id ever given (hard-deleted ones included, through the id floor)."""
        return max(max(self.contents, default=0), self.id_floor)

    def next_version(self, subject: str) -> int:
        entries = self.versions.get(subject)
        return max(entries) + 1 if entries else 1

    def iter_versions(self) -> Iterator[VersionEntry]:
        for subject in sorted(self.versions):
            yield from self.subject_versions(subject, deleted=True)

    def digest(self) -> str:
        """A hash of everything a client can observe; equal on instances that applied the same log."""
        doc = {
            "versions": [[e.subject, e.version, e.schema_id, e.deleted] for e in self.iter_versions()],
            "contents": [
                [c.schema_id, c.schema_type, c.fingerprint, c.text] for _, c in sorted(self.contents.items())
            ],
            "configs": sorted([k or "", v.value] for k, v in self.configs.items()),
            "normalize": sorted([k or "", v] for k, v in self.normalize.items()),
            "modes": sorted([k or "", v.value] for k, v in self.modes.items()),
            "id_floor": self.id_floor,
        }
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()
