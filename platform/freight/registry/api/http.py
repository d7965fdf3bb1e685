"""HTTP conventions of the registry: media type, error bodies, and the one table from problems to codes.

Every error is `{"error_code", "message"}` with Confluent's codes. `STATUS` maps each domain `Problem`
(raised by the planner and the service) to its HTTP status and error code; FastAPI's own validation errors
are mapped here too: malformed JSON is 400, a body of the wrong shape 422 (42201 for schema requests, 42203
for config, 42204 for mode), and an unexpected exception 500 / 50001, so the server keeps serving.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response
from starlette.routing import Match

from freight.registry.errors import Problem, RegistryError
from freight.registry.models import ErrorMessage

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/vnd.schemaregistry.v1+json"
HEALTH_PATH = "/freight/health"
METRICS_PATH = "/metrics"  # Prometheus text format, always on (freight.metrics)

#: The one table: each domain problem's HTTP status and Confluent error code.
STATUS: dict[Problem, tuple[int, int]] = {
    Problem.SUBJECT_NOT_FOUND: (404, 40401),
    Problem.VERSION_NOT_FOUND: (404, 40402),
    Problem.SCHEMA_NOT_FOUND: (404, 40403),
    Problem.SUBJECT_SOFT_DELETED: (404, 40404),
    Problem.SUBJECT_NOT_SOFT_DELETED: (404, 40405),
    Problem.VERSION_SOFT_DELETED: (404, 40406),
    Problem.VERSION_NOT_SOFT_DELETED: (404, 40407),
    Problem.SUBJECT_LEVEL_NOT_SET: (404, 40408),
    Problem.SUBJECT_MODE_NOT_SET: (404, 40409),
    Problem.INCOMPATIBLE_SCHEMA: (409, 409),
    Problem.INVALID_SCHEMA: (422, 42201),
    Problem.INVALID_VERSION: (422, 42202),
    Problem.INVALID_COMPATIBILITY: (422, 42203),
    Problem.INVALID_MODE: (422, 42204),
    Problem.NOT_PERMITTED: (422, 42205),
    Problem.REFERENCE_EXISTS: (422, 42206),
    Problem.ID_MISMATCH: (422, 42207),
    Problem.INVALID_SUBJECT: (422, 42208),
    Problem.SCHEMA_TOO_LARGE: (422, 42209),
    Problem.STORE_ERROR: (500, 50001),
    Problem.TIMEOUT: (500, 50002),
}

#: OpenAPI descriptions of the error answers, for the routes' `responses=`.
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorMessage, "description": text}
    for code, text in (
        (400, "Malformed JSON or an invalid query parameter (400)"),
        (404, "Not found (40401-40409)"),
        (422, "Invalid request (422xx)"),
        (500, "Store error (500xx)"),
    )
}


#: Every route may answer 400 (an invalid query value, malformed JSON): documented on every router.
BAD_REQUEST: dict[int | str, dict[str, Any]] = {400: ERRORS[400]}


class RegistryJSONResponse(JSONResponse):
    """JSON in the registry's media type, compact, non-ASCII kept as is (as Confluent's server sends it)."""

    media_type = MEDIA_TYPE

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()


def error_response(
    status: int, error_code: int, message: str, headers: dict[str, str] | None = None
) -> Response:
    """A Confluent error body with `status`."""
    return RegistryJSONResponse({"error_code": error_code, "message": message}, status, headers=headers)


def problem_response(exc: RegistryError) -> Response:
    """The answer to a domain error, by the table."""
    status, code = STATUS[exc.problem]
    return error_response(status, code, exc.message)


def validation_response(request: Request, exc: RequestValidationError) -> Response:
    """Map FastAPI's validation errors to Confluent's codes."""
    problems = exc.errors()
    if any(p.get("type") == "json_invalid" for p in problems):
        return error_response(400, 400, "Malformed JSON in the request body; send a JSON object")
    where = "; ".join(
        f"{'.'.join(str(x) for x in p.get('loc', ()))}: {p.get('msg', 'invalid')}" for p in problems[:5]
    )
    path = request.url.path
    in_body = any(p.get("loc", ("",))[0] == "body" for p in problems)
    in_path = any(p.get("loc", ("",))[0] == "path" for p in problems)
    if in_path and path.startswith("/schemas/ids/"):
        return error_response(404, 40403, f"Schema not found: the id must be an integer ({where})")
    if in_body and path.startswith("/config"):
        return error_response(422, 42203, f"Invalid compatibility level request: {where}")
    if in_body and path.startswith("/mode"):
        return error_response(422, 42204, f"Invalid mode request: {where}")
    if in_body:
        return error_response(422, 42201, f"Invalid schema request: {where}")
    return error_response(400, 400, f"Invalid request parameter: {where}")


def allowed_methods(app: FastAPI, request: Request) -> list[str]:
    """Every method some route of `app` serves at the request's path."""
    methods: set[str] = set()
    for route in app.router.routes:
        match, _ = route.matches({**request.scope, "method": "GET"})
        if match is not Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


def install_error_handlers(app: FastAPI) -> None:
    """Answer every failure with a Confluent error body: domain problems, validation, HTTP and the rest."""

    @app.exception_handler(RegistryError)
    async def _registry_error(_request: Request, exc: RegistryError) -> Response:
        return problem_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        return validation_response(request, exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        headers = dict(exc.headers) if exc.headers else None
        if exc.status_code == 405:  # RFC 9110: list every method the path has (one route per method here)
            headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(app, request))}
        return error_response(
            exc.status_code, exc.status_code, f"HTTP {exc.status_code}: {exc.detail}", headers=headers
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error serving %s %s", request.method, request.url.path)
        return error_response(500, 50001, f"Internal error in the registry: {type(exc).__name__}: {exc}")
