"""The `/compatibility` routes: check a schema against one version or a whole subject."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from freight.registry.api.http import BAD_REQUEST, ERRORS, RegistryJSONResponse
from freight.registry.api.params import (
    Subject,
    Version,
)
from freight.registry.api.writes import WriteRelay
from freight.registry.models import (
    CompatibilityResponse,
    RegisterSchemaRequest,
)
from freight.registry.service import RegistryService


def router(service: RegistryService, write: WriteRelay) -> APIRouter:
    """The routes of this resource over `service` (writes go through `write`)."""
    r = APIRouter(responses=BAD_REQUEST)

    @r.post(
        "/compatibility/subjects/{subject}/versions/{version}",
        response_model=CompatibilityResponse,
        responses=ERRORS,
        summary="Check against one version",
    )
    def compatibility_version(
        subject: Subject,
        version: Version,
        body: RegisterSchemaRequest,
        verbose: bool = False,
        normalize: bool = False,
    ) -> Response:
        return RegistryJSONResponse(service.check_compatibility(subject, version, body, verbose=verbose))

    @r.post(
        "/compatibility/subjects/{subject}/versions",
        response_model=CompatibilityResponse,
        responses=ERRORS,
        summary="Check against the subject's versions (as registration would)",
    )
    def compatibility_subject(
        subject: Subject, body: RegisterSchemaRequest, verbose: bool = False, normalize: bool = False
    ) -> Response:
        return RegistryJSONResponse(service.check_compatibility(subject, None, body, verbose=verbose))

    return r
