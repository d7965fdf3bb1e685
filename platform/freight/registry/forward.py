"""Relay a write request to the instance that holds the writer role, unchanged.

Forwarding keeps the writer role where it is (taking it over costs a fencing round trip), so with several
instances the writes of all of them go through one. The relayed request carries `X-Freight-Forwarded`, and
an instance never forwards such a request again: it executes it, taking the writer role over if needed.
`None` from `forward` means the writer did not answer as a Freight registry; the caller then writes itself.
"""

from __future__ import annotations

import logging

import httpx
from starlette.requests import Request

log = logging.getLogger(__name__)

FORWARDED_HEADER = "x-freight-forwarded"
INSTANCE_HEADER = "x-freight-registry"
OFFSET_HEADER = "x-freight-log-offset"
_PASS_HEADERS = ("authorization", "content-type", "accept")


class Forwarder:
    """An HTTP client for relaying writes between instances."""

    def __init__(self, instance: str, timeout_s: float) -> None:
        self.instance = instance
        self._client = httpx.AsyncClient(timeout=timeout_s)

    async def forward(self, target: str, request: Request) -> httpx.Response | None:
        raw = request.scope.get("raw_path")  # as the client sent it: %2F inside a subject stays encoded
        path = raw.decode("latin-1") if isinstance(raw, bytes) else request.url.path
        url = target.rstrip("/") + path + (f"?{request.url.query}" if request.url.query else "")
        headers = {k: v for k, v in request.headers.items() if k.lower() in _PASS_HEADERS}
        headers[FORWARDED_HEADER] = self.instance
        body = await request.body()
        try:
            response = await self._client.request(request.method, url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            log.warning(
                "forwarding %s %s to the writer %s failed: %s", request.method, request.url.path, target, exc
            )
            return None
        if INSTANCE_HEADER not in response.headers:
            log.warning(
                "the writer URL %s did not answer as a Freight registry (HTTP %d)",
                target,
                response.status_code,
            )
            return None
        return response

    async def aclose(self) -> None:
        await self._client.aclose()
