"""Stages and their composition: `@stage`, `@batch_stage`, `stage_a | stage_b`, `Pipeline`.

A stage wraps one function. `@stage` functions take one item and return one result; `@batch_stage` functions
take a list of items and return one result per item, in the same order. Either may be `async def` (run on the
event loop) or a plain function (run on an executor: the loop's thread pool by default, any
`concurrent.futures.Executor`, or a `DaskExecutor`). Returning `None` filters the item out: it produces no
result and counts as done for offset commits. A stage maps one input to at most one output; to fan out,
return a collection and let the next stage take it as one item (one-to-one keeps the window, the reorder
buffer and the offset accounting exact).

Stages compose with `|` into a `Pipeline`; calling a stage or a pipeline on a source starts a `PipelineRun`
(see `freight.pipeline.engine`), which is an async iterator of results with `.collect()`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import math
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, TypeVar, overload

from freight.errors import ConfigError
from freight.pipeline.error_policy import BatchResultError, ErrorPolicy, FinalAction, Retry, normalize_policy
from freight.pipeline.source import DeadLetterSink, PipelineSource

if TYPE_CHECKING:
    from freight.pipeline.engine import PipelineRun

In = TypeVar("In")  # a stage's input item type
Out = TypeVar("Out")  # its result type
Next = TypeVar("Next")  # the result type of what follows it
A = TypeVar("A")
R = TypeVar("R")

Mode = Literal["ordered", "as_completed"]
MODES: tuple[Mode, ...] = ("ordered", "as_completed")

Source = PipelineSource[In] | AsyncIterable[In] | Iterable[In]
"""What a pipeline runs over: a `PipelineSource` (StreamConsumer), an async iterable or a plain iterable."""

DEFAULT_CONCURRENCY = 8


class StageExecutor(Protocol):
    """Runs a plain (sync) stage function somewhere else and awaits its result without blocking the loop."""

    async def run(self, fn: Callable[[A], R], arg: A, *, name: str) -> R: ...


class ThreadExecutor:
    """Runs sync stage functions on a `concurrent.futures.Executor` (None: the event loop's default pool).

    A process pool works too when the function and items pickle (the decorated name is the `Stage`, so
    decorate a wrapper or use `stage(fn)` without `@` to keep `fn` importable by reference).
    """

    def __init__(self, executor: concurrent.futures.Executor | None = None) -> None:
        self.executor = executor

    async def run(self, fn: Callable[[A], R], arg: A, *, name: str) -> R:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, arg)


def _is_async(fn: Callable[..., Any]) -> bool:
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(fn, "__call__", None)  # noqa: B004 - a callable object with an async __call__
    return call is not None and inspect.iscoroutinefunction(call)


def _check_int(name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


class Stage(Generic[In, Out]):
    """One processing step. Use the `stage` / `batch_stage` decorators rather than this class."""

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None,
        concurrency: int,
        on_error: ErrorPolicy,
        timeout: float | None,
        executor: StageExecutor | concurrent.futures.Executor | None,
    ) -> None:
        if not callable(fn):
            raise ConfigError(f"a stage wraps a callable, got {type(fn).__name__}")
        self.fn = fn
        self.name: str = name or getattr(fn, "__name__", None) or type(fn).__name__
        self.concurrency = _check_int(f"stage {self.name!r} concurrency", concurrency)
        self.on_error: Retry | FinalAction = normalize_policy(on_error)
        if timeout is not None and not (isinstance(timeout, int | float) and 0 < timeout < math.inf):
            raise ConfigError(f"stage {self.name!r} timeout must be a positive number of seconds or None")
        self.timeout = timeout
        self.is_async = _is_async(fn)
        if self.is_async and executor is not None:
            raise ConfigError(
                f"stage {self.name!r} is async and runs on the event loop; an executor needs a plain function"
            )
        if isinstance(executor, concurrent.futures.Executor):
            executor = ThreadExecutor(executor)
        self.executor: StageExecutor = executor if executor is not None else ThreadExecutor()

    async def _apply(self, arg: Any) -> Any:
        if self.is_async:
            return await self.fn(arg)
        return await self.executor.run(self.fn, arg, name=self.name)

    async def call(self, arg: Any) -> Any:
        """Run the function once (no error policy; the engine applies it)."""
        return await self._apply(arg)

    @property
    def pipeline(self) -> Pipeline[In, Out]:
        """This stage alone, as a pipeline."""
        return Pipeline((self,))

    def __or__(self, other: Stage[Out, Next] | Pipeline[Out, Next]) -> Pipeline[In, Next]:
        return self.pipeline | other

    def __call__(self, source: Source[In], **options: Any) -> PipelineRun[Out]:
        """Run this stage alone over `source` (see `Pipeline.run` for the options)."""
        return self.pipeline.run(source, **options)

    def as_completed(self, source: Source[In], **options: Any) -> PipelineRun[Out]:
        """Run this stage alone, yielding results in completion order."""
        return self.pipeline.run(source, mode="as_completed", **options)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, concurrency={self.concurrency})"


class ItemStage(Stage[In, Out]):
    """A stage whose function takes one item and returns one result (None filters the item out)."""

    async def call(self, arg: Any) -> Any:
        try:
            return await self._apply(arg)
        except (TypeError, AttributeError, KeyError) as exc:
            if isinstance(arg, list) and not isinstance(exc, _FanOutHintError):
                raise _FanOutHintError(
                    f"{type(exc).__name__}: {exc} (stage {self.name!r} got a list of {len(arg)} item(s) as "
                    "one item. A Freight stage maps one item to one "
                    "result: to process a list's elements one by one, loop over them inside this stage "
                    "(or return one result per input from a @batch_stage), or use freight.compat.conveyor, "
                    "whose tasks fan lists out; see docs/migrating.md)"
                ) from exc
            raise


class _FanOutHintError(TypeError):
    """A per-item stage failed on a list: the message says how to fan out."""


class BatchStage(Stage[In, Out]):
    """A stage whose function takes a list of items and returns one result per item, in order.

    A pending batch goes to the function (once a concurrency slot is free; items that arrive meanwhile join
    it, up to `max_size`) as soon as one of these holds:

    - it has `max_size` items;
    - no further item can reach it for now, whatever its size: the input ended (the final partial batch is
      processed, never dropped), or the window is full and every admitted item upstream has arrived;
    - it has at least `min_size` items and every admitted item upstream has arrived (it does not wait for
      input that is not even read yet);
    - its oldest item has waited `max_wait` seconds, whatever its size.

    So below `min_size` a batch waits up to `max_wait` for more input; raise `min_size` and `max_wait` to
    trade latency for bigger batches. While the stage is busy, batches grow up to `max_size` on their own.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        max_size: int,
        min_size: int,
        max_wait: float,
        name: str | None,
        concurrency: int,
        on_error: ErrorPolicy,
        timeout: float | None,
        executor: StageExecutor | concurrent.futures.Executor | None,
    ) -> None:
        super().__init__(
            fn, name=name, concurrency=concurrency, on_error=on_error, timeout=timeout, executor=executor
        )
        self.max_size = _check_int(f"batch stage {self.name!r} max_size", max_size)
        self.min_size = _check_int(f"batch stage {self.name!r} min_size", min_size)
        if self.min_size > self.max_size:
            raise ConfigError(
                f"batch stage {self.name!r}: min_size ({min_size}) must not exceed max_size ({max_size})"
            )
        if not (isinstance(max_wait, int | float) and 0 < max_wait < math.inf):
            raise ConfigError(
                f"batch stage {self.name!r}: max_wait must be a positive, finite number of seconds "
                f"(a partial batch is flushed after it), got {max_wait!r}"
            )
        self.max_wait = float(max_wait)

    async def call(self, arg: Any) -> Any:
        results = await self._apply(arg)
        if not isinstance(results, list | tuple):
            try:
                results = list(results)  # numpy arrays and other iterables of per-item results
            except TypeError:
                raise BatchResultError(
                    f"batch stage {self.name!r} must return a sequence (one result per item), "
                    f"got {type(results).__name__}"
                ) from None
        if len(results) != len(arg):
            raise BatchResultError(
                f"batch stage {self.name!r} returned {len(results)} results for {len(arg)} items; "
                "return one result per item (None filters an item)"
            )
        return results

    def __repr__(self) -> str:
        return (
            f"BatchStage({self.name!r}, max_size={self.max_size}, min_size={self.min_size}, "
            f"max_wait={self.max_wait}, concurrency={self.concurrency})"
        )


