"""`freight schemas register | list | get | versions | check | config | delete`: the registry from a shell.

A SCHEMA argument is a path to a schema file (.avsc; .json with --type JSON; .proto with --type PROTOBUF)
or the name of a schema Freight ships (object_event, store_config). Every command talks to --registry
(default FREIGHT_SCHEMA_REGISTRY_URL, with FREIGHT_SCHEMA_REGISTRY_AUTH) and prints a table, or JSON with
--json. A registry error exits with code 7 (schema error) and names the registry's error code; an
unreachable registry exits with code 3.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from freight.cli.common import (
    LegacyRegistryUrl,
    RegistryCa,
    RegistryCert,
    RegistryKey,
    RegistryUrl,
    settings_from,
)
from freight.errors import ConfigError
from freight.output import console, print_json, print_kv, print_table

if TYPE_CHECKING:
    from freight.registry.client import RegistryClient

GROUP = "schemas"
app = typer.Typer(
    help="Register, inspect, check and delete schemas in the schema registry.", no_args_is_help=True
)

Json = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
SchemaArg = Annotated[
    str,
    typer.Argument(
        help="A schema file (.avsc, .json, .proto), or a shipped schema name (object_event, store_config)."
    ),
]


def _client(url: str | None, tls: tuple[Path | None, Path | None, Path | None]) -> RegistryClient:
    """A client of `--registry` (else FREIGHT_SCHEMA_REGISTRY_URL) with the TLS files given."""
    from freight.registry.client import RegistryClient

    ca, cert, key = tls
    settings = settings_from(registry=url, registry_ca=ca, registry_cert=cert, registry_key=key)
    return RegistryClient.from_settings(settings)


def _schema_text(source: str) -> str:
    """The schema text of a file path or a shipped schema name."""
    from freight.errors import ConfigError
    from freight.schemas import available, schema_text

    path = Path(source)
    if path.is_file():
        try:
            return path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read schema file {path}: {exc.strerror}") from None
    if source in available():
        return schema_text(source)
    raise ConfigError(
        f"{source!r} is neither a file nor a shipped schema; give a path to a schema file (.avsc, .json, "
        ".proto) or one of: "
        f"{', '.join(available())}"
    )


def _references(specs: list[str]) -> list[dict[str, Any]]:
    from freight.errors import ConfigError

    out = []
    for spec in specs:
        name, sep, rest = spec.partition("=")
        subject, sep2, version = rest.rpartition(":")
        if not (sep and sep2 and name and subject and version.isdigit()):
            raise ConfigError(
                f"--reference expects name=subject:version (e.g. freight.v1.Ref=refs-value:1), got {spec!r}"
            )
        out.append({"name": name, "subject": subject, "version": int(version)})
    return out


SchemaType = Annotated[
    str,
    typer.Option("--type", "-t", metavar="AVRO|JSON|PROTOBUF", help="The schema's type (default AVRO)."),
]


def _type(value: str) -> str:
    kind = value.strip().upper()
    if kind not in ("AVRO", "JSON", "PROTOBUF"):
        raise ConfigError(
            f"--type {value!r}: the registry serves AVRO, JSON and PROTOBUF schemas (--type PROTOBUF takes "
            "a .proto file)"
        )
    return kind


@app.command("register")
def register_cmd(
    subject: Annotated[str, typer.Argument(help="Subject, e.g. <topic>-value.")],
    schema: SchemaArg,
    reference: Annotated[
        list[str] | None,
        typer.Option("--reference", help="A schema reference name=subject:version (repeatable)."),
    ] = None,
    schema_type: SchemaType = "AVRO",
    registry: RegistryUrl = None,
    url: LegacyRegistryUrl = None,
    registry_ca: RegistryCa = None,
    registry_cert: RegistryCert = None,
    registry_key: RegistryKey = None,
    json_: Json = False,
) -> None:
    """Register a schema under a subject (an equal schema keeps its id and version)."""
    with _client(registry or url, (registry_ca, registry_cert, registry_key)) as client:
        result = client.register(
            subject, _schema_text(schema), _references(reference or []), _type(schema_type)
        )
    doc = {"subject": subject, "id": result["id"], "version": result.get("version")}
    if json_:
        print_json(doc)
    else:
        print_kv(f"Registered under {subject}", {"id": doc["id"], "version": doc["version"]})


@app.command("list")
def list_cmd(
    prefix: Annotated[str, typer.Option(help="Only subjects starting with this.")] = "",
    deleted: Annotated[bool, typer.Option(help="Include soft-deleted subjects and versions.")] = False,
    registry: RegistryUrl = None,
    url: LegacyRegistryUrl = None,
    registry_ca: RegistryCa = None,
    registry_cert: RegistryCert = None,
    registry_key: RegistryKey = None,
    json_: Json = False,
) -> None:
    """List subjects with their versions."""
    with _client(registry or url, (registry_ca, registry_cert, registry_key)) as client:
        rows = [
            {"subject": s, "versions": client.versions(s, deleted=deleted)}
            for s in client.subjects(prefix=prefix, deleted=deleted)
        ]
    if json_:
        print_json({"subjects": rows})
    elif not rows:
        console.print("no subjects registered" + (f" with prefix {prefix!r}" if prefix else ""))
    else:
        print_table(
            "Subjects",
            ["subject", "versions", "latest"],
            [(r["subject"], len(r["versions"]), r["versions"][-1]) for r in rows],
        )


@app.command("get")
def get_cmd(
    subject: Annotated[str | None, typer.Argument(help="Subject (omit with --id).")] = None,
    version: Annotated[str, typer.Argument(help='Version number or "latest".')] = "latest",
    schema_id: Annotated[
        int | None, typer.Option("--id", help="Get a schema by its global id instead.")
    ] = None,
    deleted: Annotated[bool, typer.Option(help="Also find soft-deleted versions.")] = False,
    registry: RegistryUrl = None,
    url: LegacyRegistryUrl = None,
    registry_ca: RegistryCa = None,
    registry_cert: RegistryCert = None,
    registry_key: RegistryKey = None,
    json_: Json = False,
) -> None:
    """Show a version of a subject (or a schema by id), with the schema pretty-printed."""
    from freight.errors import ConfigError

    if (subject is None) == (schema_id is None):
        raise ConfigError("give a SUBJECT (and optional VERSION) or --id ID, not both")
    with _client(registry or url, (registry_ca, registry_cert, registry_key)) as client:
        doc = (
            client.schema_by_id(schema_id)
            if schema_id is not None
            else client.version(subject or "", version, deleted=deleted)
        )
    if json_:
        print_json(doc)
        return
    meta = {k: v for k, v in doc.items() if k not in ("schema", "references")}
    if doc.get("references"):
        meta["references"] = ", ".join(
            f"{r['name']}={r['subject']}:{r['version']}" for r in doc["references"]
        )
    print_kv("Schema", meta)
    console.print_json(doc["schema"])


@app.command("versions")
def versions_cmd(
    subject: Annotated[str, typer.Argument(help="Subject.")],
    deleted: Annotated[bool, typer.Option(help="Include soft-deleted versions.")] = False,
    registry: RegistryUrl = None,
    url: LegacyRegistryUrl = None,
    registry_ca: RegistryCa = None,
    registry_cert: RegistryCert = None,
    registry_key: RegistryKey = None,
    json_: Json = False,
) -> None:
    """List the versions of a subject, with their ids."""
    with _client(registry or url, (registry_ca, registry_cert, registry_key)) as client:
        rows = [
            client.version(subject, str(v), deleted=True) for v in client.versions(subject, deleted=deleted)
        ]
        live = set(client.versions(subject, deleted=False)) if deleted else {r["version"] for r in rows}
    data = [{"version": r["version"], "id": r["id"], "deleted": r["version"] not in live} for r in rows]
    if json_:
        print_json({"subject": subject, "versions": data})
    else:
        print_table(
            f"Versions of {subject}",
            ["version", "id", "deleted"],
            [(d["version"], d["id"], d["deleted"]) for d in data],
        )


@app.command("check")
def check_cmd(
    subject: Annotated[str, typer.Argument(help="Subject to check against.")],
    schema: SchemaArg,
    version: Annotated[
        str | None, typer.Option(help="Check against this version only (default: as registration would).")
    ] = None,
    schema_type: SchemaType = "AVRO",
    registry: RegistryUrl = None,
    url: LegacyRegistryUrl = None,
    registry_ca: RegistryCa = None,
    registry_cert: RegistryCert = None,
    registry_key: RegistryKey = None,
    json_: Json = False,
) -> None:
    """Would this schema be accepted? Prints the reasons if not, and exits 7."""
    with _client(registry or url, (registry_ca, registry_cert, registry_key)) as client:
        result = client.check(subject, _schema_text(schema), version, _type(schema_type))
        level = client.compatibility(subject)
    doc = {"subject": subject, "version": version, "compatibility": level, **result}
    if json_:
        print_json(doc)
    elif result["is_compatible"]:
        console.print(f"compatible with {subject} ({level})")
    else:
        console.print(f"[bold red]incompatible[/] with {subject} ({level}):")
        for message in result.get("messages") or []:
            console.print(f"  - {message}", highlight=False, soft_wrap=True)
    if not result["is_compatible"]:
        raise typer.Exit(7)


@app.command("config")
def config_cmd(
    subject: Annotated[str | None, typer.Argument(help="Subject (omit for the global settings).")] = None,
    level: Annotated[
        str | None, typer.Option(help="Set the compatibility level (NONE, BACKWARD, ...).")
    ] = None,
    mode: Annotated[str | None, typer.Option(help="Set the mode (READWRITE, READONLY, IMPORT).")] = None,
    reset: Annotated[
        bool, typer.Option(help="Drop the compatibility level (back to the global/default).")
    ] = False,
    force: Annotated[bool, typer.Option(help="Allow IMPORT mode while schemas exist.")] = False,
    registry: RegistryUrl = None,
    url: LegacyRegistryUrl = None,
    registry_ca: RegistryCa = None,
    registry_cert: RegistryCert = None,
    registry_key: RegistryKey = None,
    json_: Json = False,
) -> None:
    """Show or change the compatibility level and mode (of a subject, or global)."""
    with _client(registry or url, (registry_ca, registry_cert, registry_key)) as client:
        if reset:
            client.reset_compatibility(subject)
        if level is not None:
            client.set_compatibility(subject, level)
        if mode is not None:
            client.set_mode(subject, mode, force=force)
        doc = {
            "subject": subject,
            "compatibility": client.compatibility(subject),
            "mode": client.mode(subject),
        }
    if json_:
        print_json(doc)
    else:
        print_kv(
            f"Settings of {subject or 'the registry (global)'}",
            {"compatibility": doc["compatibility"], "mode": doc["mode"]},
        )


@app.command("delete")
def delete_cmd(
    subject: Annotated[str, typer.Argument(help="Subject.")],
    version: Annotated[
        str | None, typer.Option(help='Delete only this version (a number or "latest").')
    ] = None,
    permanent: Annotated[
        bool, typer.Option(help="Hard delete (after a soft delete): ids stop resolving; cannot be undone.")
    ] = False,
    registry: RegistryUrl = None,
    url: LegacyRegistryUrl = None,
    registry_ca: RegistryCa = None,
    registry_cert: RegistryCert = None,
    registry_key: RegistryKey = None,
    json_: Json = False,
) -> None:
    """Soft-delete a subject or one version; --permanent removes what was soft-deleted."""
    with _client(registry or url, (registry_ca, registry_cert, registry_key)) as client:
        versions = client.delete(subject, version, permanent=permanent)
    doc = {"subject": subject, "deleted_versions": versions, "permanent": permanent}
    if json_:
        print_json(doc)
    else:
        kind = (
            "permanently deleted" if permanent else "soft-deleted (ids still resolve; --permanent to remove)"
        )
        console.print(f"{subject}: versions {', '.join(map(str, versions))} {kind}", highlight=False)
