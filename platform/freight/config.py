"""Settings: explicit arguments, then `FREIGHT_*` environment variables, then defaults.

`FreightSettings(kafka_bootstrap="...")` gives the argument precedence over `FREIGHT_KAFKA_BOOTSTRAP`, which
wins over the default. librdkafka client properties (security, SASL, TLS, tuning) pass through untouched,
from `FREIGHT_KAFKA_PROPERTIES` (a JSON object) and/or a Java-style properties file
(`FREIGHT_KAFKA_CONFIG_FILE`), so a secured cluster needs no code changes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from freight.errors import ConfigError


class FreightSettings(BaseSettings):
    """Process-wide settings; every field maps to `FREIGHT_<FIELD>` in the environment."""

    model_config = SettingsConfigDict(env_prefix="FREIGHT_", extra="ignore", validate_default=True)

    kafka_bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers (host:port,...).")
    kafka_properties: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict, description="librdkafka properties passed through untouched (JSON object)."
    )
    kafka_config_file: Path | None = Field(None, description="Java-style properties file for the clients.")
    schema_registry_url: str = Field("http://127.0.0.1:8081", description="Schema Registry base URL.")
    schema_registry_auth: SecretStr | None = Field(None, description="Registry basic auth as user:password.")
    store_dir: Path = Field(Path(".freight/store"), description="Default directory of the file store.")
    s3_endpoint_url: str | None = Field(None, description="S3 endpoint (MinIO, moto); unset means AWS.")
    state_dir: Path = Field(Path(".freight"), description="Where `freight dev` keeps state, data and logs.")
    inline_threshold: int = Field(
        4096, ge=0, description="Objects smaller than this travel inside the event."
    )
    allow_pickle: bool = Field(False, description="Enable the pickle serializer (runs code on load).")

    @field_validator("kafka_bootstrap")
    @classmethod
    def _bootstrap_not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("FREIGHT_KAFKA_BOOTSTRAP is empty; give host:port of a broker")
        return value.strip()

    @field_validator("kafka_properties", mode="before")
    @classmethod
    def _properties_from_json(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = json.loads(value) if value.strip() else {}
            except json.JSONDecodeError as exc:
                raise ValueError(f"FREIGHT_KAFKA_PROPERTIES must be a JSON object: {exc}") from exc
        if isinstance(value, dict):
            return {str(k): str(v) for k, v in value.items()}
        return value

    def client_properties(self) -> dict[str, str]:
        """librdkafka properties from the config file, then `kafka_properties` (which wins)."""
        props: dict[str, str] = {}
        if self.kafka_config_file is not None:
            props.update(read_properties_file(self.kafka_config_file))
        props.update(self.kafka_properties)
        return props


def read_properties_file(path: Path) -> dict[str, str]:
    """Parse a Java-style `key=value` properties file (comments with # or !)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read Kafka client config file {path}: {exc.strerror}") from exc
    props: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line[0] in "#!":
            continue
        sep = min((i for i in (line.find("="), line.find(":")) if i > 0), default=-1)
        if sep < 0:
            raise ConfigError(f"{path}:{number}: expected key=value, got {raw!r}")
        props[line[:sep].strip()] = line[sep + 1 :].strip()
    return props


def load_settings(**overrides: Any) -> FreightSettings:
    """Settings with the given non-None arguments taking precedence over the environment."""
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return FreightSettings(**given)
    except ValueError as exc:
        raise ConfigError(f"invalid Freight settings: {exc}") from exc
