"""`freight registry serve`: run a Confluent-compatible schema registry whose state is a Kafka topic."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from freight.cli.common import Bootstrap, CommandConfig, settings_from

GROUP = "registry"
app = typer.Typer(
    help="The schema registry server (state in the compacted _schemas topic).", no_args_is_help=True
)


@app.command("serve")
def serve_cmd(
    bootstrap: Bootstrap = None,
    command_config: CommandConfig = None,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="HTTP port.")] = 8081,
    topic: Annotated[str, typer.Option(help="The compacted, single-partition state topic.")] = "_schemas",
    advertised_url: Annotated[
        str | None, typer.Option(help="URL other instances forward writes to (default http://host:port).")
    ] = None,
    auth: Annotated[
        str | None,
        typer.Option(
            hidden=True,
            help="Refused with a password: it would show in the process list. Use --auth-file.",
        ),
    ] = None,
    auth_file: Annotated[
        Path | None,
        typer.Option(
            "--auth-file",
            help="Require HTTP basic auth; the file holds user:password (default: "
            "FREIGHT_SCHEMA_REGISTRY_AUTH). Never put a password on the command line.",
        ),
    ] = None,
    max_schema_bytes: Annotated[int, typer.Option(help="Largest schema accepted, in bytes.")] = 512 * 1024,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
    json_: Annotated[bool, typer.Option("--json", help="Log one JSON line per event for scripts.")] = False,
    log_file: Annotated[
        Path | None,
        typer.Option("--log-file", help="Log to this file, rotated at 10 MiB (3 kept), instead of stderr."),
    ] = None,
    read_timeout: Annotated[
        float, typer.Option(help="Seconds a client may pause while sending a request before it is closed.")
    ] = 10.0,
    max_connections: Annotated[
        int | None, typer.Option(help="Open connections at most; beyond, 503 (default: below the fd limit).")
    ] = None,
) -> None:
    """Replay the state topic, then serve the registry API and /metrics until interrupted (SIGINT/SIGTERM)."""
    from pydantic import SecretStr, ValidationError

    from freight.errors import ConfigError
    from freight.registry.options import RegistryOptions
    from freight.registry.server import serve

    _configure_logging(log_level, json_, log_file)
    settings = settings_from(bootstrap, command_config=command_config)
    if auth is not None:
        raise ConfigError(
            "--auth is refused: a password on the command line shows in the process list (ps). Put "
            "user:password in a file readable only by this user and pass --auth-file FILE, or set "
            "FREIGHT_SCHEMA_REGISTRY_AUTH in the environment"
        )
    secret = settings.schema_registry_auth
    if auth_file is not None:
        try:
            text = auth_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"cannot read --auth-file {auth_file}: {exc.strerror}") from None
        if ":" not in text:
            raise ConfigError(f"--auth-file {auth_file} must hold user:password on its first line")
        secret = SecretStr(text.splitlines()[0])
    try:
        options = RegistryOptions(
            host=host,
            port=port,
            topic=topic,
            advertised_url=advertised_url,
            auth=secret,
            max_schema_bytes=max_schema_bytes,
            read_timeout_s=read_timeout,
            max_connections=max_connections,
        )
    except ValidationError as exc:
        raise ConfigError(f"invalid registry option: {exc.errors()[0]['msg']}") from None
    logging.getLogger("freight.registry").info(
        "starting the schema registry on %s (Kafka %s, topic %s)",
        options.url,
        settings.kafka_bootstrap,
        topic,
    )
    serve(options, settings)


def _configure_logging(level: str, as_json: bool, log_file: Path | None = None) -> None:
    from freight.errors import ConfigError
    from freight.registry.guard import RepeatFilter

    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ConfigError(f"unknown --log-level {level!r}; use debug, info, warning or error")
    handler: logging.Handler
    if log_file is None:
        handler = logging.StreamHandler()
    else:
        from logging.handlers import RotatingFileHandler

        handler = RotatingFileHandler(log_file, maxBytes=10 * 2**20, backupCount=3, encoding="utf-8")
    handler.addFilter(RepeatFilter())  # a failing accept loop must not write a line per attempt
    handler.setFormatter(
        _JsonFormatter() if as_json else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    logging.basicConfig(level=numeric, handlers=[handler])
    logging.getLogger("freight.librdkafka").setLevel(logging.WARNING)


class _JsonFormatter(logging.Formatter):
    """One JSON object per log line."""

    def format(self, record: logging.LogRecord) -> str:
        import json

        doc = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            doc["error"] = self.formatException(record.exc_info)
        return json.dumps(doc)