class _StageDecorator(Protocol):
    @overload
    def __call__(self, fn: Callable[[In], Awaitable[Out | None]], /) -> ItemStage[In, Out]: ...

    @overload
    def __call__(self, fn: Callable[[In], Out | None], /) -> ItemStage[In, Out]: ...


class _BatchDecorator(Protocol):
    @overload
    def __call__(
        self, fn: Callable[[list[In]], Awaitable[Sequence[Out | None]]], /
    ) -> BatchStage[In, Out]: ...

    @overload
    def __call__(self, fn: Callable[[list[In]], Sequence[Out | None]], /) -> BatchStage[In, Out]: ...


@overload
def stage(
    fn: Callable[[In], Awaitable[Out | None]],
    /,
    *,
    name: str | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    on_error: ErrorPolicy = "fail",
    timeout: float | None = None,
    executor: StageExecutor | concurrent.futures.Executor | None = None,
) -> ItemStage[In, Out]: ...


@overload
def stage(
    fn: Callable[[In], Out | None],
    /,
    *,
    name: str | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    on_error: ErrorPolicy = "fail",
    timeout: float | None = None,
    executor: StageExecutor | concurrent.futures.Executor | None = None,
) -> ItemStage[In, Out]: ...


@overload
def stage(
    *,
    name: str | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    on_error: ErrorPolicy = "fail",
    timeout: float | None = None,
    executor: StageExecutor | concurrent.futures.Executor | None = None,
) -> _StageDecorator: ...


