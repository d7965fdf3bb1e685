"""Routes of the instance itself: `/` and `/contexts` (as Confluent's), Freight's `/freight/status` and
`/freight/health`, and `/metrics`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from freight import metrics
from freight.registry.api.http import (
    BAD_REQUEST,
    HEALTH_PATH,
    METRICS_PATH,
    RegistryJSONResponse,
    error_response,
)
from freight.registry.api.writes import WriteRelay
from freight.registry.models import (
    StatusResponse,
)
from freight.registry.service import RegistryService


def router(service: RegistryService, write: WriteRelay) -> APIRouter:
    """The routes of this resource over `service` (writes go through `write`)."""
    r = APIRouter(responses=BAD_REQUEST)

    @r.get("/", summary="Root (empty object)")
    def root() -> dict[str, Any]:
        return {}

    @r.get("/contexts", response_model=list[str], summary="Schema contexts (only the default one)")
    def contexts() -> list[str]:
        return ["."]

    @r.get(
        "/freight/status", response_model=StatusResponse, summary="Freight: instance, writer, log position"
    )
    def status() -> dict[str, Any]:
        return service.status()

    @r.get(METRICS_PATH, include_in_schema=False)
    def metrics_endpoint() -> Response:
        """Prometheus metrics of this process (behind the same auth as the API)."""
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    @r.get(HEALTH_PATH, summary="Freight: liveness (no auth)")
    def health() -> Response:
        if not service.reader.alive:
            return error_response(503, 50301, "the log reader has stopped; restart this instance")
        return RegistryJSONResponse({"status": "ok", "instance": service.instance})

    return r
