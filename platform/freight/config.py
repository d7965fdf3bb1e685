"""Settings: explicit arguments, then `FREIGHT_*` environment variables, then defaults.

`FreightSettings(kafka_bootstrap="...")` gives the argument precedence over `FREIGHT_KAFKA_BOOTSTRAP`, which
wins over the default. librdkafka client properties (security, SASL, TLS, tuning) pass through untouched,
from `FREIGHT_KAFKA_PROPERTIES` (a JSON object) and/or a Java-style properties file
(`FREIGHT_KAFKA_CONFIG_FILE`), so a secured cluster needs no code changes.
"""

from __future__ import annotations

import json
import ssl
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from freight.errors import ConfigError
from freight.redact import redact_text


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
    schema_registry_ca_file: Path | None = Field(
        None, description="CA certificates (PEM) that sign an https registry's certificate."
    )
    schema_registry_cert_file: Path | None = Field(
        None, description="Client certificate (PEM) for a registry that requires one (mutual TLS)."
    )
    schema_registry_key_file: Path | None = Field(
        None, description="Private key (PEM) of schema_registry_cert_file, if not in that file."
    )
    store_dir: Path = Field(Path(".freight/store"), description="Default directory of the file store.")
    s3_endpoint_url: str | None = Field(None, description="S3 endpoint (MinIO, moto); unset means AWS.")
    state_dir: Path = Field(Path(".freight"), description="Where `freight dev` keeps state, data and logs.")
    inline_threshold: int = Field(
        4096, ge=0, description="Objects smaller than this travel inside the event."
    )
    allow_pickle: bool = Field(False, description="Enable the pickle serializer (runs code on load).")
    tracing: bool = Field(
        False, description="OpenTelemetry spans for send, consume, resolve and store calls (`otel` extra)."
    )
    # Trust boundaries (docs/security.md): what a store config read from Kafka may make this process touch.
    allowed_store_roots: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="Directories file stores from the store catalog may live under (comma-separated); "
        "empty means only `store_dir`.",
    )
    allowed_s3_endpoints: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="S3 endpoints a catalog store may name (comma-separated); empty means only "
        "`s3_endpoint_url` (or AWS when that is unset).",
    )
    allowed_s3_buckets: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Buckets a catalog store may name (comma-separated); empty: any."
    )
    allowed_store_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Hosts a catalog tensor store may make this process connect to (comma-separated); "
        "empty means loopback only.",
    )
    allowed_clusters: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Other Kafka clusters (bootstrap lists, ';'-separated) whose pickled proxies this "
        "process resolves with its own credentials; empty: only its own cluster.",
    )
    catalog_key: SecretStr | None = Field(
        None,
        description="HMAC key that signs and authenticates store-catalog and retention-policy records; "
        "when set, unsigned or wrongly signed records are refused.",
    )

    @field_validator("kafka_bootstrap")
    @classmethod
    def _bootstrap_not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("FREIGHT_KAFKA_BOOTSTRAP is empty; give host:port of a broker")
        return value.strip()

    @field_validator("schema_registry_url")
    @classmethod
    def _registry_url_has_a_scheme(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(
                "FREIGHT_SCHEMA_REGISTRY_URL must start with http:// or https:// "
                f"(got {redact_text(value)!r}; e.g. http://127.0.0.1:8081)"
            )
        return value.rstrip("/")

    @field_validator("kafka_properties", mode="before")
    @classmethod
    def _properties_from_json(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = json.loads(value) if value.strip() else {}
            except json.JSONDecodeError as exc:
                raise ValueError(
                    f"FREIGHT_KAFKA_PROPERTIES must be a JSON object (not valid JSON at line {exc.lineno} "
                    f"column {exc.colno}: {exc.msg})"
                ) from None
        if isinstance(value, dict):
            return {str(k): str(v) for k, v in value.items()}
        return value

    @field_validator(
        "allowed_store_roots",
        "allowed_s3_endpoints",
        "allowed_s3_buckets",
        "allowed_store_hosts",
        mode="before",
    )
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        return _split_list(value, ",")

    @field_validator("allowed_clusters", mode="before")
    @classmethod
    def _cluster_list(cls, value: Any) -> Any:
        return _split_list(value, ";")  # a bootstrap list itself holds commas

    def registry_ssl_context(self) -> ssl.SSLContext | None:
        """TLS for Freight's HTTPS clients of the registry; None when no CA or client certificate is set.

        Raises:
            ConfigError: a file is missing or not PEM, or a key is given without a certificate.
        """
        ca, cert, key = (
            self.schema_registry_ca_file,
            self.schema_registry_cert_file,
            self.schema_registry_key_file,
        )
        if ca is None and cert is None and key is None:
            return None
        if key is not None and cert is None:
            raise ConfigError(
                "a registry client key (FREIGHT_SCHEMA_REGISTRY_KEY_FILE, --registry-key) needs its "
                "certificate "
                "(FREIGHT_SCHEMA_REGISTRY_CERT_FILE, --registry-cert)"
            )
        try:
            context = ssl.create_default_context(cafile=str(ca) if ca is not None else None)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"registry CA file {ca}: cannot use it ({exc}); give a PEM file") from exc
        if cert is not None:
            try:
                context.load_cert_chain(str(cert), str(key) if key is not None else None)
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(
                    f"registry client certificate {cert}"
                    + (f" / key {key}" if key else "")
                    + f": cannot use it ({exc}); give PEM files (the key unencrypted)"
                ) from exc
        return context

    def registry_client_tls(self) -> dict[str, str]:
        """The same TLS files as confluent-kafka's SchemaRegistryClient takes them (`ssl.*.location`)."""
        self.registry_ssl_context()  # the same checks, the same messages
        conf: dict[str, str] = {}
        if self.schema_registry_ca_file is not None:
            conf["ssl.ca.location"] = str(self.schema_registry_ca_file)
        if self.schema_registry_cert_file is not None:
            conf["ssl.certificate.location"] = str(self.schema_registry_cert_file)
        if self.schema_registry_key_file is not None:
            conf["ssl.key.location"] = str(self.schema_registry_key_file)
        return conf

    def client_properties(self) -> dict[str, str]:
        """librdkafka properties from the config file, then `kafka_properties` (which wins)."""
        props: dict[str, str] = {}
        if self.kafka_config_file is not None:
            props.update(read_properties_file(self.kafka_config_file))
        props.update(self.kafka_properties)
        return props


def _split_list(value: Any, separator: str) -> Any:
    """An environment string `a<sep> b` as ['a', 'b'] (empty parts dropped); other values unchanged."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(separator) if part.strip()]
    return value


def read_properties_file(path: Path) -> dict[str, str]:
    """Parse a Java `.properties` file as Kafka's own tools read it.

    Separators are `=`, `:` or whitespace; `#` and `!` start comments; a line ending in an odd number of
    backslashes continues on the next; `\\t`, `\\n`, `\\uXXXX` and escaped separators are unescaped. Errors
    name the file, line and key, never a value (values are often passwords).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read Kafka client config file {path}: {exc.strerror}") from exc
    props: dict[str, str] = {}
    for number, logical in _logical_lines(text):
        key, value = _split_property(logical)
        if not key:
            raise ConfigError(f"{path}:{number}: a line with a value but no key; write key=value")
        if not value and not any(sep in logical for sep in "=: \t"):
            raise ConfigError(f"{path}:{number}: expected key=value, got the key {key!r} alone")
        props[key] = value
    return props


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, joined text) of each non-comment logical line of a properties file."""
    out: list[tuple[int, str]] = []
    pending: str | None = None
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.lstrip()
        if pending is None:
            if not line or line[0] in "#!":
                continue
            start, pending = number, ""
        trailing = len(line) - len(line.rstrip("\\"))
        if trailing % 2 == 1:  # continues on the next line
            pending += line[:-1]
            continue
        out.append((start, pending + line))
        pending = None
    if pending:
        out.append((start, pending))
    return out


_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}


def _unescape(text: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt == "u" and i + 6 <= len(text):
                try:
                    out.append(chr(int(text[i + 2 : i + 6], 16)))
                    i += 6
                    continue
                except ValueError:
                    pass
            out.append(_ESCAPES.get(nxt, nxt))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _split_property(line: str) -> tuple[str, str]:
    """Key and value of one logical properties line (first unescaped `=`, `:` or whitespace)."""
    i = 0
    while i < len(line):
        ch = line[i]
        if ch == "\\":
            i += 2
            continue
        if ch in "=: \t\f":
            break
        i += 1
    key, rest = line[:i], line[i:]
    rest = rest.lstrip(" \t\f")
    if rest[:1] in ("=", ":"):
        rest = rest[1:].lstrip(" \t\f")
    return _unescape(key), _unescape(rest)


def resolve_settings(
    settings: FreightSettings | None, *, bootstrap: str | None = None, registry_url: str | None = None
) -> FreightSettings:
    """The settings a component uses: `settings` (or the environment's), with `bootstrap` / `registry_url`
    winning when given, so an argument is never silently ignored."""
    if settings is None:
        return load_settings(kafka_bootstrap=bootstrap, schema_registry_url=registry_url)
    update = {k: v for k, v in (("kafka_bootstrap", bootstrap), ("schema_registry_url", registry_url)) if v}
    return settings.model_copy(update=update) if update else settings


def load_settings(**overrides: Any) -> FreightSettings:
    """Settings with the given non-None arguments taking precedence over the environment."""
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return FreightSettings(**given)
    except ValidationError as exc:
        raise ConfigError(f"invalid Freight settings: {describe_validation_error(exc)}") from None
    except ValueError as exc:
        raise ConfigError(f"invalid Freight settings: {redact_text(str(exc))}") from None


def describe_validation_error(exc: ValidationError) -> str:
    """What was wrong, field by field, without echoing the input (it may hold a password)."""
    parts = []
    for err in exc.errors(include_input=False, include_url=False):
        where = ".".join(str(p) for p in err.get("loc", ())) or "settings"
        env = f"FREIGHT_{where.upper()} ({where})" if where != "settings" else where
        parts.append(f"{env}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)