def stage(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    on_error: ErrorPolicy = "fail",
    timeout: float | None = None,
    executor: StageExecutor | concurrent.futures.Executor | None = None,
) -> Any:
    """Make a one-item stage: `@stage`, `@stage(concurrency=4, on_error="skip", timeout=5.0)` or
    `stage(fn, concurrency=4)` (which leaves `fn` itself importable, as process pools and Dask may need).

    `concurrency` bounds the calls in flight; `on_error` is "fail" (default), "skip", "dead_letter",
    "retry" or `Retry(...)`; `timeout` (seconds) makes a slow call an error under that policy; `executor`
    runs a plain function elsewhere (thread or process pool, `DaskExecutor`).
    """

    def make(f: Callable[..., Any]) -> ItemStage[Any, Any]:
        return ItemStage(
            f, name=name, concurrency=concurrency, on_error=on_error, timeout=timeout, executor=executor
        )

    return make if fn is None else make(fn)


def batch_stage(
    max_size: int = 32,
    min_size: int = 1,
    max_wait: float = 0.1,
    *,
    name: str | None = None,
    concurrency: int = 1,
    on_error: ErrorPolicy = "fail",
    timeout: float | None = None,
    executor: StageExecutor | concurrent.futures.Executor | None = None,
) -> _BatchDecorator:
    """Make a batch stage: `@batch_stage(max_size=64, min_size=8, max_wait=0.05)`.

    Batches hold up to `max_size` items; below `min_size` a batch waits for more input, but never longer
    than `max_wait` seconds, and the final partial batch is processed when the input ends (see `BatchStage`).
    Error policies apply to a failed batch as a whole (every item is skipped, dead-lettered or failed).
    """

    def make(f: Callable[..., Any]) -> BatchStage[Any, Any]:
        return BatchStage(
            f,
            max_size=max_size,
            min_size=min_size,
            max_wait=max_wait,
            name=name,
            concurrency=concurrency,
            on_error=on_error,
            timeout=timeout,
            executor=executor,
        )

    return make


