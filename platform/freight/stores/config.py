"""`StoreConfig`: how any process rebuilds a named store (connector kind + non-secret options + checksum).

Store configs are published to a compacted Kafka topic keyed by store name (Avro `freight.v1.StoreConfig`),
so a consumer that meets an unknown store name in an event can rebuild the store. They never hold secrets.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from freight.connectors._options import reject_secrets
from freight.stores.checksums import DEFAULT_ALGORITHM, check_algorithm

_NAME = re.compile(r"^[A-Za-z0-9._-]{1,200}$")


def check_store_name(name: str) -> str:
    """`name` if it is a valid store name (it is a Kafka key and appears in events)."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"store name {name!r} is invalid: use 1-200 letters, digits, '.', '_' or '-' (e.g. 'frames-s3')"
        )
    return name


class StoreConfig(BaseModel):
    """A store's name, connector kind, connector options (non-secret) and checksum algorithm."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Store name, unique in the deployment.")
    connector: str = Field(description="Connector kind: file, s3, memory, tensor.")
    options: dict[str, Any] = Field(default_factory=dict, description="Connector options; never secrets.")
    checksum: str | None = Field(DEFAULT_ALGORITHM, description="Checksum algorithm, or None for none.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_store_name(value)

    @field_validator("checksum")
    @classmethod
    def _checksum(cls, value: str | None) -> str | None:
        return check_algorithm(value)

    @field_validator("options")
    @classmethod
    def _options(cls, value: dict[str, Any]) -> dict[str, Any]:
        reject_secrets("store", value)
        try:
            json.dumps(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"store options must be JSON values (they travel in Kafka): {exc}") from None
        return value

    def to_avro(self, updated_at: int | None = None) -> dict[str, Any]:
        """The `freight.v1.StoreConfig` record (options as a JSON string, updated_at in epoch ms)."""
        return {
            "name": self.name,
            "connector": self.connector,
            "options": json.dumps(self.options, sort_keys=True, separators=(",", ":")),
            "checksum": self.checksum,
            "updated_at": int(time.time() * 1000) if updated_at is None else updated_at,
        }

    @classmethod
    def from_avro(cls, record: dict[str, Any]) -> StoreConfig:
        return cls(
            name=record["name"],
            connector=record["connector"],
            options=json.loads(record.get("options") or "{}"),
            checksum=record.get("checksum"),
        )
