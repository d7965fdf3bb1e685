"""`Gate`: the ASGI middleware in front of the API: basic auth, request size limit, JSON bodies whatever the
content type, Confluent's path conventions (a trailing slash served as without it, '/' inside a subject sent
as %2F), and the header that names the instance that answered."""

from __future__ import annotations

import base64
import binascii
import hmac
from urllib.parse import unquote

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from freight.registry.api.http import HEALTH_PATH, error_response
from freight.registry.forward import INSTANCE_HEADER

#: Stands for a "/" inside one path segment (a subject sent as %2F, as confluent's Protobuf serializer and
#: Karapace's tests do) while the router splits the path; `params.Subject` turns it back into "/".
SLASH_IN_SEGMENT = "\x1f"


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


class Gate:
    """ASGI middleware: basic auth, request size limit, JSON bodies whatever the content type.

    Args:
        app: the API.
        instance: this instance's id (sent back in a header).
        auth: "user:password" expected in basic auth (None: no auth).
        max_body: largest request body accepted, in bytes (413 above).
    """

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
