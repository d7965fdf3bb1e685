"""Conveyor's task API on Freight's pipelines: `single_task`, `batch_task`, `|`, `PipelineContext`.

```python
from freight.compat.conveyor import PipelineContext, batch_task, single_task   # was: from conveyor import ...
```

Everything else in a Conveyor program stays: `@single_task`, `@single_task(on_error="skip_item")`,
`@batch_task(max_size=10, min_size=1)`, `a | b`, `async for r in pipeline(items)`,
`pipeline.as_completed(items)`, `await pipeline(items).collect()`, `pipeline.with_execution_mode(...)`,
`pipeline.with_context(**PipelineContext(...).__dict__)`, on single tasks as on pipelines.

Conveyor conventions kept here (and how they map onto Freight):

- every item starts at once: a task runs up to `concurrency` calls at a time (default 1024, Conveyor has no
  bound; native Freight stages default to 8), inside Freight's window of items in flight;
- a task returning None drops the item (as in Freight);
- fan-out: when a task returns a list and a `single_task` follows it, that task runs once per element and
  the elements flow on one by one (Conveyor's search example). A list returned by the *last* task is
  yielded as it is. To keep a list whole for the next task, make that task `single_task(fan_out=False)`;
- `on_error`: "fail_pipeline" (default) stops the run, "skip_item" drops the failed item (for a fanned-out
  list: the failed element), "skip_batch" (batch tasks) drops the failed batch; `retry_attempts=n` retries
  first. Freight's own names ("fail", "skip", "dead_letter", `Retry`) are accepted too.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from freight.errors import ConfigError
from freight.pipeline import Pipeline as _FreightPipeline
from freight.pipeline import Retry
from freight.pipeline import batch_stage as _batch_stage
from freight.pipeline import stage as _stage
from freight.pipeline.engine import PipelineRun
from freight.pipeline.error_policy import ErrorPolicy, FinalAction
from freight.pipeline.stages import MODES, Mode, Source

__all__ = [
    "BatchTask",
    "FanOut",
    "Pipeline",
    "PipelineContext",
    "SingleTask",
    "Task",
    "batch_task",
    "single_task",
]

#: Conveyor starts every item at once; a large bound keeps that behaviour while Freight's window still
#: bounds memory.
CONVEYOR_CONCURRENCY = 1024

_ON_ERROR: dict[str, FinalAction] = {
    "fail_pipeline": "fail",
    "skip_item": "skip",
    "skip_batch": "skip",
    "fail": "fail",
    "skip": "skip",
    "dead_letter": "dead_letter",
    "dead-letter": "dead_letter",
}


class FanOut(list[Any]):
    """The results of a task run once per element of a list: they flow on as separate items."""


def _policy(on_error: str | Retry, retry_attempts: int, retry_delay: float, task: str) -> ErrorPolicy:
    if isinstance(on_error, Retry):
        return on_error
    action = _ON_ERROR.get(on_error) if isinstance(on_error, str) else None
    if action is None:
        valid = ", ".join(repr(k) for k in ("fail_pipeline", "skip_item", "skip_batch"))
        raise ConfigError(
            f"task {task!r}: unknown on_error {on_error!r}; use one of {valid} (or Freight's 'fail', 'skip', "
            "'dead_letter', Retry(...))"
        )
    if retry_attempts > 1:
        return Retry(attempts=retry_attempts, backoff=retry_delay, then=action)
    return action


async def _call(fn: Callable[[Any], Any], arg: Any) -> Any:
    if inspect.iscoroutinefunction(fn):
        return await fn(arg)
    result = await asyncio.to_thread(fn, arg)
    if inspect.isawaitable(result):
        return await result
    return result


@dataclass
class PipelineContext:
    """Conveyor's pipeline context: the execution mode, plus free-form data and configuration."""

    execution_mode: str = "ordered"
    data: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)


