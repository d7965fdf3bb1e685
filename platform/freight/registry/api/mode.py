"""The `/mode` routes: the global and per-subject modes (READWRITE, READONLY, IMPORT)."""

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
    ModeResponse,
    ModeUpdateRequest,
)
from freight.registry.service import RegistryService


def router(service: RegistryService, write: WriteRelay) -> APIRouter:
    """The routes of this resource over `service` (writes go through `write`)."""
    r = APIRouter(responses=BAD_REQUEST)

    @r.get("/mode", response_model=ModeResponse, summary="Global mode")
    def get_global_mode(default_to_global: DefaultToGlobal = False) -> Response:
        return RegistryJSONResponse(service.get_mode(None))

    @r.put("/mode", response_model=ModeResponse, responses=ERRORS, summary="Set the global mode")
    async def put_global_mode(request: Request, body: ModeUpdateRequest, force: bool = False) -> Response:
        return await write(request, lambda fwd: service.set_mode(None, body.mode, force=force, forwarded=fwd))

    @r.delete("/mode", response_model=ModeResponse, responses=ERRORS, summary="Reset the global mode")
    async def delete_global_mode(request: Request) -> Response:
        return await write(request, lambda fwd: service.delete_mode(None, forwarded=fwd))

    @r.get("/mode/{subject}", response_model=ModeResponse, responses=ERRORS, summary="Subject mode")
    def get_subject_mode(subject: Subject, default_to_global: DefaultToGlobal = False) -> Response:
        return RegistryJSONResponse(service.get_mode(subject, default_to_global=default_to_global))

    @r.put("/mode/{subject}", response_model=ModeResponse, responses=ERRORS, summary="Set a subject mode")
    async def put_subject_mode(
        request: Request, subject: Subject, body: ModeUpdateRequest, force: bool = False
    ) -> Response:
        return await write(
            request, lambda fwd: service.set_mode(subject, body.mode, force=force, forwarded=fwd)
        )

    @r.delete("/mode/{subject}", response_model=ModeResponse, responses=ERRORS, summary="Drop a subject mode")
    async def delete_subject_mode(request: Request, subject: Subject) -> Response:
        return await write(request, lambda fwd: service.delete_mode(subject, forwarded=fwd))

    return r
