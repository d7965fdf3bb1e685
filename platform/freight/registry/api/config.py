"""The `/config` routes: the global and per-subject compatibility levels."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from freight.registry.api.http import BAD_REQUEST, ERRORS, RegistryJSONResponse
from freight.registry.api.params import (
    DefaultToGlobal,
    Subject,
)
from freight.registry.api.writes import WriteRelay
from freight.registry.models import (
    ConfigResponse,
    ConfigUpdateRequest,
)
from freight.registry.service import RegistryService


def router(service: RegistryService, write: WriteRelay) -> APIRouter:
    """The routes of this resource over `service` (writes go through `write`)."""
    r = APIRouter(responses=BAD_REQUEST)

    @r.get("/config", response_model=ConfigResponse, summary="Global compatibility level")
    def get_global_config(default_to_global: DefaultToGlobal = False) -> Response:
        return RegistryJSONResponse(service.get_config(None))

    @r.put("/config", response_model=ConfigResponse, responses=ERRORS, summary="Set the global level")
    async def put_global_config(request: Request, body: ConfigUpdateRequest) -> Response:
        level = body.compatibility or body.compatibility_level
        return await write(
            request,
            lambda fwd: service.set_config(
                None, level, normalize=body.normalize, unsupported=body.unsupported(), forwarded=fwd
            ),
        )

    @r.delete("/config", response_model=ConfigResponse, responses=ERRORS, summary="Reset the global level")
    async def delete_global_config(request: Request) -> Response:
        return await write(request, lambda fwd: service.delete_config(None, forwarded=fwd))

    @r.get("/config/{subject}", response_model=ConfigResponse, responses=ERRORS, summary="Subject level")
    def get_subject_config(subject: Subject, default_to_global: DefaultToGlobal = False) -> Response:
        return RegistryJSONResponse(service.get_config(subject, default_to_global=default_to_global))

    @r.put(
        "/config/{subject}", response_model=ConfigResponse, responses=ERRORS, summary="Set a subject level"
    )
    async def put_subject_config(request: Request, subject: Subject, body: ConfigUpdateRequest) -> Response:
        level = body.compatibility or body.compatibility_level
        return await write(
            request,
            lambda fwd: service.set_config(
                subject, level, normalize=body.normalize, unsupported=body.unsupported(), forwarded=fwd
            ),
        )

    @r.delete(
        "/config/{subject}", response_model=ConfigResponse, responses=ERRORS, summary="Drop a subject level"
    )
    async def delete_subject_config(request: Request, subject: Subject) -> Response:
        return await write(request, lambda fwd: service.delete_config(subject, forwarded=fwd))

    return r