@dataclass(frozen=True)
class RunOptions:
    """How a pipeline runs (defaults of a `Pipeline`; each `run` may override them).

    mode: "ordered" (results in input order) or "as_completed".
    max_in_flight: the window: most items admitted and not yet done, whatever state they are in (queued,
        running, batched, reordered, handed to the caller). None: max(64, 2 x the largest batch max_size,
        2 x the largest concurrency).
    resume_at: when the window is full the source is paused; it resumes once the pipeline holds at most this
        many items. None: max_in_flight // 2.
    dead_letter: the sink for items failed under the `dead_letter` policy (required if a stage uses it).
    commit_interval: seconds to coalesce offset commits (0: commit at every advance); a final commit runs
        whenever the run ends.
    max_error_reports: how many `ErrorReport`s `PipelineRun.errors` keeps (the newest).
    """

    mode: Mode = "ordered"
    max_in_flight: int | None = None
    resume_at: int | None = None
    dead_letter: DeadLetterSink | None = None
    commit_interval: float = 1.0
    max_error_reports: int = 1000

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"unknown execution mode {self.mode!r}; use 'ordered' or 'as_completed'")
        if self.max_in_flight is not None:
            _check_int("max_in_flight", self.max_in_flight)
        if self.resume_at is not None:
            _check_int("resume_at", self.resume_at, minimum=0)
            if self.max_in_flight is not None and self.resume_at >= self.max_in_flight:
                raise ConfigError(
                    f"resume_at ({self.resume_at}) must be below max_in_flight ({self.max_in_flight})"
                )
        if not (isinstance(self.commit_interval, int | float) and 0 <= self.commit_interval < math.inf):
            raise ConfigError(f"commit_interval must be >= 0 seconds, got {self.commit_interval!r}")
        _check_int("max_error_reports", self.max_error_reports, minimum=0)
        if self.dead_letter is not None and not isinstance(self.dead_letter, DeadLetterSink):
            raise ConfigError("dead_letter must have an async send(item, report) method (a DeadLetterSink)")


class Pipeline(Generic[In, Out]):
    """Stages in sequence, with default run options. Build with `|`; run by calling it on a source."""

    def __init__(self, stages: Sequence[Stage[Any, Any]], options: RunOptions | None = None) -> None:
        if not stages:
            raise ConfigError("a pipeline needs at least one stage")
        for s in stages:
            if not isinstance(s, Stage):
                raise ConfigError(f"pipeline stages must be made with @stage or @batch_stage, got {s!r}")
        self.stages: tuple[Stage[Any, Any], ...] = tuple(stages)
        self.options = options or RunOptions()

    def __or__(self, other: Stage[Out, Next] | Pipeline[Out, Next]) -> Pipeline[In, Next]:
        if isinstance(other, Stage):
            return Pipeline((*self.stages, other), self.options)
        if isinstance(other, Pipeline):
            return Pipeline((*self.stages, *other.stages), self.options)
        return NotImplemented

    def with_options(
        self,
        *,
        mode: Mode | None = None,
        max_in_flight: int | None = None,
        resume_at: int | None = None,
        dead_letter: DeadLetterSink | None = None,
        commit_interval: float | None = None,
        max_error_reports: int | None = None,
    ) -> Pipeline[In, Out]:
        """A copy with other default run options (arguments left None keep their value)."""
        given: dict[str, Any] = {
            "mode": mode,
            "max_in_flight": max_in_flight,
            "resume_at": resume_at,
            "dead_letter": dead_letter,
            "commit_interval": commit_interval,
            "max_error_reports": max_error_reports,
        }
        return Pipeline(
            self.stages, replace(self.options, **{k: v for k, v in given.items() if v is not None})
        )

    def with_execution_mode(self, mode: Mode) -> Pipeline[In, Out]:
        """A copy whose runs use `mode` ("ordered" or "as_completed")."""
        return self.with_options(mode=mode)

    def run(
        self,
        source: Source[In],
        *,
        mode: Mode | None = None,
        max_in_flight: int | None = None,
        resume_at: int | None = None,
        dead_letter: DeadLetterSink | None = None,
        commit_interval: float | None = None,
        max_error_reports: int | None = None,
    ) -> PipelineRun[Out]:
        """Start processing `source` (lazily: work begins at the first `async for` step)."""
        from freight.pipeline.engine import PipelineRun
        from freight.pipeline.source import as_source

        options = self.with_options(
            mode=mode,
            max_in_flight=max_in_flight,
            resume_at=resume_at,
            dead_letter=dead_letter,
            commit_interval=commit_interval,
            max_error_reports=max_error_reports,
        ).options
        return PipelineRun(self.stages, as_source(source), options)

    __call__ = run

    def as_completed(self, source: Source[In], **options: Any) -> PipelineRun[Out]:
        """Run, yielding results in completion order."""
        return self.run(source, mode="as_completed", **options)

    def __repr__(self) -> str:
        return " | ".join(s.name for s in self.stages)
