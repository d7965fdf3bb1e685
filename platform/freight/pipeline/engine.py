"""The pipeline runner: a bounded window of items flowing through stages, with offsets committed behind them.

Life of an item. The reader takes a slot in the window, pulls the next `SourceItem` and hands it to the
first stage. Item stages run `concurrency` workers over an inbox; batch stages collect items and flush
batches (see `BatchStage`). The result of the last stage goes to the collector: in ordered mode a reorder
buffer releases results by sequence number, in as-completed mode they go out at once. The item is done, and
its slot free, once the caller asked for the result after it (at-least-once: a result being processed by the
caller when the process dies is replayed), or when it was filtered, skipped or dead-lettered.

Bounds. At most `max_in_flight` items are admitted and not done, wherever they are: inboxes, calls in flight,
pending batches, the reorder buffer, the output queue and the caller's hands. So a slow item in ordered mode
holds back at most `max_in_flight - 1` finished ones. When the window is full the reader stops pulling and
calls `source.pause()`; it calls `source.resume()` and pulls again once at most `resume_at` items remain.

Offsets. Every admitted item is registered with an `OffsetTracker`; a committer task commits, per partition,
one past the contiguous done prefix (coalesced over `commit_interval`), and a final commit runs when the run
ends, however it ends. A commit never runs concurrently with another, so committed offsets only move forward.
Marker items (END_OF_STREAM events) are done on arrival, so the commit can move past them.

A source that raises (a bad record, a broker error) ends the input at that point: the items admitted
before it run to the end and are yielded (and committed), then the run raises the source's error.

Sources. An `AttachableSource` (the Kafka `ConsumerSource`) is attached when the run starts and detached after
the final commit; through `revoke_partitions` it makes the run forget partitions lost in a rebalance (their
items in flight still finish, but are not committed by this run). A source with `default_dead_letter()`
supplies the sink when a stage dead-letters and the caller gave none.

The engine never inspects item values (they may be lazy proxies): it only passes them to stage functions and
tests results for `is None`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Collection, Coroutine
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Generic, TypeVar

from freight.errors import ConfigError, PipelineError
from freight.pipeline.error_policy import ErrorReport, FinalAction, Retry, StageError, final_action
from freight.pipeline.offsets import OffsetTracker
from freight.pipeline.source import AttachableSource, DeadLetterSink, PartitionKey, PipelineSource, SourceItem
from freight.pipeline.stages import BatchStage, RunOptions, Stage

logger = logging.getLogger("freight.pipeline")

Out = TypeVar("Out")

_END = object()
_FAILED = object()


@dataclass
class PipelineStats:
    """Live counters of a run; the `max_*` fields are peaks, for checking bounds."""

    admitted: int = 0
    yielded: int = 0
    filtered: int = 0
    skipped: int = 0
    dead_lettered: int = 0
    failed: int = 0
    retries: int = 0
    batches: int = 0
    pauses: int = 0
    resumes: int = 0
    commits: int = 0
    markers: int = 0
    revoked: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    max_reorder: int = 0
    max_queued: int = 0
    errors_by_stage: dict[str, int] = field(default_factory=dict)


class _Env:
    """An admitted item on its way through the stages (value: the current stage's input)."""

    __slots__ = ("gen", "item", "seq", "value")

    def __init__(self, seq: int, item: SourceItem[Any], gen: int) -> None:
        self.seq = seq
        self.item = item
        self.gen = gen  # the partition's generation in the offset tracker (stale after a revoke)
        self.value: Any = item.value


class _Batcher:
    """Items waiting for a batch, with their arrival times."""

    __slots__ = ("arrived", "pending", "wake")

    def __init__(self) -> None:
        self.pending: deque[_Env] = deque()
        self.arrived: deque[float] = deque()
        self.wake = asyncio.Event()


def default_window(stages: tuple[Stage[Any, Any], ...]) -> int:
    """max(64, 2 x the largest batch max_size, 2 x the largest concurrency)."""
    sizes = [s.max_size for s in stages if isinstance(s, BatchStage)]
    return max(64, 2 * max(sizes, default=0), 2 * max(s.concurrency for s in stages))


class PipelineRun(Generic[Out]):
    """One run of a pipeline over a source: `async for result in run`, `await run.collect()`.

    Iterate it once. Leaving the loop early (break, exception) stops the run and commits the done prefix
    when the iterator is closed; `async with pipeline(source) as run:` makes that deterministic. Errors under
    the `fail` policy raise `StageError`; a failing source, dead-letter sink or commit raises its error.
    """

    def __init__(
        self, stages: tuple[Stage[Any, Any], ...], source: PipelineSource[Any], options: RunOptions
    ) -> None:
        self._stages = stages
        self._source = source
        self._ordered = options.mode == "ordered"
        self.mode = options.mode
        window = options.max_in_flight if options.max_in_flight is not None else default_window(stages)
        largest = max((s.max_size for s in stages if isinstance(s, BatchStage)), default=1)
        if window < largest:
            raise ConfigError(
                f"max_in_flight ({window}) is smaller than the largest batch max_size ({largest}): "
                "such batches could never fill; raise max_in_flight or lower max_size"
            )
        self.max_in_flight = window
        self.resume_at = options.resume_at if options.resume_at is not None else window // 2
        if self.resume_at >= window:
            raise ConfigError(f"resume_at ({self.resume_at}) must be below max_in_flight ({window})")
        needs_sink = [s.name for s in stages if final_action(s.on_error) == "dead_letter"]
        self._sink: DeadLetterSink | None = options.dead_letter
        if needs_sink and self._sink is None:
            default_sink = getattr(source, "default_dead_letter", None)
            if not callable(default_sink):
                raise ConfigError(
                    f"stage(s) {', '.join(map(repr, needs_sink))} dead-letter failed items: "
                    "pass dead_letter=<DeadLetterSink> to run the pipeline"
                )
            self._sink = default_sink()
        self._commit_interval = float(options.commit_interval)

        self.stats = PipelineStats()
        self.errors: deque[ErrorReport] = deque(maxlen=options.max_error_reports)
        self.tracker = OffsetTracker()

        n = len(stages)
        self._batch_idx = [i for i, s in enumerate(stages) if isinstance(s, BatchStage)]
        self._batchers: list[_Batcher | None] = [
            _Batcher() if isinstance(s, BatchStage) else None for s in stages
        ]
        self._inboxes: list[asyncio.Queue[_Env] | None] = [
            None if isinstance(s, BatchStage) else asyncio.Queue() for s in stages
        ]
        self._upstream = [0] * n  # per batch stage: admitted items not yet there and not dropped
        self._output: asyncio.Queue[Any] = asyncio.Queue()
        self._ready: dict[int, _Env | None] = {}  # ordered mode: reorder buffer (None: dropped item)
        self._next_seq = 0
        self._seq = 0
        self._used = 0
        self._room = asyncio.Event()
        self._reader_blocked = False
        self._exhausted = False  # no more input will be admitted
        self._ended = False
        self._fail_seq: int | None = None  # ordered mode: the earliest item that failed under `fail`
        self._pending_error: StageError | None = None
        self._source_error: Exception | None = None  # raised once the items admitted before it are done
        self._error: BaseException | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._reader: asyncio.Task[Any] | None = None
        self._committer: asyncio.Task[Any] | None = None
        self._commit_lock = asyncio.Lock()
        self._commit_wanted = asyncio.Event()
        self._iterator: AsyncGenerator[Out, None] | None = None
        self._started = False
        self._attached: AttachableSource | None = None
        self._stopping = False
        self._closed = False
        self._shutdown_lock = asyncio.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- the caller's side ---------------------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[Out]:
        if self._iterator is not None:
            raise PipelineError("a PipelineRun can be iterated only once; run the pipeline again")
        self._iterator = self._iterate()
        return self._iterator

    async def collect(self) -> list[Out]:
        """All results, as a list (in input order in ordered mode)."""
        return [result async for result in self]

    async def __aenter__(self) -> PipelineRun[Out]:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop the run: cancel the work in flight and commit the done prefix.

        Safe to call from another task while one iterates: that loop then ends as if the input had ended.
        """
        self._stopping = True
        iterator = self._iterator
        if iterator is not None and getattr(iterator, "ag_running", False):
            self._output.put_nowait(_END)  # wake the iterating task; it stops at its next step
        elif iterator is not None:
            await iterator.aclose()
        await self._shutdown()

    @property
    def in_flight(self) -> int:
        """Items admitted and not yet done."""
        return self._used

    @property
    def committed(self) -> dict[PartitionKey, int]:
        """Positions handed to `source.commit` so far (next offset to read, per partition)."""
        return self.tracker.committed()

    async def _iterate(self) -> AsyncGenerator[Out, None]:
        self._start()
        try:
            while True:
                signal = await self._output.get()
                if signal is _END or self._stopping:
                    return
                if signal is _FAILED:
                    await self._raise_failure()
                env: _Env = signal
                self.stats.yielded += 1
                yield env.value
                self._mark_done(env)
                self._release_slot()
                del env, signal  # a done item must not stay alive in this frame (memory bound)
        finally:
            await self._shutdown()

    async def _raise_failure(self) -> None:
        error = self._error
        assert error is not None
        try:
            await self._shutdown()
        except Exception as commit_error:
            error.add_note(f"the final offset commit failed too: {commit_error}")
            logger.error("final commit after a pipeline failure failed: %s", commit_error)
        raise error

    # -- start and stop ------------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        assert self._loop is not None
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            if not self._closed and task is not self._reader:
                # Only shutdown cancels workers; a stage that raised CancelledError must not vanish quietly.
                self._fatal(PipelineError("a pipeline task was cancelled while the run was still going"))
            return
        error = task.exception()
        if error is not None:
            self._fatal(error)

    def _start(self) -> None:
        if self._started:
            return
        self._started = True
        self._loop = asyncio.get_running_loop()
        if isinstance(self._source, AttachableSource):
            self._source.attach(self)
            self._attached = self._source
        self._reader = self._spawn(self._read())
        for i, stg in enumerate(self._stages):
            if isinstance(stg, BatchStage):
                self._spawn(self._batch_loop(i, stg))
            else:
                for _ in range(stg.concurrency):
                    self._spawn(self._work(i, stg))
        self._committer = self._spawn(self._commit_loop())

    def _fatal(self, error: BaseException) -> None:
        """Stop at once and make the caller raise `error` (the first one wins)."""
        if self._error is None:
            self._error = error
        self._stop_input()
        self._output.put_nowait(_FAILED)

    def _stop_input(self) -> None:
        self._exhausted = True
        if self._reader is not None and not self._reader.done():
            self._reader.cancel()
        self._wake_batchers()

    async def _shutdown(self) -> None:
        async with self._shutdown_lock:  # a second caller returns once the first one has finished
            if self._closed:
                return
            self._closed = True
            await self._stop_everything()

    async def _stop_everything(self) -> None:
        self._exhausted = True
        while True:
            busy = [t for t in self._tasks if t is not self._committer and not t.done()]
            if not busy:
                break
            for task in busy:
                task.cancel()
            await asyncio.gather(*busy, return_exceptions=True)
        async with self._commit_lock:  # let a commit in progress finish; never cancel one midway
            if self._committer is not None:
                self._committer.cancel()
                await asyncio.gather(self._committer, return_exceptions=True)
            commit_error: BaseException | None = None
            if self._started:
                try:
                    await self._commit_now()
                except BaseException as exc:
                    commit_error = exc
            attached, self._attached = self._attached, None
            if attached is not None:
                try:
                    await attached.detach()
                except Exception as exc:
                    if commit_error is None:
                        raise PipelineError(f"releasing the source failed: {exc}") from exc
                    logger.error("releasing the source after a failed commit failed too: %s", exc)
            if commit_error is not None:
                raise commit_error

    def revoke_partitions(self, partitions: Collection[PartitionKey]) -> dict[PartitionKey, int]:
        """Forget partitions this member lost; return their done-prefix commit positions (see `RunControl`).

        Items of these partitions still in the pipeline run to the end and their results are yielded, but
        their offsets are left to the partition's new owner (at-least-once: it may process them again).
        """
        positions = self.tracker.forget(partitions)
        self.stats.revoked += len(partitions)
        return positions

    # -- admission -----------------------------------------------------------------------------------

    async def _read(self) -> None:
        iterator = aiter(self._source)
        try:
            while not self._exhausted:
                if self._used >= self.max_in_flight:
                    await self._wait_for_room()
                    if self._exhausted:
                        break
                try:
                    item = await anext(iterator)
                except StopAsyncIteration:
                    break
                except Exception as exc:  # the input failed here: finish what came before, then raise it
                    self._source_error = exc
                    break
                if item.marker:
                    self._pass_marker(item)
                else:
                    self._admit(item)
                del item
        finally:
            self._exhausted = True
            self._wake_batchers()
            self._check_end()

    async def _wait_for_room(self) -> None:
        self._reader_blocked = True
        self.stats.pauses += 1
        self._source.pause()
        self._wake_batchers()
        try:
            while self._used > self.resume_at and not self._exhausted:
                self._room.clear()
                await self._room.wait()
        finally:
            self._reader_blocked = False
            self.stats.resumes += 1
            self._source.resume()

    def _pass_marker(self, item: SourceItem[Any]) -> None:
        """A position-only item: done at once (no slot, no stage), so commits can move past it."""
        gen = self.tracker.register(item.partition_key, item.offset)
        self.stats.markers += 1
        if self.tracker.done(item.partition_key, item.offset, gen):
            self._commit_wanted.set()

    def _admit(self, item: SourceItem[Any]) -> None:
        gen = self.tracker.register(item.partition_key, item.offset)
        env = _Env(self._seq, item, gen)
        self._seq += 1
        self._used += 1
        stats = self.stats
        stats.admitted += 1
        stats.in_flight = self._used
        if self._used > stats.max_in_flight:
            stats.max_in_flight = self._used
        for b in self._batch_idx:
            self._upstream[b] += 1
        self._deliver(env, 0)

    def _release_slot(self) -> None:
        self._used -= 1
        self.stats.in_flight = self._used
        if self._reader_blocked and self._used <= self.resume_at:
            self._room.set()
        self._check_end()

    def _check_end(self) -> None:
        if (
            self._exhausted
            and self._used == 0
            and not self._ended
            and self._error is None
            and self._fail_seq is None
        ):
            self._ended = True
            if self._source_error is not None:
                self._error = self._source_error
                self._output.put_nowait(_FAILED)
            else:
                self._output.put_nowait(_END)

    # -- moving items between stages -----------------------------------------------------------------

    def _deliver(self, env: _Env, i: int) -> None:
        batcher = self._batchers[i]
        if batcher is not None:
            self._upstream[i] -= 1
            assert self._loop is not None
            batcher.pending.append(env)
            batcher.arrived.append(self._loop.time())
            depth = len(batcher.pending)
            batcher.wake.set()
        else:
            inbox = self._inboxes[i]
            assert inbox is not None
            inbox.put_nowait(env)
            depth = inbox.qsize()
        if depth > self.stats.max_queued:
            self.stats.max_queued = depth

    def _forward(self, env: _Env, i: int, value: Any) -> None:
        """Stage `i` produced `value` for `env`: pass it on, or filter the item (None)."""
        if self._abandoned(env):
            self._abandon(env, i)
            return
        if value is None:
            self.stats.filtered += 1
            self._drop(env, i)
            return
        env.value = value
        if i + 1 < len(self._stages):
            self._deliver(env, i + 1)
        else:
            self._arrive(env.seq, env)

    def _leave(self, i: int) -> None:
        """An item leaves the pipeline at stage `i`: batch stages after it stop expecting it."""
        for b in self._batch_idx:
            if b > i:
                self._upstream[b] -= 1
                batcher = self._batchers[b]
                assert batcher is not None
                batcher.wake.set()

    def _drop(self, env: _Env, i: int) -> None:
        """The item is done without a result (filtered, skipped, dead-lettered)."""
        self._leave(i)
        self._mark_done(env)
        self._arrive(env.seq, None)

    def _abandoned(self, env: _Env) -> bool:
        """After a failure: work that must not go on (it is left unfinished, so it will be replayed)."""
        if self._error is not None:
            return True
        return self._fail_seq is not None and env.seq > self._fail_seq

    def _abandon(self, env: _Env, i: int) -> None:
        self._leave(i)

    def _wake_batchers(self) -> None:
        for batcher in self._batchers:
            if batcher is not None:
                batcher.wake.set()

    def _mark_done(self, env: _Env) -> None:
        if self.tracker.done(env.item.partition_key, env.item.offset, env.gen):
            self._commit_wanted.set()

    # -- collecting results --------------------------------------------------------------------------

    def _arrive(self, seq: int, env: _Env | None) -> None:
        if not self._ordered:
            if env is None:
                self._release_slot()
            else:
                self._output.put_nowait(env)
            return
        self._ready[seq] = env
        if len(self._ready) > self.stats.max_reorder:
            self.stats.max_reorder = len(self._ready)
        self._advance()

    def _advance(self) -> None:
        ready = self._ready
        while True:
            if self._fail_seq is not None and self._next_seq == self._fail_seq:
                if self._error is None:
                    self._error = self._pending_error
                self._output.put_nowait(_FAILED)
                return
            if self._next_seq not in ready:
                return
            env = ready.pop(self._next_seq)
            self._next_seq += 1
            if env is None:
                self._release_slot()
            else:
                self._output.put_nowait(env)

    # -- running stages ------------------------------------------------------------------------------

    async def _work(self, i: int, stg: Stage[Any, Any]) -> None:
        inbox = self._inboxes[i]
        assert inbox is not None
        while True:
            await self._process(i, stg, await inbox.get())  # no local outlives the item (memory bound)

    async def _process(self, i: int, stg: Stage[Any, Any], env: _Env) -> None:
        if self._abandoned(env):
            self._abandon(env, i)
            return
        ok, value = await self._invoke(i, stg, env.value, (env,))
        if ok:
            self._forward(env, i, value)

    def _flush_due(self, i: int, stg: BatchStage[Any, Any], batcher: _Batcher) -> bool:
        size = len(batcher.pending)
        if size == 0:
            return False
        if size >= stg.max_size:
            return True
        if self._upstream[i] == 0:  # every admitted item that will come here has arrived
            if self._exhausted or self._reader_blocked:
                return True  # input ended or window full: waiting cannot grow this batch
            if size >= stg.min_size:
                return True  # big enough; do not wait for items that are not even admitted yet
        assert self._loop is not None
        return self._loop.time() - batcher.arrived[0] >= stg.max_wait

    async def _batch_loop(self, i: int, stg: BatchStage[Any, Any]) -> None:
        batcher = self._batchers[i]
        assert batcher is not None and self._loop is not None
        slots = asyncio.Semaphore(stg.concurrency)
        while True:
            while not self._flush_due(i, stg, batcher):
                batcher.wake.clear()
                if batcher.pending:
                    remaining = batcher.arrived[0] + stg.max_wait - self._loop.time()
                    try:
                        async with asyncio.timeout(max(remaining, 0.0)):
                            await batcher.wake.wait()
                    except TimeoutError:
                        pass
                else:
                    await batcher.wake.wait()
            await slots.acquire()
            envs = self._take_batch(i, stg, batcher)
            if envs:
                self._spawn(self._run_batch(i, stg, envs, slots))
            else:
                slots.release()
            del envs  # the batch task owns it now; keep no reference here (memory bound)

    def _take_batch(self, i: int, stg: BatchStage[Any, Any], batcher: _Batcher) -> list[_Env]:
        envs: list[_Env] = []
        while batcher.pending and len(envs) < stg.max_size:
            env = batcher.pending.popleft()
            batcher.arrived.popleft()
            if self._abandoned(env):
                self._abandon(env, i)
            else:
                envs.append(env)
        return envs

    async def _run_batch(
        self, i: int, stg: BatchStage[Any, Any], envs: list[_Env], slots: asyncio.Semaphore
    ) -> None:
        self.stats.batches += 1
        try:
            ok, results = await self._invoke(i, stg, [env.value for env in envs], envs)
        finally:
            slots.release()
        if ok:
            for env, value in zip(envs, results, strict=True):
                self._forward(env, i, value)

    async def _invoke(
        self, i: int, stg: Stage[Any, Any], arg: Any, envs: tuple[_Env, ...] | list[_Env]
    ) -> tuple[bool, Any]:
        """Call the stage with its error policy: (True, result) or (False, None) once the policy acted."""
        policy = stg.on_error
        attempt = 0
        while True:
            attempt += 1
            try:
                if stg.timeout is None:
                    return True, await stg.call(arg)
                deadline = asyncio.timeout(stg.timeout)
                try:
                    async with deadline:
                        return True, await stg.call(arg)
                except TimeoutError as exc:
                    if not deadline.expired():
                        raise
                    raise TimeoutError(f"stage {stg.name!r} took longer than {stg.timeout}s") from exc
            except Exception as exc:
                if (
                    isinstance(policy, Retry)
                    and attempt < policy.attempts
                    and isinstance(exc, policy.retry_on)
                    and not all(self._abandoned(env) for env in envs)
                ):
                    self.stats.retries += 1
                    delay = policy.delay(attempt)
                    logger.info(
                        "stage %r: attempt %d on %s failed (%s: %s); retrying in %.3gs",
                        stg.name,
                        attempt,
                        _where(envs[0].item),
                        type(exc).__name__,
                        exc,
                        delay,
                    )
                    await policy.sleep(delay)
                    continue
                await self._give_up(i, stg, envs, exc, attempt, final_action(policy))
                return False, None

    async def _give_up(
        self,
        i: int,
        stg: Stage[Any, Any],
        envs: tuple[_Env, ...] | list[_Env],
        exc: Exception,
        attempts: int,
        action: FinalAction,
    ) -> None:
        live = []
        for env in envs:
            if self._abandoned(env):
                self._abandon(env, i)
            else:
                live.append(env)
        if not live:
            return
        first = min(live, key=lambda env: env.seq)
        template = ErrorReport.from_exception(
            exc,
            stage=stg.name,
            partition_key=first.item.partition_key,
            offset=first.item.offset,
            attempts=attempts,
            action=action,
            batch_size=len(envs),
        )
        by_stage = self.stats.errors_by_stage
        by_stage[stg.name] = by_stage.get(stg.name, 0) + len(live)
        if action == "fail":
            self.errors.append(template)
            for _ in live:
                self._leave(i)  # later batch stages stop waiting for it
            self._fail(first, live, template, exc)
            return
        for env in live:
            report = (
                template
                if env is first
                else dataclasses.replace(
                    template, partition_key=env.item.partition_key, offset=env.item.offset
                )
            )
            self.errors.append(report)
            if action == "skip":
                self.stats.skipped += 1
                logger.warning(
                    "stage %r skipped %s after %d attempt(s): %s: %s",
                    stg.name,
                    report.where(),
                    attempts,
                    type(exc).__name__,
                    exc,
                )
            else:
                assert self._sink is not None
                try:
                    await self._sink.send(env.item, report)
                except Exception as sink_error:
                    raise PipelineError(
                        f"the dead-letter sink failed for {report.where()} (stage {stg.name!r}): {sink_error}"
                    ) from sink_error
                self.stats.dead_lettered += 1
                logger.warning(
                    "stage %r dead-lettered %s after %d attempt(s): %s: %s",
                    stg.name,
                    report.where(),
                    attempts,
                    type(exc).__name__,
                    exc,
                )
            self._drop(env, i)

    def _fail(self, first: _Env, live: list[_Env], report: ErrorReport, exc: Exception) -> None:
        """The `fail` policy: stop admitting; raise at the item's position (ordered) or at once."""
        self.stats.failed += len(live)
        error = StageError(report)
        error.__cause__ = exc
        if not self._ordered:
            self._fatal(error)
            return
        if self._fail_seq is None or first.seq < self._fail_seq:
            self._fail_seq = first.seq
            self._pending_error = error
        self._stop_input()
        self._advance()

    # -- offsets -------------------------------------------------------------------------------------

    async def _commit_loop(self) -> None:
        while True:
            await self._commit_wanted.wait()
            if self._commit_interval:
                await asyncio.sleep(self._commit_interval)
            self._commit_wanted.clear()
            async with self._commit_lock:
                await self._commit_now()

    async def _commit_now(self) -> None:
        positions = self.tracker.uncommitted()
        if not positions:
            return
        try:
            await self._source.commit(positions)
        except Exception as exc:
            raise PipelineError(f"committing offsets {positions} failed: {exc}") from exc
        self.tracker.mark_committed(positions)
        self.stats.commits += 1


def _where(item: SourceItem[Any]) -> str:
    topic, partition = item.partition_key
    return f"{topic}[{partition}]@{item.offset}"
