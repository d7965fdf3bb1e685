"""Wire models of the HTTP API (request bodies and documented responses), as Confluent names the fields.

Request models are lenient about extra fields (clients send `Confluent-Accept-Unknown-Properties`) and
leave value checks (compatibility level names, modes, schema text) to the service, which answers with the
documented error codes rather than a generic validation error.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class SchemaReferenceModel(_Request):
    name: str = Field(
        description="AVRO: the referenced type's full name; JSON: the name `$ref` uses; PROTOBUF: the import "
        'path (import "<name>";).'
    )
    subject: str
    version: StrictInt


class RegisterSchemaRequest(_Request):
    """Body of register, lookup and compatibility checks."""

    schema_text: str | None = Field(
        None,
        alias="schema",
        description="The schema: JSON text (AVRO, JSON), or .proto text or a base64 serialized "
        "FileDescriptorProto (PROTOBUF).",
    )
    schema_type: str | None = Field(
        None, alias="schemaType", description="AVRO (the default), JSON or PROTOBUF."
    )
    references: list[SchemaReferenceModel] | None = None
    # Strict: `"version": false` is not version 0 (JSON booleans are not numbers).
    id: StrictInt | None = Field(None, description="IMPORT mode only: the id to register the schema under.")
    version: StrictInt | None = Field(None, description="IMPORT mode only: the version to register.")
    metadata: dict[str, Any] | None = Field(
        None, description="Data contract: {properties, tags, sensitive}; part of the schema's identity."
    )
    rule_set: dict[str, Any] | None = Field(
        None, alias="ruleSet", description="Data contract: {migrationRules, domainRules, encodingRules}."
    )


class ConfigUpdateRequest(_Request):
    compatibility: str | None = Field(None, description="NONE, BACKWARD, ..., FULL_TRANSITIVE.")
    compatibility_level: str | None = Field(
        None, alias="compatibilityLevel", description="Same as compatibility."
    )
    normalize: StrictBool | None = Field(
        None,
        description="Stored and returned; equivalent schemas always get the same id (they are normalized).",
    )

    default_metadata: dict[str, Any] | None = Field(
        None, alias="defaultMetadata", description="Not supported: a non-null value is refused (42205)."
    )
    override_metadata: dict[str, Any] | None = Field(
        None, alias="overrideMetadata", description="Not supported: a non-null value is refused (42205)."
    )
    default_rule_set: dict[str, Any] | None = Field(
        None, alias="defaultRuleSet", description="Not supported: a non-null value is refused (42205)."
    )
    override_rule_set: dict[str, Any] | None = Field(
        None, alias="overrideRuleSet", description="Not supported: a non-null value is refused (42205)."
    )

    def unsupported(self) -> list[str]:
        """The config-level data-contract fields this request sets (the registry does not keep them)."""
        given = {
            "defaultMetadata": self.default_metadata,
            "overrideMetadata": self.override_metadata,
            "defaultRuleSet": self.default_rule_set,
            "overrideRuleSet": self.override_rule_set,
        }
        return [name for name, value in given.items() if value is not None]


class ModeUpdateRequest(_Request):
    mode: str | None = Field(None, description="READWRITE, READONLY, READONLY_OVERRIDE or IMPORT.")


class ErrorMessage(BaseModel):
    error_code: int
    message: str


class RegisterSchemaResponse(BaseModel):
    id: int
    version: int | None = None


class SchemaResponse(BaseModel):
    subject: str | None = None
    version: int | None = None
    id: int | None = None
    schema_text: str = Field(alias="schema")
    schema_type: str | None = Field(None, alias="schemaType")
    references: list[SchemaReferenceModel] | None = None
    metadata: dict[str, Any] | None = None
    rule_set: dict[str, Any] | None = Field(None, alias="ruleSet")


class SubjectVersion(BaseModel):
    subject: str
    version: StrictInt


class CompatibilityResponse(BaseModel):
    is_compatible: bool
    messages: list[str] | None = None


class ConfigResponse(BaseModel):
    compatibility_level: str | None = Field(None, alias="compatibilityLevel")
    compatibility: str | None = None
    normalize: bool | None = None


class ModeResponse(BaseModel):
    mode: str


class StatusResponse(BaseModel):
    """Freight extension: which instance this is, who writes, and how far it has read the log."""

    instance: str
    url: str
    writer: dict[str, Any] | None
    writing: bool
    log_position: int
    subjects: int
    schemas: int
    digest: str
    skipped_records: int
