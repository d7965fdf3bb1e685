"""The records of the `_schemas` topic: JSON keys and values, one key per piece of state.

The layout follows Confluent's store (keys `{"keytype": ..., "subject": ..., "version": ..., "magic": ...}`):
the topic is compacted, so for every key the latest record is the truth and a tombstone (null value)
removes it. Keys are serialized with sorted keys so that equal keys are equal bytes, as compaction needs.

| keytype  | key fields        | value                                                          |
|----------|-------------------|----------------------------------------------------------------|
| SCHEMA   | subject, version  | subject, version, id, schemaType, schema, references, metadata, |
|          |                   | ruleSet, deleted, fingerprint                                  |
| CONFIG   | subject (null: global) | compatibilityLevel, normalize                             |
| MODE     | subject (null: global) | mode                                                      |
| WRITER   | -                 | url and instance id of the instance that holds the writer role |
| ID_FLOOR | -                 | the highest id ever given, so hard deletes never free an id for reuse |
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any, cast

from pydantic import BaseModel, ConfigDict, Field

from freight.registry.avro_schema import SchemaReference


class KeyType(enum.StrEnum):
    SCHEMA = "SCHEMA"
    CONFIG = "CONFIG"
    MODE = "MODE"
    WRITER = "WRITER"
    ID_FLOOR = "ID_FLOOR"


@dataclass(frozen=True, slots=True)
class RecordKey:
    """The key of one record; `subject` is None for global CONFIG/MODE and for WRITER/ID_FLOOR."""

    keytype: KeyType
    subject: str | None = None
    version: int | None = None

    def encode(self) -> bytes:
        doc: dict[str, Any] = {
            "keytype": self.keytype.value,
            "magic": 1 if self.keytype is KeyType.SCHEMA else 0,
        }
        if self.keytype in (KeyType.SCHEMA, KeyType.CONFIG, KeyType.MODE):
            doc["subject"] = self.subject
        if self.keytype is KeyType.SCHEMA:
            doc["version"] = self.version
        return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    @classmethod
    def decode(cls, raw: bytes) -> RecordKey:
        """Parse a key; raise ValueError for anything this registry did not write."""
        doc = json.loads(raw)
        if not isinstance(doc, dict):
            raise ValueError("record key is not a JSON object")
        keytype = KeyType(str(doc.get("keytype")))
        subject = doc.get("subject")
        version = doc.get("version")
        if subject is not None and not isinstance(subject, str):
            raise ValueError("record key subject is not a string")
        if keytype is KeyType.SCHEMA and (not isinstance(subject, str) or not isinstance(version, int)):
            raise ValueError("SCHEMA key needs a subject and an integer version")
        return cls(keytype, subject, version if keytype is KeyType.SCHEMA else None)


class _Value(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)


class ReferenceValue(_Value):
    name: str
    subject: str
    version: int

    def to_reference(self) -> SchemaReference:
        return SchemaReference(self.name, self.subject, self.version)


class SchemaValue(_Value):
    """One version of a subject (possibly soft-deleted)."""

    subject: str
    version: int
    id: int
    schema_type: str = Field("AVRO", alias="schemaType")
    schema_text: str = Field(alias="schema")
    references: list[ReferenceValue] = Field(default_factory=list)
    # The data contract (freight.registry.contracts); its shape is checked when the record is applied.
    metadata: dict[str, Any] | None = None
    rule_set: dict[str, Any] | None = Field(None, alias="ruleSet")
    deleted: bool = False
    fingerprint: str


class ConfigValue(_Value):
    """A subject's (or the global) configuration; an absent field is not configured at that level."""

    compatibility_level: str | None = Field(None, alias="compatibilityLevel")
    normalize: bool | None = None


class ModeValue(_Value):
    mode: str


class WriterValue(_Value):
    """Which instance holds the writer role (took over by fencing the previous one)."""

    url: str
    instance: str
    since_ms: int


class IdFloorValue(_Value):
    id: int


Value = SchemaValue | ConfigValue | ModeValue | WriterValue | IdFloorValue
_VALUE_TYPES: dict[KeyType, type[_Value]] = {
    KeyType.SCHEMA: SchemaValue,
    KeyType.CONFIG: ConfigValue,
    KeyType.MODE: ModeValue,
    KeyType.WRITER: WriterValue,
    KeyType.ID_FLOOR: IdFloorValue,
}


@dataclass(frozen=True, slots=True)
class Record:
    """A key and its value; value None is a tombstone."""

    key: RecordKey
    value: Value | None

    def encode(self) -> tuple[bytes, bytes | None]:
        raw = None if self.value is None else self.value.model_dump_json(by_alias=True).encode()
        return self.key.encode(), raw


def decode_record(raw_key: bytes | None, raw_value: bytes | None) -> Record:
    """Parse one consumed record; raise ValueError if it is not a registry record."""
    if raw_key is None:
        raise ValueError("record has no key")
    key = RecordKey.decode(raw_key)
    if raw_value is None:
        return Record(key, None)
    value = _VALUE_TYPES[key.keytype].model_validate_json(raw_value)
    return Record(key, cast(Value, value))
