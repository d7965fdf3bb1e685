"""`WriteRelay`: run a write on this instance, or relay it to the instance that holds the writer role.

Only one instance writes `_schemas` at a time (see `freight.registry.forward`). A write that arrives
elsewhere is relayed to it; the answer carries the log offset of the write, and this instance waits until
its own reader has applied it, so a client reading back from here sees its write.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from freight.registry import errors
from freight.registry.api.http import RegistryJSONResponse
from freight.registry.errors import WriterMovedError
from freight.registry.forward import FORWARDED_HEADER, OFFSET_HEADER, Forwarder
from freight.registry.service import RegistryService, WriteResult


class WriteRelay:
    """Writes of one instance.

    Args:
        service: this instance's registry service.
    """

    def __init__(self, service: RegistryService) -> None:
        self.service = service
        self.forwarder = Forwarder(service.instance, service.options.write_timeout_s + 10)

    async def __call__(self, request: Request, op: Callable[[bool], WriteResult]) -> Response:
        """Run `op(forwarded)` here or relay the request; a request relayed to us is never relayed again.

        Args:
            request: the client's request (relayed as it is).
            op: performs the write on this instance; its argument says whether the request was relayed.

        Returns:
            The write's answer (from here or from the writer instance).
        """
        service = self.service
        forwarded = FORWARDED_HEADER in request.headers
        for _attempt in range(3):
            target = None if forwarded else service.forward_target()
            if target is not None:
                relayed = await self.forwarder.forward(target, request)
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


def _relay_headers(headers: Any) -> dict[str, str]:
    keep = ("content-type", OFFSET_HEADER)
    return {k: v for k, v in headers.items() if k.lower() in keep}
