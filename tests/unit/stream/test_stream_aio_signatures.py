"""The asyncio classes cannot drift from the synchronous ones (issue 14 defect 6).

Every public member of `StreamProducer` / `StreamConsumer` has an async counterpart with the same
parameters (names, kinds, defaults and annotations), or is listed in `aio.SYNC_ONLY` with the reason.
"""

from __future__ import annotations

import inspect

import pytest

from freight.stream import AsyncStreamConsumer, AsyncStreamProducer, StreamConsumer, StreamProducer, aio

SYNC_ONLY: dict[str, str] = getattr(aio, "SYNC_ONLY", {})

PAIRS = [(StreamProducer, AsyncStreamProducer), (StreamConsumer, AsyncStreamConsumer)]
_DUNDERS = {"__init__", "__iter__", "__enter__", "__exit__"}


def _public(cls: type) -> list[str]:
    return sorted(n for n in dir(cls) if not n.startswith("_") or n in _DUNDERS)


def _params(fn: object) -> list[tuple[str, object, object, object]]:
    sig = inspect.signature(fn)  # type: ignore[arg-type]
    return [(p.name, p.kind, p.default, p.annotation) for p in sig.parameters.values()]


@pytest.mark.parametrize(("sync", "aio"), PAIRS, ids=lambda c: c.__name__)
def test_every_public_member_has_an_async_counterpart_with_the_same_parameters(sync: type, aio: type) -> None:
    for name in _public(sync):
        if name in SYNC_ONLY:
            continue
        assert hasattr(aio, name), f"{aio.__name__} lacks {name} (add it, or list it in aio.SYNC_ONLY)"
        sync_member, aio_member = getattr(sync, name), getattr(aio, name)
        assert callable(sync_member) and callable(aio_member), name
        assert _params(aio_member) == _params(sync_member), f"{aio.__name__}.{name} drifted from {name}"


@pytest.mark.parametrize(("sync", "aio"), PAIRS, ids=lambda c: c.__name__)
def test_sync_only_lists_only_members_that_exist(sync: type, aio: type) -> None:
    every = set(_public(StreamProducer)) | set(_public(StreamConsumer))
    assert set(SYNC_ONLY) <= every, set(SYNC_ONLY) - every
    assert all(reason for reason in SYNC_ONLY.values())


def test_async_producer_send_takes_a_serializer() -> None:
    assert "serializer" in inspect.signature(AsyncStreamProducer.send).parameters
