"""The pipeline never looks inside items: a lazy proxy passing through stays unresolved.

`Tripwire` counts every probe a proxy would answer by resolving itself (attribute access, `__class__` for
isinstance, truth, equality, hashing, len, iteration, repr). Stage functions open it deliberately with
`object.__getattribute__`; the engine, error handling and dead-letter path must not probe it at all.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import pytest

from freight.pipeline import MemoryDeadLetterSink, MemorySource, Retry, batch_stage, stage


class Tripwire:
    touches: ClassVar[list[str]] = []
    __slots__ = ("payload",)

    def __init__(self, payload: int) -> None:
        object.__setattr__(self, "payload", payload)

    def _touch(self, what: str) -> Any:
        Tripwire.touches.append(what)
        raise AssertionError(f"the pipeline probed an item: {what}")

    def __getattr__(self, name: str) -> Any:
        return self._touch(f"getattr {name}")

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        return self._touch("__class__")  # type: ignore[no-any-return]

    def __bool__(self) -> bool:
        return self._touch("bool")  # type: ignore[no-any-return]

    def __eq__(self, other: object) -> bool:
        return self._touch("eq")  # type: ignore[no-any-return]

    def __hash__(self) -> int:
        return self._touch("hash")  # type: ignore[no-any-return]

    def __len__(self) -> int:
        return self._touch("len")  # type: ignore[no-any-return]

    def __iter__(self) -> Any:
        return self._touch("iter")

    def __repr__(self) -> str:
        Tripwire.touches.append("repr")
        return "<Tripwire>"

    def __str__(self) -> str:
        return self._touch("str")  # type: ignore[no-any-return]


def opened(t: Tripwire) -> int:
    return object.__getattribute__(t, "payload")  # type: ignore[no-any-return]


@pytest.mark.parametrize("mode", ["ordered", "as_completed"])
def test_items_pass_through_every_path_untouched(mode: str) -> None:
    Tripwire.touches.clear()
    sink = MemoryDeadLetterSink()

    async def no_wait(_: float) -> None:
        return None

    @stage(concurrency=3, on_error="skip")
    async def skip_threes(t: Tripwire) -> Tripwire | None:
        x = opened(t)
        if x % 3 == 0:
            raise ValueError("skipped")
        return None if x % 5 == 0 else t  # filter some, pass the same object on

    @stage(on_error=Retry(attempts=2, then="dead_letter", sleep=no_wait))
    def dead_sevens(t: Tripwire) -> Tripwire:
        if opened(t) % 7 == 0:
            raise ValueError("dead")
        return Tripwire(opened(t) * 10)

    @batch_stage(max_size=4, max_wait=0.001)
    async def batch(ts: list[Tripwire]) -> list[Tripwire]:
        return ts

    source = MemorySource.single([Tripwire(i) for i in range(1, 40)])
    run = (skip_threes | dead_sevens | batch)(source, mode=mode, dead_letter=sink)  # type: ignore[arg-type]

    async def main() -> list[int]:
        # open the results here: asyncio.run's own bookkeeping would repr a list of tripwires it returns
        return [opened(t) async for t in run]

    results = asyncio.run(main())

    assert Tripwire.touches == []
    kept = [i for i in range(1, 40) if i % 3 and i % 5 and i % 7]
    assert sorted(results) == [10 * i for i in kept]
    assert sorted(opened(item.value) for item, _ in sink.records) == [7, 14, 28]
    assert run.stats.skipped == len([i for i in range(1, 40) if i % 3 == 0])
