"""Options shared by the commands: service addresses, `--json`, and settings built from them."""

from __future__ import annotations

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


def settings_from(bootstrap: str | None = None, registry: str | None = None) -> FreightSettings:
    """Settings with the command-line addresses taking precedence over the environment."""
    return load_settings(kafka_bootstrap=bootstrap, schema_registry_url=registry)


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
