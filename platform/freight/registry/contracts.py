"""Data contracts: the `metadata` and `ruleSet` a schema version carries, as Confluent's registry stores them.

Newer Confluent clients send both with a registration (`{"schema", "metadata": {"properties", "tags",
"sensitive"}, "ruleSet": {"migrationRules", "domainRules", "encodingRules"}}`). The registry does not run
rules - clients do - it validates their shape, stores them with the schema and hands them back. As in
Confluent's registry they are part of what an id stands for (the same text with other metadata is another
schema), and a registration that sends neither inherits them from the subject's latest version.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class _Part(BaseModel):
    # Unknown fields are kept: newer clients add some, and the registry hands back what it was given.
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Metadata(_Part):
    """Free-form facts about a schema version: tags per field path, properties, sensitive property names."""

    tags: dict[str, list[str]] | None = None
    properties: dict[str, str] | None = None
    sensitive: list[str] | None = None


class Rule(_Part):
    """One data-quality, transformation or migration rule, executed by clients (never by the registry)."""

    name: str
    kind: Literal["TRANSFORM", "CONDITION"] | None = None
    mode: Literal["UPGRADE", "DOWNGRADE", "UPDOWN", "READ", "WRITE", "WRITEREAD"] | None = None
    type: str | None = None
    doc: str | None = None
    tags: list[str] | None = None
    params: dict[str, str] | None = None
    expr: str | None = None
    on_success: str | None = Field(None, alias="onSuccess")
    on_failure: str | None = Field(None, alias="onFailure")
    disabled: bool | None = None


class RuleSet(_Part):
    """The rules of a schema version, by when clients apply them."""

    migration_rules: list[Rule] | None = Field(None, alias="migrationRules")
    domain_rules: list[Rule] | None = Field(None, alias="domainRules")
    encoding_rules: list[Rule] | None = Field(None, alias="encodingRules")


@dataclass(frozen=True, slots=True)
class Contract:
    """The validated metadata and rule set of one schema, as JSON objects (None: not given)."""

    metadata: dict[str, Any] | None = None
    rule_set: dict[str, Any] | None = None

    @property
    def empty(self) -> bool:
        return self.metadata is None and self.rule_set is None

    def identity(self, schema_fingerprint: str) -> str:
        """The id-deciding fingerprint of a schema with this contract (the plain one when there is none).

        Args:
            schema_fingerprint: the fingerprint of the schema text and references alone.

        Returns:
            `schema_fingerprint` unchanged for a schema without contract, so logs written before contracts
            keep their ids; otherwise a hash over it and the canonical JSON of the contract.
        """
        if self.empty:
            return schema_fingerprint
        doc = json.dumps(
            [schema_fingerprint, self.metadata, self.rule_set],
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        )
        return hashlib.sha256(doc.encode()).hexdigest()

    def properties_match(self, wanted: dict[str, str]) -> bool:
        """Whether the metadata's properties hold every `wanted` key with its value."""
        have = (self.metadata or {}).get("properties") or {}
        return all(have.get(key) == value for key, value in wanted.items())


NO_CONTRACT = Contract()


def validate_contract(metadata: object, rule_set: object) -> Contract:
    """Check the shapes of a request's `metadata` and `ruleSet` and return them normalized.

    Args:
        metadata: the request's `metadata` (None when absent).
        rule_set: the request's `ruleSet` (None when absent).

    Returns:
        The contract, each part as a JSON object without null fields.

    Raises:
        ValueError: naming the field that is wrong and why.
    """
    return Contract(_validated(Metadata, "metadata", metadata), _validated(RuleSet, "ruleSet", rule_set))


def _validated(model: type[_Part], what: str, raw: object) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        parsed = model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise ValueError(f"{what} is not valid at {where}: {first['msg']}") from None
    return parsed.model_dump(by_alias=True, exclude_none=True)