class Task:
    """A Conveyor task: a function plus how it runs. Compose with `|`, run by calling it on items."""

    def __init__(
        self, fn: Callable[..., Any], *, name: str | None, concurrency: int, policy: ErrorPolicy
    ) -> None:
        if not callable(fn):
            raise ConfigError(f"a task wraps a callable, got {type(fn).__name__}")
        self.fn = fn
        self.name: str = name or getattr(fn, "__name__", None) or type(fn).__name__
        self.concurrency = concurrency
        self.policy = policy

    def _skips(self) -> bool:
        policy = self.policy
        return policy == "skip" or (isinstance(policy, Retry) and policy.then == "skip")

    def _stage(self, position: int) -> Any:
        raise NotImplementedError

    @property
    def pipeline(self) -> Pipeline:
        """This task alone, as a pipeline."""
        return Pipeline((self,))

    def __or__(self, other: Task | Pipeline) -> Pipeline:
        return self.pipeline | other

    def __call__(self, items: Source[Any]) -> Run:
        """Run this task over `items`: an async iterator of results with `.collect()`."""
        return self.pipeline(items)

    def as_completed(self, items: Source[Any]) -> Run:
        """Run, yielding results in completion order."""
        return self.pipeline.as_completed(items)

    def with_execution_mode(self, mode: str) -> Pipeline:
        """This task alone as a pipeline whose runs use `mode` ("ordered" or "as_completed")."""
        return self.pipeline.with_execution_mode(mode)

    def with_context(self, **context: Any) -> Pipeline:
        """This task alone as a pipeline with `context` (see `Pipeline.with_context`)."""
        return self.pipeline.with_context(**context)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name})"


class SingleTask(Task):
    """One item in, one result out (None drops it; a list in from an earlier task fans out)."""

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None,
        concurrency: int,
        policy: ErrorPolicy,
        fan_out: bool,
    ) -> None:
        super().__init__(fn, name=name, concurrency=concurrency, policy=policy)
        self.fan_out = fan_out

    def _stage(self, position: int) -> Any:
        fn, skips, name = self.fn, self._skips(), self.name
        fan_out = self.fan_out and position > 0

        async def run(item: Any) -> Any:
            if not (fan_out and isinstance(item, list)):
                return await _call(fn, item)

            async def one(element: Any) -> Any:
                try:
                    return await _call(fn, element)
                except Exception:
                    if skips:
                        return None
                    raise

            results = await asyncio.gather(*(one(e) for e in item))
            return FanOut(r for r in results if r is not None)

        run.__name__ = name
        return _stage(run, name=name, concurrency=self.concurrency, on_error=self.policy)


class BatchTask(Task):
    """A list of up to `max_size` items in, one result per item out."""

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        max_size: int,
        min_size: int,
        max_wait: float,
        name: str | None,
        concurrency: int,
        policy: ErrorPolicy,
    ) -> None:
        super().__init__(fn, name=name, concurrency=concurrency, policy=policy)
        self.max_size, self.min_size, self.max_wait = max_size, min_size, max_wait

    def _stage(self, position: int) -> Any:
        fn, name = self.fn, self.name

        async def run(items: list[Any]) -> list[Any]:
            # Fanned-out lists join the batch element by element and are regrouped afterwards.
            flat: list[Any] = []
            sizes: list[int | None] = []
            for item in items:
                if isinstance(item, FanOut):
                    flat.extend(item)
                    sizes.append(len(item))
                else:
                    flat.append(item)
                    sizes.append(None)
            results = list(await _call(fn, flat))
            if len(results) != len(flat):
                return results  # Freight's batch stage reports the mismatch
            out: list[Any] = []
            at = 0
            for size in sizes:
                if size is None:
                    out.append(results[at])
                    at += 1
                else:
                    out.append(FanOut(r for r in results[at : at + size] if r is not None))
                    at += size
            return out

        run.__name__ = name
        return _batch_stage(
            max_size=self.max_size,
            min_size=self.min_size,
            max_wait=self.max_wait,
            name=name,
            concurrency=self.concurrency,
            on_error=self.policy,
        )(run)


class Run:
    """A running pipeline: `async for result in run`, or `await run.collect()` (fanned-out lists are
    yielded element by element)."""

    def __init__(self, run: PipelineRun[Any]) -> None:
        self.freight = run

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._results()

    async def _results(self) -> AsyncIterator[Any]:
        async for result in self.freight:
            if isinstance(result, FanOut):
                for element in result:
                    yield element
            else:
                yield result

    async def collect(self) -> list[Any]:
        """Every result, in the run's order."""
        return [r async for r in self]

    def __await__(self) -> Any:
        return self.collect().__await__()


