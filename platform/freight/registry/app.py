"""The HTTP API (FastAPI): Confluent Schema Registry's REST endpoints over `RegistryService`.

Responses are `application/vnd.schemaregistry.v1+json`; every error is `{"error_code", "message"}` with
Confluent's codes. A gate in front of the app checks basic auth, caps the request size, and reads any body
as JSON whatever its content type. Malformed JSON is 400, a body of the wrong shape 422 (42201 for schema
requests, 42203 for config, 42204 for mode), and an unexpected exception 500 / 50001 - the server keeps
serving in every case. Write endpoints relay to the instance that holds the writer role (see forward.py).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import unquote

from fastapi import FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import AfterValidator
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from freight import __version__, metrics
from freight.registry import errors
from freight.registry.errors import RegistryHTTPError, WriterMovedError
from freight.registry.forward import FORWARDED_HEADER, INSTANCE_HEADER, OFFSET_HEADER, Forwarder
from freight.registry.models import (
    CompatibilityResponse,
    ConfigResponse,
    ConfigUpdateRequest,
    ErrorMessage,
    ModeResponse,
    ModeUpdateRequest,
    RegisterSchemaRequest,
    RegisterSchemaResponse,
    SchemaResponse,
    StatusResponse,
    SubjectVersion,
)
from freight.registry.planner import SCHEMA_TYPES
from freight.registry.service import RegistryService, WriteResult

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/vnd.schemaregistry.v1+json"
HEALTH_PATH = "/freight/health"
METRICS_PATH = "/metrics"  # Prometheus text format, always on (freight.metrics)
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorMessage, "description": text}
    for code, text in (
        (404, "Not found (40401-40409)"),
        (422, "Invalid request (422xx)"),
        (500, "Store error (500xx)"),
    )
}


#: Stands for a "/" inside one path segment (a subject sent as %2F, as confluent's Protobuf serializer and
#: Karapace's tests do) while the router splits the path; `Subject` turns it back into "/".
SLASH_IN_SEGMENT = "\x1f"
Subject = Annotated[
    str,
    Path(description="Subject name (URL-encode a '/' in it as %2F)"),
    AfterValidator(lambda value: value.replace(SLASH_IN_SEGMENT, "/")),
]


def routable_path(scope: Scope) -> str:
    """The path the router should see: no trailing slash (Confluent serves `/subjects/` as `/subjects`),
    and a '/' encoded inside a segment kept inside that segment."""
    path: str = scope["path"]
    raw = scope.get("raw_path")
    if isinstance(raw, bytes) and b"%2f" in raw.lower():
        segments = raw.decode("latin-1").split("/")
        path = "/".join(unquote(s).replace("/", SLASH_IN_SEGMENT) for s in segments)
    if len(path) > 1 and path.endswith("/"):
        path = path.rstrip("/") or "/"
    return path


Version = Annotated[str, Path(description='A version number in [1, 2^31-1], "latest" or -1')]
Deleted = Annotated[bool, Query(description="Include soft-deleted entries")]
DeletedOnly = Annotated[bool, Query(alias="deletedOnly", description="Only soft-deleted entries")]
DeletedOnlySnake = Annotated[bool, Query(alias="deleted_only", description="Same as deletedOnly")]
DefaultToGlobal = Annotated[
    bool, Query(alias="defaultToGlobal", description="Fall back to the global setting")
]
SchemaId = Annotated[int, Path(description="Schema id")]


class RegistryJSONResponse(JSONResponse):
    media_type = MEDIA_TYPE

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()


def error_response(
    status: int, error_code: int, message: str, headers: dict[str, str] | None = None
) -> Response:
    return RegistryJSONResponse({"error_code": error_code, "message": message}, status, headers=headers)


class Gate:
    """ASGI middleware: basic auth, request size limit, JSON bodies whatever the content type."""

    def __init__(self, app: ASGIApp, *, instance: str, auth: str | None, max_body: int) -> None:
        self.app = app
        self.instance = instance.encode()
        self.max_body = max_body
        self.expected = None if auth is None else auth.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = routable_path(scope)
        if path != scope["path"]:
            scope = dict(scope)
            scope["path"] = path

        async def tagged_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (INSTANCE_HEADER.encode(), self.instance)]
            await send(message)

        if self.expected is not None and scope["path"] != HEALTH_PATH and not self._authorized(scope):
            response = error_response(
                401,
                401,
                "Unauthorized: send HTTP basic auth credentials (user:password)",
                headers={"WWW-Authenticate": 'Basic realm="freight-registry"'},
            )
            await response(scope, receive, tagged_send)
            return
        if scope["method"] not in ("POST", "PUT", "PATCH", "DELETE"):
            await self.app(scope, receive, tagged_send)
            return
        body = await self._read_body(scope, receive, tagged_send)
        if body is None:
            return
        scope = dict(scope)
        scope["headers"] = [(k, v) for k, v in scope["headers"] if k != b"content-type"] + [
            (b"content-type", b"application/json")
        ]
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, tagged_send)

    def _authorized(self, scope: Scope) -> bool:
        assert self.expected is not None
        for key, value in scope["headers"]:
            if key == b"authorization" and value[:6].lower() == b"basic ":
                try:
                    given = base64.b64decode(value[6:].strip(), validate=True)
                except (binascii.Error, ValueError):
                    return False
                return hmac.compare_digest(given, self.expected)
        return False

    async def _read_body(self, scope: Scope, receive: Receive, send: Send) -> bytes | None:
        for key, value in scope["headers"]:
            if key == b"content-length" and value.isdigit() and int(value) > self.max_body:
                await self._too_large(scope, receive, send)
                return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                await self._too_large(scope, receive, send)
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413,
            413,
            f"Request body is larger than {self.max_body} bytes (raise --max-schema-bytes to allow it)",
        )
        await response(scope, receive, send)


def _validation_error(request: Request, exc: RequestValidationError) -> Response:
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


def create_app(service: RegistryService) -> FastAPI:
    """The ASGI application of one registry instance (wrapped by `gated`)."""
    app = FastAPI(
        title="Freight Schema Registry",
        version=__version__,
        description="Confluent-compatible Schema Registry whose state is a compacted Kafka topic.",
        default_response_class=RegistryJSONResponse,
        docs_url=None,
        redoc_url=None,
    )
    forwarder = Forwarder(service.instance, service.options.write_timeout_s + 10)

    @app.exception_handler(RegistryHTTPError)
    async def _registry_error(_request: Request, exc: RegistryHTTPError) -> Response:
        return error_response(exc.status, exc.error_code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        return _validation_error(request, exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> Response:
        return error_response(exc.status_code, exc.status_code, f"HTTP {exc.status_code}: {exc.detail}")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error serving %s %s", request.method, request.url.path)
        return error_response(500, 50001, f"Internal error in the registry: {type(exc).__name__}: {exc}")

    async def write(request: Request, op: Callable[[bool], WriteResult]) -> Response:
        """Run a write here, or relay it to the instance that holds the writer role.

        `op(forwarded)` performs the write; a request relayed by another instance is never relayed again.
        """
        forwarded = FORWARDED_HEADER in request.headers
        for _attempt in range(3):
            target = None if forwarded else service.forward_target()
            if target is not None:
                relayed = await forwarder.forward(target, request)
                if relayed is not None:
                    offset = relayed.headers.get(OFFSET_HEADER)
                    if offset is not None and offset.isdigit():
                        await run_in_threadpool(
                            service.store.wait_for, int(offset) + 1, service.options.write_timeout_s
                        )
                    return Response(
                        relayed.content, relayed.status_code, headers=_relay_headers(relayed.headers)
                    )
                service.mark_unreachable(target)
            try:
                result = await run_in_threadpool(op, forwarded)
            except WriterMovedError:
                continue  # relay it to the instance that fenced us
            headers = {} if result.offset is None else {OFFSET_HEADER: str(result.offset)}
            return RegistryJSONResponse(result.result, headers=headers)
        raise errors.operation_timeout("the writer role kept moving between instances; retry the request")

    async def blocking(fn: Callable[[], Any]) -> Any:
        return await run_in_threadpool(fn)

    @app.get("/", summary="Root (empty object)")
    def root() -> dict[str, Any]:
        return {}

    @app.get("/subjects", response_model=list[str], summary="List subjects")
    def list_subjects(
        subject_prefix: Annotated[str, Query(alias="subjectPrefix")] = "",
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

    @app.get(
        "/subjects/{subject}", response_model=list[int], responses=ERRORS, summary="Versions of a subject"
    )
    def subject_versions_short(subject: Subject, deleted: Deleted = False) -> list[int]:
        return service.list_versions(subject, deleted=deleted)

    @app.post(
        "/subjects/{subject}", response_model=SchemaResponse, responses=ERRORS, summary="Look up a schema"
    )
    def lookup(
        subject: Subject, body: RegisterSchemaRequest, deleted: Deleted = False, normalize: bool = False
    ) -> Response:
        return RegistryJSONResponse(service.lookup(subject, body, deleted=deleted))

    @app.delete("/subjects/{subject}", response_model=list[int], responses=ERRORS, summary="Delete a subject")
    async def delete_subject(request: Request, subject: Subject, permanent: bool = False) -> Response:
        return await write(
            request, lambda fwd: service.delete_subject(subject, permanent=permanent, forwarded=fwd)
        )

    @app.get(
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

    @app.post(
        "/subjects/{subject}/versions",
        response_model=RegisterSchemaResponse,
        responses={**ERRORS, 409: {"model": ErrorMessage, "description": "Incompatible schema"}},
        summary="Register a schema",
    )
    async def register(
        request: Request, subject: Subject, body: RegisterSchemaRequest, normalize: bool = False
    ) -> Response:
        existing = await blocking(lambda: service.find_registered(subject, body))
        if existing is not None:
            return RegistryJSONResponse(existing)
        return await write(request, lambda fwd: service.register(subject, body, forwarded=fwd))

    @app.get(
        "/subjects/{subject}/versions/{version}",
        response_model=SchemaResponse,
        responses=ERRORS,
        summary="Get a version",
    )
    def get_version(subject: Subject, version: Version, deleted: Deleted = False) -> Response:
        return RegistryJSONResponse(service.get_version(subject, version, deleted=deleted))

    @app.delete(
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

    @app.get(
        "/subjects/{subject}/versions/{version}/schema",
        responses=ERRORS,
        summary="The schema text of a version",
    )
    def get_version_schema(subject: Subject, version: Version, deleted: Deleted = False) -> Response:
        body = service.get_version(subject, version, deleted=deleted)
        return Response(body["schema"], media_type=MEDIA_TYPE)

    @app.get(
        "/subjects/{subject}/versions/{version}/referencedby",
        response_model=list[int],
        responses=ERRORS,
        summary="Ids of schemas that reference a version",
    )
    def referenced_by(subject: Subject, version: Version, deleted: Deleted = False) -> list[int]:
        return service.referenced_by(subject, version, deleted=deleted)

    @app.get(
        "/schemas/ids/{schema_id}", response_model=SchemaResponse, responses=ERRORS, summary="Schema by id"
    )
    def schema_by_id(
        schema_id: SchemaId,
        subject: str | None = None,
        fetch_max_id: Annotated[bool, Query(alias="fetchMaxId")] = False,
    ) -> Response:
        return Response(service.schema_by_id_json(schema_id), media_type=MEDIA_TYPE)

    @app.get("/schemas/ids/{schema_id}/schema", responses=ERRORS, summary="Schema text by id")
    def schema_text_by_id(schema_id: SchemaId) -> Response:
        return Response(service.schema_text_by_id(schema_id), media_type=MEDIA_TYPE)

    @app.get("/schemas/ids/{schema_id}/subjects", response_model=list[str], responses=ERRORS)
    def subjects_by_id(schema_id: SchemaId, deleted: Deleted = False) -> list[str]:
        return service.subjects_for_id(schema_id, deleted=deleted)

    @app.get("/schemas/ids/{schema_id}/versions", response_model=list[SubjectVersion], responses=ERRORS)
    def versions_by_id(schema_id: SchemaId, deleted: Deleted = False) -> list[dict[str, Any]]:
        return service.versions_for_id(schema_id, deleted=deleted)

    @app.get("/schemas", responses=ERRORS, summary="List schemas: every version, or the latest per subject")
    def list_schemas(
        subject_prefix: Annotated[str, Query(alias="subjectPrefix")] = "",
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
            except RegistryHTTPError:  # every version deleted meanwhile
                continue
            for version in versions[-1:] if latest_only else versions:
                found.append(service.get_version(subject, str(version), deleted=deleted))
        end = None if limit < 0 else offset + limit
        return found[max(offset, 0) : end]

    @app.get("/schemas/types", response_model=list[str], summary="Supported schema types")
    def schema_types() -> list[str]:
        return list(SCHEMA_TYPES)

    @app.get("/contexts", response_model=list[str], summary="Schema contexts (only the default one)")
    def contexts() -> list[str]:
        return ["."]

    @app.get("/config", response_model=ConfigResponse, summary="Global compatibility level")
    def get_global_config(default_to_global: DefaultToGlobal = False) -> Response:
        return RegistryJSONResponse(service.get_config(None))

    @app.put("/config", response_model=ConfigResponse, responses=ERRORS, summary="Set the global level")
    async def put_global_config(request: Request, body: ConfigUpdateRequest) -> Response:
        level = body.compatibility or body.compatibility_level
        return await write(request, lambda fwd: service.set_config(None, level, forwarded=fwd))

    @app.delete("/config", response_model=ConfigResponse, responses=ERRORS, summary="Reset the global level")
    async def delete_global_config(request: Request) -> Response:
        return await write(request, lambda fwd: service.delete_config(None, forwarded=fwd))

    @app.get("/config/{subject}", response_model=ConfigResponse, responses=ERRORS, summary="Subject level")
    def get_subject_config(subject: Subject, default_to_global: DefaultToGlobal = False) -> Response:
        return RegistryJSONResponse(service.get_config(subject, default_to_global=default_to_global))

    @app.put(
        "/config/{subject}", response_model=ConfigResponse, responses=ERRORS, summary="Set a subject level"
    )
    async def put_subject_config(request: Request, subject: Subject, body: ConfigUpdateRequest) -> Response:
        level = body.compatibility or body.compatibility_level
        return await write(request, lambda fwd: service.set_config(subject, level, forwarded=fwd))

    @app.delete(
        "/config/{subject}", response_model=ConfigResponse, responses=ERRORS, summary="Drop a subject level"
    )
    async def delete_subject_config(request: Request, subject: Subject) -> Response:
        return await write(request, lambda fwd: service.delete_config(subject, forwarded=fwd))

    @app.post(
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

    @app.post(
        "/compatibility/subjects/{subject}/versions",
        response_model=CompatibilityResponse,
        responses=ERRORS,
        summary="Check against the subject's versions (as registration would)",
    )
    def compatibility_subject(
        subject: Subject, body: RegisterSchemaRequest, verbose: bool = False, normalize: bool = False
    ) -> Response:
        return RegistryJSONResponse(service.check_compatibility(subject, None, body, verbose=verbose))

    @app.get("/mode", response_model=ModeResponse, summary="Global mode")
    def get_global_mode(default_to_global: DefaultToGlobal = False) -> Response:
        return RegistryJSONResponse(service.get_mode(None))

    @app.put("/mode", response_model=ModeResponse, responses=ERRORS, summary="Set the global mode")
    async def put_global_mode(request: Request, body: ModeUpdateRequest, force: bool = False) -> Response:
        return await write(request, lambda fwd: service.set_mode(None, body.mode, force=force, forwarded=fwd))

    @app.delete("/mode", response_model=ModeResponse, responses=ERRORS, summary="Reset the global mode")
    async def delete_global_mode(request: Request) -> Response:
        return await write(request, lambda fwd: service.delete_mode(None, forwarded=fwd))

    @app.get("/mode/{subject}", response_model=ModeResponse, responses=ERRORS, summary="Subject mode")
    def get_subject_mode(subject: Subject, default_to_global: DefaultToGlobal = False) -> Response:
        return RegistryJSONResponse(service.get_mode(subject, default_to_global=default_to_global))

    @app.put("/mode/{subject}", response_model=ModeResponse, responses=ERRORS, summary="Set a subject mode")
    async def put_subject_mode(
        request: Request, subject: Subject, body: ModeUpdateRequest, force: bool = False
    ) -> Response:
        return await write(
            request, lambda fwd: service.set_mode(subject, body.mode, force=force, forwarded=fwd)
        )

    @app.delete(
        "/mode/{subject}", response_model=ModeResponse, responses=ERRORS, summary="Drop a subject mode"
    )
    async def delete_subject_mode(request: Request, subject: Subject) -> Response:
        return await write(request, lambda fwd: service.delete_mode(subject, forwarded=fwd))

    @app.get(
        "/freight/status", response_model=StatusResponse, summary="Freight: instance, writer, log position"
    )
    def status() -> dict[str, Any]:
        return service.status()

    @app.get(METRICS_PATH, include_in_schema=False)
    def metrics_endpoint() -> Response:
        """Prometheus metrics of this process (behind the same auth as the API)."""
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    @app.get(HEALTH_PATH, summary="Freight: liveness (no auth)")
    def health() -> Response:
        if not service.reader.alive:
            return error_response(503, 50301, "the log reader has stopped; restart this instance")
        return RegistryJSONResponse({"status": "ok", "instance": service.instance})

    app.state.forwarder = forwarder
    return app


def _relay_headers(headers: Any) -> dict[str, str]:
    keep = ("content-type", OFFSET_HEADER)
    return {k: v for k, v in headers.items() if k.lower() in keep}


def gated(service: RegistryService) -> ASGIApp:
    """The full ASGI app: the API behind the auth/size/content-type gate."""
    auth = service.options.auth.get_secret_value() if service.options.auth is not None else None
    gate = Gate(
        create_app(service), instance=service.instance, auth=auth, max_body=service.options.max_body_bytes
    )
    return metrics.instrument_asgi(gate, "registry")
