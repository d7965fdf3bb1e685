"""The `/schemas` routes: schemas by id, the list of all schemas, and the supported schema types."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.responses import Response

from freight.registry.api.http import BAD_REQUEST, ERRORS, MEDIA_TYPE
from freight.registry.api.params import (
    Deleted,
    Format,
    SchemaId,
    SubjectPrefix,
)
from freight.registry.api.writes import WriteRelay
from freight.registry.errors import RegistryError
from freight.registry.models import (
    SchemaResponse,
    SubjectVersion,
)
from freight.registry.planner import SCHEMA_TYPES
from freight.registry.service import RegistryService


def router(service: RegistryService, write: WriteRelay) -> APIRouter:
    """The routes of this resource over `service` (writes go through `write`)."""
    r = APIRouter(responses=BAD_REQUEST)

    @r.get(
        "/schemas/ids/{schema_id}", response_model=SchemaResponse, responses=ERRORS, summary="Schema by id"
    )
    def schema_by_id(
        schema_id: SchemaId,
        subject: str | None = None,
        fetch_max_id: Annotated[bool, Query(alias="fetchMaxId")] = False,
        format: Format = None,
    ) -> Response:
        return Response(service.schema_by_id_json(schema_id, format), media_type=MEDIA_TYPE)

    @r.get("/schemas/ids/{schema_id}/schema", responses=ERRORS, summary="Schema text by id")
    def schema_text_by_id(schema_id: SchemaId) -> Response:
        return Response(service.schema_text_by_id(schema_id), media_type=MEDIA_TYPE)

    @r.get("/schemas/ids/{schema_id}/subjects", response_model=list[str], responses=ERRORS)
    def subjects_by_id(schema_id: SchemaId, deleted: Deleted = False) -> list[str]:
        return service.subjects_for_id(schema_id, deleted=deleted)

    @r.get("/schemas/ids/{schema_id}/versions", response_model=list[SubjectVersion], responses=ERRORS)
    def versions_by_id(schema_id: SchemaId, deleted: Deleted = False) -> list[dict[str, Any]]:
        return service.versions_for_id(schema_id, deleted=deleted)

    @r.get("/schemas", responses=ERRORS, summary="List schemas: every version, or the latest per subject")
    def list_schemas(
        subject_prefix: SubjectPrefix = "",
        deleted: Deleted = False,
        latest_only: Annotated[bool, Query(alias="latestOnly")] = False,
        offset: int = 0,
        limit: int = -1,
    ) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for subject in service.list_subjects(
            prefix=subject_prefix, deleted=deleted, deleted_only=False, offset=0, limit=-1
        ):
            try:
                versions = service.list_versions(subject, deleted=deleted)
            except RegistryError:  # every version deleted meanwhile
                continue
            for version in versions[-1:] if latest_only else versions:
                found.append(service.get_version(subject, str(version), deleted=deleted))
        end = None if limit < 0 else offset + limit
        return found[max(offset, 0) : end]

    @r.get("/schemas/types", response_model=list[str], summary="Supported schema types: AVRO, JSON, PROTOBUF")
    def schema_types() -> list[str]:
        return list(SCHEMA_TYPES)

    return r