class Pipeline:
    """Tasks in sequence. Build with `|`; run by calling it on items (a list, an iterable, an async
    iterable, or a Freight `StreamConsumer`)."""

    def __init__(
        self, tasks: Iterable[Task], *, mode: str = "ordered", context: PipelineContext | None = None
    ):
        self.tasks = tuple(tasks)
        for task in self.tasks:
            if not isinstance(task, Task):
                raise ConfigError(
                    f"pipeline steps must be made with @single_task or @batch_task, got {task!r}"
                )
        if mode not in MODES:
            raise ConfigError(f"unknown execution mode {mode!r}; use 'ordered' or 'as_completed'")
        self.mode: Mode = mode
        self.context = context or PipelineContext(execution_mode=mode)

    def __or__(self, other: Task | Pipeline) -> Pipeline:
        if isinstance(other, Task):
            return Pipeline((*self.tasks, other), mode=self.mode, context=self.context)
        if isinstance(other, Pipeline):
            return Pipeline((*self.tasks, *other.tasks), mode=self.mode, context=self.context)
        return NotImplemented

    def freight(self) -> _FreightPipeline[Any, Any]:
        """The native Freight pipeline this runs."""
        return _FreightPipeline([t._stage(i) for i, t in enumerate(self.tasks)]).with_execution_mode(
            self.mode
        )

    def __call__(self, items: Source[Any]) -> Run:
        return Run(self.freight().run(items))

    def as_completed(self, items: Source[Any]) -> Run:
        return Run(self.freight().run(items, mode="as_completed"))

    def with_execution_mode(self, mode: str) -> Pipeline:
        """A copy whose runs use `mode` ("ordered" or "as_completed")."""
        return Pipeline(self.tasks, mode=mode, context=self.context)

    def with_context(self, **context: Any) -> Pipeline:
        """A copy with a `PipelineContext` built from `context` (its `execution_mode` applies to runs)."""
        known = {"execution_mode", "data", "config"}
        extra = set(context) - known
        ctx = PipelineContext(**{k: v for k, v in context.items() if k in known})
        for key in extra:
            setattr(ctx, key, context[key])
        return Pipeline(self.tasks, mode=ctx.execution_mode, context=ctx)

    def __repr__(self) -> str:
        return " | ".join(t.name for t in self.tasks)


def single_task(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    on_error: str | Retry = "fail_pipeline",
    retry_attempts: int = 1,
    retry_delay: float = 0.1,
    concurrency: int = CONVEYOR_CONCURRENCY,
    fan_out: bool = True,
) -> Any:
    """`@single_task` or `@single_task(on_error="skip_item")`: a one-item task (see the module docstring).

    Args:
        fn: the function (sync or async), one item in, one result out (None drops the item).
        name: the task's name (default: the function's).
        on_error: "fail_pipeline", "skip_item", "skip_batch", or one of Freight's policies.
        retry_attempts: calls in all before `on_error` applies (1: no retry).
        retry_delay: seconds before the first retry (doubling after each).
        concurrency: calls in flight at most.
        fan_out: a list from an earlier task is processed element by element (False: passed whole).
    """

    def make(f: Callable[..., Any]) -> SingleTask:
        task_name: str = name or str(getattr(f, "__name__", "task"))
        policy = _policy(on_error, retry_attempts, retry_delay, task_name)
        return SingleTask(f, name=name, concurrency=concurrency, policy=policy, fan_out=fan_out)

    return make if fn is None else make(fn)


def batch_task(
    max_size: int = 10,
    min_size: int = 1,
    *,
    max_wait: float = 0.1,
    name: str | None = None,
    on_error: str | Retry = "fail_pipeline",
    retry_attempts: int = 1,
    retry_delay: float = 0.1,
    concurrency: int = CONVEYOR_CONCURRENCY,
) -> Callable[[Callable[..., Any]], BatchTask]:
    """`@batch_task(max_size=10, min_size=1)`: a task over lists of items, one result per item.

    Args:
        max_size: most items in one call.
        min_size: a smaller batch waits for more input, at most `max_wait` seconds (the final one never).
        max_wait: seconds a batch below `min_size` waits (Freight's addition; Conveyor has no timer).
        name: the task's name.
        on_error: "fail_pipeline", "skip_batch" (or "skip_item": the same for a batch), or Freight's.
        retry_attempts: calls in all before `on_error` applies.
        retry_delay: seconds before the first retry.
        concurrency: batches in flight at most.
    """

    def make(f: Callable[..., Awaitable[Any]] | Callable[..., Any]) -> BatchTask:
        task_name: str = name or str(getattr(f, "__name__", "task"))
        policy = _policy(on_error, retry_attempts, retry_delay, task_name)
        return BatchTask(
            f,
            max_size=max_size,
            min_size=min_size,
            max_wait=max_wait,
            name=name,
            concurrency=concurrency,
            policy=policy,
        )

    return make
