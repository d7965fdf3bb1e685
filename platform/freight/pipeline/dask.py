"""Run stage functions on a Dask distributed cluster: `@stage(executor=DaskExecutor(client))`.

The dispatcher submits `fn(item)` as a task and awaits its future without blocking the event loop. Items
travel inside an opaque `_Box`, so Dask never inspects them on the way out (its argument parsing calls
`isinstance` and attribute probes that would resolve a lazy proxy in the dispatcher): the item is pickled as
is (a Freight proxy pickles to its reference, not its bytes) and only the worker, calling `fn`, touches it.
Results come back boxed the same way; keep them small (return a proxy for large ones), since they are read
by the dispatcher.

This module imports nothing from Dask: the client is passed in, so `freight.pipeline` works without the
`dask` extra. Workers need `freight` importable (they unbox items with this module).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from freight.errors import ConfigError

A = TypeVar("A")
R = TypeVar("R")


class _Box:
    """An opaque holder: Dask sees a plain object and never looks at what it carries."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __reduce__(self) -> tuple[type[_Box], tuple[Any]]:
        return (_Box, (self.value,))


def _call_boxed(fn: Callable[[Any], Any], box: _Box) -> _Box:
    """Runs on the worker: unbox the item, call the stage function, box the result."""
    return _Box(fn(box.value))


def _key_prefix(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "stage"


class DaskExecutor:
    """Submits a plain stage function to a `dask.distributed.Client` (sync or `asynchronous=True`).

    `submit_options` pass through to `client.submit` (`resources=`, `workers=`, `retries=`, `priority=`).
    Cancelling the pipeline releases the futures, so queued tasks are dropped by the scheduler.
    """

    def __init__(self, client: Any, **submit_options: Any) -> None:
        if not callable(getattr(client, "submit", None)):
            raise ConfigError(f"DaskExecutor needs a dask.distributed.Client, got {type(client).__name__}")
        if "key" in submit_options or "pure" in submit_options:
            raise ConfigError("DaskExecutor picks task keys itself; do not pass key= or pure=")
        self.client = client
        self.submit_options = submit_options

    async def run(self, fn: Callable[[A], R], arg: A, *, name: str) -> R:
        key = f"freight-{_key_prefix(name)}-{uuid.uuid4().hex}"
        future = self.client.submit(_call_boxed, fn, _Box(arg), key=key, **self.submit_options)
        if getattr(self.client, "asynchronous", False):
            try:
                box = await future
            except asyncio.CancelledError:
                future.release()
                raise
        else:
            box = await _wait_threadsafe(future)
        result: R = box.value
        return result


async def _wait_threadsafe(future: Any) -> Any:
    """Await a future of a synchronous client (whose callbacks run on Dask's own thread)."""
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[Any] = loop.create_future()

    def settle(ok: bool, value: Any) -> None:
        if waiter.done():
            return
        if ok:
            waiter.set_result(value)
        else:
            waiter.set_exception(value)

    def on_done(fut: Any) -> None:  # on Dask's callback thread: the future is finished, fetch its outcome
        try:
            outcome: tuple[bool, Any] = (True, fut.result())
        except BaseException as exc:  # the task's own error (or cancellation), re-raised in the pipeline
            outcome = (False, exc)
        with contextlib.suppress(RuntimeError):  # a closed loop: the run that waited for it is gone
            loop.call_soon_threadsafe(settle, *outcome)

    future.add_done_callback(on_done)
    try:
        return await waiter
    except asyncio.CancelledError:
        future.release()
        raise
