"""Options shared by the commands: service addresses, `--json`, and settings built from them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from freight.config import FreightSettings, load_settings

Bootstrap = Annotated[
    str | None,
    typer.Option("--bootstrap", "-b", help="Kafka bootstrap servers (default: FREIGHT_KAFKA_BOOTSTRAP)."),
]
RegistryUrl = Annotated[
    str | None,
    typer.Option("--registry", help="Schema Registry URL (default: FREIGHT_SCHEMA_REGISTRY_URL)."),
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
CommandConfig = Annotated[
    Path | None,
    typer.Option(
        "--command-config",
        metavar="FILE",
        help="Kafka client properties (a Java .properties file, as Kafka's tools take; "
        "default: FREIGHT_KAFKA_CONFIG_FILE).",
    ),
]

LegacyRegistryUrl = Annotated[
    str | None, typer.Option("--url", hidden=True, help="Old name of --registry (kept working).")
]
RegistryCa = Annotated[
    Path | None,
    typer.Option(
        "--registry-ca",
        metavar="FILE",
        help="CA certificates (PEM) of an https registry (default: FREIGHT_SCHEMA_REGISTRY_CA_FILE).",
    ),
]
RegistryCert = Annotated[
    Path | None,
    typer.Option(
        "--registry-cert",
        metavar="FILE",
        help="Client certificate (PEM) for a registry that requires one (default: "
        "FREIGHT_SCHEMA_REGISTRY_CERT_FILE).",
    ),
]
RegistryKey = Annotated[
    Path | None,
    typer.Option(
        "--registry-key",
        metavar="FILE",
        help="Its private key (PEM), if not in the certificate file "
        "(default: FREIGHT_SCHEMA_REGISTRY_KEY_FILE).",
    ),
]


def settings_from(
    bootstrap: str | None = None,
    registry: str | None = None,
    *,
    command_config: Path | None = None,
    registry_ca: Path | None = None,
    registry_cert: Path | None = None,
    registry_key: Path | None = None,
) -> FreightSettings:
    """Settings with the command-line values taking precedence over the environment.

    Args:
        bootstrap: `--bootstrap`.
        registry: `--registry`.
        registry_ca: `--registry-ca`, registry_cert: `--registry-cert`, registry_key: `--registry-key`: TLS
            files for an https registry (checked here).
        command_config: `--command-config`: the Kafka client properties file (read and checked here, so a
            missing file or a malformed line is a clear error before anything connects).

    Returns:
        The settings.
    """
    settings = load_settings(
        kafka_bootstrap=bootstrap,
        schema_registry_url=registry,
        kafka_config_file=command_config,
        schema_registry_ca_file=registry_ca,
        schema_registry_cert_file=registry_cert,
        schema_registry_key_file=registry_key,
    )
    settings.registry_ssl_context()
    if command_config is not None:
        from freight.config import read_properties_file

        read_properties_file(command_config)
    return settings


def parse_pairs(pairs: list[str] | None, what: str) -> dict[str, str]:
    """Parse repeated `key=value` options; a malformed one is a clear error."""
    from freight.errors import ConfigError

    out: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{what} expects key=value, got {pair!r}")
        out[key.strip()] = value.strip()
    return out
