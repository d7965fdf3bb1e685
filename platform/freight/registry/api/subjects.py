"""The `/subjects` routes: list, register, look up, read and delete subjects and their versions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from freight.registry.api.http import (
    BAD_REQUEST,
    ERRORS,
    MEDIA_TYPE,
    RegistryJSONResponse,
    error_response,
)
from freight.registry.api.params import (
    Deleted,
    DeletedOnly,
    DeletedOnlySnake,
    Format,
    Subject,
    SubjectPrefix,
    Version,
)
from freight.registry.api.writes import WriteRelay
from freight.registry.models import (
    ErrorMessage,
    RegisterSchemaRequest,
    RegisterSchemaResponse,
    SchemaResponse,
)
from freight.registry.service import RegistryService


def router(service: RegistryService, write: WriteRelay) -> APIRouter:
    """The routes of this resource over `service` (writes go through `write`)."""
    r = APIRouter(responses=BAD_REQUEST)

    @r.get("/subjects", response_model=list[str], summary="List subjects")
    def list_subjects(
        subject_prefix: SubjectPrefix = "",
        deleted: Deleted = False,
        deleted_only: DeletedOnly = False,
        deleted_only_snake: DeletedOnlySnake = False,
        offset: int = 0,
        limit: int = -1,
    ) -> list[str]:
        return service.list_subjects(
            prefix=subject_prefix,
            deleted=deleted,
            deleted_only=deleted_only or deleted_only_snake,
            offset=offset,
            limit=limit,
        )

    @r.get("/subjects/{subject}", response_model=list[int], responses=ERRORS, summary="Versions of a subject")
    def subject_versions_short(subject: Subject, deleted: Deleted = False) -> list[int]:
        return service.list_versions(subject, deleted=deleted)

    @r.post(
        "/subjects/{subject}", response_model=SchemaResponse, responses=ERRORS, summary="Look up a schema"
    )
    def lookup(
        subject: Subject, body: RegisterSchemaRequest, deleted: Deleted = False, normalize: bool = False
    ) -> Response:
        return RegistryJSONResponse(service.lookup(subject, body, deleted=deleted))

    @r.delete("/subjects/{subject}", response_model=list[int], responses=ERRORS, summary="Delete a subject")
    async def delete_subject(request: Request, subject: Subject, permanent: bool = False) -> Response:
        return await write(
            request, lambda fwd: service.delete_subject(subject, permanent=permanent, forwarded=fwd)
        )

    @r.get(
        "/subjects/{subject}/versions", response_model=list[int], responses=ERRORS, summary="List versions"
    )
    def list_versions(
        subject: Subject,
        deleted: Deleted = False,
        deleted_only: DeletedOnly = False,
        deleted_only_snake: DeletedOnlySnake = False,
        offset: int = 0,
        limit: int = -1,
    ) -> list[int]:
        return service.list_versions(
            subject,
            deleted=deleted,
            deleted_only=deleted_only or deleted_only_snake,
            offset=offset,
            limit=limit,
        )

    @r.post(
        "/subjects/{subject}/versions",
        response_model=RegisterSchemaResponse,
        responses={**ERRORS, 409: {"model": ErrorMessage, "description": "Incompatible schema"}},
        summary="Register a schema",
    )
    async def register(
        request: Request, subject: Subject, body: RegisterSchemaRequest, normalize: bool = False
    ) -> Response:
        existing = await run_in_threadpool(service.find_registered, subject, body)
        if existing is not None:
            return RegistryJSONResponse(existing)
        return await write(request, lambda fwd: service.register(subject, body, forwarded=fwd))

    @r.get(
        "/subjects/{subject}/versions/{version}",
        response_model=SchemaResponse,
        responses=ERRORS,
        summary="Get a version",
    )
    def get_version(
        subject: Subject, version: Version, deleted: Deleted = False, format: Format = None
    ) -> Response:
        return RegistryJSONResponse(service.get_version(subject, version, deleted=deleted, fmt=format))

    @r.delete(
        "/subjects/{subject}/versions/{version}",
        response_model=int,
        responses=ERRORS,
        summary="Delete a version",
    )
    async def delete_version(
        request: Request, subject: Subject, version: Version, permanent: bool = False
    ) -> Response:
        return await write(
            request, lambda fwd: service.delete_version(subject, version, permanent=permanent, forwarded=fwd)
        )

    @r.get(
        "/subjects/{subject}/versions/{version}/schema",
        responses=ERRORS,
        summary="The schema text of a version",
    )
    def get_version_schema(subject: Subject, version: Version, deleted: Deleted = False) -> Response:
        body = service.get_version(subject, version, deleted=deleted)
        return Response(body["schema"], media_type=MEDIA_TYPE)

    @r.get(
        "/subjects/{subject}/metadata",
        response_model=SchemaResponse,
        responses=ERRORS,
        summary="The newest version whose metadata has these properties",
    )
    def latest_with_metadata(
        subject: Subject,
        key: Annotated[list[str], Query(description="Metadata property names, in pairs with `value`")] = [],  # noqa: B006
        value: Annotated[list[str], Query(description="The values of the `key`s, in the same order")] = [],  # noqa: B006
        deleted: Deleted = False,
    ) -> Response:
        if len(key) != len(value):
            return error_response(
                400, 400, f"{len(key)} key parameter(s) but {len(value)} value(s): give one value per key"
            )
        wanted = dict(zip(key, value, strict=True))
        return RegistryJSONResponse(service.latest_with_metadata(subject, wanted, deleted=deleted))

    @r.get(
        "/subjects/{subject}/versions/{version}/referencedby",
        response_model=list[int],
        responses=ERRORS,
        summary="Ids of schemas that reference a version",
    )
    def referenced_by(subject: Subject, version: Version, deleted: Deleted = False) -> list[int]:
        return service.referenced_by(subject, version, deleted=deleted)

    return r
