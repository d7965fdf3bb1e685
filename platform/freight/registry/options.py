"""Options of one registry instance (`freight registry serve`); Kafka settings come from FreightSettings."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr, field_validator

DEFAULT_TOPIC = "_schemas"
DEFAULT_PORT = 8081


class RegistryOptions(BaseModel):
    """Where to listen, which topic holds the state, and the limits of the API."""

    host: str = Field("127.0.0.1", description="Address to bind; loopback by default.")
    port: int = Field(DEFAULT_PORT, ge=0, le=65535)
    topic: str = Field(DEFAULT_TOPIC, min_length=1, description="Compacted single-partition state topic.")
    advertised_url: str | None = Field(
        None, description="URL other instances forward writes to (default http://host:port)."
    )
    auth: SecretStr | None = Field(None, description="Require HTTP basic auth as user:password.")
    max_schema_bytes: int = Field(512 * 1024, ge=1024, description="Largest schema text accepted.")
    write_timeout_s: float = Field(30.0, gt=0, description="How long a write may take before 50002.")
    startup_timeout_s: float = Field(60.0, gt=0, description="How long the initial replay may take.")
    read_timeout_s: float = Field(
        10.0,
        gt=0,
        description="A request (headers and body) must keep arriving: silence this long closes it.",
    )
    max_connections: int | None = Field(
        None,
        ge=1,
        description="Open connections at most (beyond: 503 and close); default below the fd limit.",
    )

    @field_validator("auth")
    @classmethod
    def _auth_has_user_and_password(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and ":" not in value.get_secret_value():
            raise ValueError("registry auth must be given as user:password")
        return value

    @property
    def url(self) -> str:
        """The URL this instance is reached at by clients and by the other instances."""
        if self.advertised_url:
            return self.advertised_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"

    @property
    def max_body_bytes(self) -> int:
        """Largest HTTP request body: a schema JSON-escaped in a request, plus room for the envelope."""
        return 2 * self.max_schema_bytes + 64 * 1024
