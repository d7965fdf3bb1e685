"""Pipelines over a Kafka `StreamConsumer`: `ConsumerSource` (flow control, manual commits, rebalances).

`pipeline.run(consumer)` wraps a `StreamConsumer` in a `ConsumerSource` (`as_source` does it), so this works:

```python
with StreamConsumer("images", "thumbnails", auto_commit=False) as consumer:
    async for thumb in (decode | resize)(consumer, dead_letter=KafkaDeadLetterSink()):
        ...
```

Threads. A `StreamConsumer` is not thread-safe, so every call to it runs on one dedicated thread (the
consumer thread), in submission order: fetches, pause and resume, keep-alive polls, commits. The event loop
only awaits those calls; it never blocks on Kafka.

Flow. Records are taken from the consumer in batches of up to `max_held` (one thread hop per batch) and held
here until the pipeline pulls them. When the run's window is full it calls `pause()` and nothing more is
taken; if it stays full for `pause_delay`, the assigned partitions are paused in librdkafka, which stops
fetching and drops what it had prefetched for them (on resume it fetches again from the first record it had
not handed out). Meanwhile the consumer thread polls the group every `poll_interval` without taking records,
so the member stays in its group (`max.poll.interval.ms`) and serves rebalances. Records already held stay
held and go out first after `resume()`. Kafka is polled for records only when the consumer's own buffer is
empty, one fetch of at most its `batch_size` records at a time, and the consumer adds at most one more such
fetch while its buffer is being taken from (it serves its group every 0.5 s). So at most the run's
`max_in_flight` + `max_held` + 2 x the consumer's `batch_size` records are out of Kafka's hands at any time,
plus librdkafka's bounded prefetch queue (`queued.max.messages.kbytes`), whatever the input rate.

Offsets. The consumer runs in manual-commit mode (a consumer created with `auto_commit=True` is switched to
manual for the run if it has not handed out anything yet, and switched back afterwards). `commit` commits
exactly the positions the run hands it, synchronously, on the consumer thread, and raises if Kafka refuses;
a commit that meets a rebalance in progress polls the group through it and tries again.
END_OF_STREAM events become marker items, so the committed offset moves past them.

Rebalances. On revoke (on the consumer thread, inside a poll) held records of the lost partitions are
dropped, the run forgets the partitions and returns their done prefixes, and those are committed right
there, before the partitions go to their new owner. Items of lost partitions already in the pipeline run to
the end and are yielded, but nothing of them is committed any more (a commit in flight for them is
discarded): the new owner starts at the committed done prefix and may process them again (at-least-once).
Every assignment change bumps a per-partition epoch, so records fetched before a revoke never mix with
records fetched after the partition came back. Partitions assigned are paused or resumed to match the run
(librdkafka keeps a partition's pause flag across a reassignment).

Work-arounds for the `StreamConsumer` as it is (each marked where it is done):
- it serves its group only while it is being called, so a run that takes nothing for a while (its held
  records last) would leave rebalances waiting or pass `max.poll.interval.ms`: the group is served at least
  every `service_interval`, pausing the partitions for that one poll so that it brings no new records;
- `until_high_watermark` counts a partition that came back after a revoke as read as far as it was before,
  and counts an empty assignment (between a revoke and the next assignment) as the end: the read position
  of a (re)assigned partition is reset. A member of a group of several should not rely on that stop
  condition (it stops once its own partitions are read); `idle_timeout` or closing the run fits better.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar, cast

from freight.errors import ConfigError, FreightError, PipelineError
from freight.pipeline.source import PartitionKey, RunControl, SourceItem
from freight.stream.session import CommitSession

if TYPE_CHECKING:
    from freight.pipeline.dead_letter import KafkaDeadLetterSink
    from freight.stream.aio import AsyncStreamConsumer
    from freight.stream.consumer import StreamConsumer, StreamRecord
    from freight.stream.proxy import Proxy

logger = logging.getLogger("freight.pipeline")

R = TypeVar("R")

# Kafka error codes that mean "the group is rebalancing": a commit is tried again after polling the group.
_REBALANCING = frozenset({22, 25, 27})  # ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, REBALANCE_IN_PROGRESS


@dataclass
class ConsumerSourceStats:
    """Counters of a `ConsumerSource`; `held`/`max_held` are the records held here now / at the peak."""

    fetched: int = 0
    markers: int = 0
    held: int = 0
    max_held: int = 0
    kafka_pauses: int = 0
    kafka_resumes: int = 0
    keepalive_polls: int = 0
    service_polls: int = 0  # group polls while records were still buffered (see `service_interval`)
    paused_polls: int = 0  # keep-alive polls since the current Kafka pause took effect
    commits: int = 0
    commit_retries: int = 0
    revoke_commits: int = 0
    assigned: int = 0
    revoked: int = 0
    dropped: int = 0
    paused: bool = False  # as last set in librdkafka (consumer thread)
    paused_at: float | None = None  # time.monotonic() when the current pause took effect in librdkafka


# A fetched batch: its records in runs, each with the partition epochs it was taken in, the error that ended
# the batch (raised once its records went out), and whether the consumer reached its stop condition.
_Batch = tuple[list[tuple[list["StreamRecord"], dict[PartitionKey, int]]], BaseException | None, bool]


class ConsumerSource:
    """A `PipelineSource` over a `StreamConsumer` (see the module docstring); one run at a time.

    `max_held`: most records taken from the consumer and not yet pulled by the run (default: the consumer's
    `batch_size`). `pause_delay`: how long the run must stay full before its partitions are paused in Kafka
    (shorter stalls only stop taking records, which avoids librdkafka dropping and re-fetching its prefetch
    at every small stall; 0: at once). `poll_interval`: longest wait for records on the consumer thread (so
    the longest a commit or the end of the run waits for a fetch in progress), and the period of keep-alive
    polls while paused. `service_interval`: longest time without serving the group (rebalances, liveness)
    while the consumer still holds fetched records. `idle_timeout`: end the input after this many seconds
    without a record while not paused and with partitions assigned (default: the consumer's own; None:
    until its stop condition or forever). `revoke_timeout`: how long a rebalance waits for the event loop
    to hand over the revoked partitions' done prefixes. `close_consumer`: close the consumer when the run
    ends.

    Close the run (`async with pipeline(consumer) as run`, or iterate it to the end) before the consumer:
    until then the consumer belongs to the run's consumer thread.
    """

    def __init__(
        self,
        consumer: StreamConsumer | AsyncStreamConsumer,
        *,
        max_held: int | None = None,
        poll_interval: float = 0.1,
        pause_delay: float = 0.1,
        service_interval: float = 1.0,
        idle_timeout: float | None = None,
        revoke_timeout: float = 30.0,
        close_consumer: bool = False,
    ) -> None:
        sync = cast("StreamConsumer", getattr(consumer, "sync", consumer))  # AsyncStreamConsumer wraps one
        for name in ("next_record", "pause", "resume", "commit", "assignment", "wait_for_assignment"):
            if not callable(getattr(sync, name, None)):
                raise ConfigError(
                    f"ConsumerSource needs a freight StreamConsumer, got {type(consumer).__name__}"
                )
        self.consumer: StreamConsumer = sync
        held = max_held if max_held is not None else int(getattr(sync, "batch_size", 500))
        if isinstance(held, bool) or not isinstance(held, int) or held < 1:
            raise ConfigError(f"max_held must be an integer >= 1, got {max_held!r}")
        if not (isinstance(poll_interval, int | float) and 0 < poll_interval <= 60):
            raise ConfigError(f"poll_interval must be a number of seconds in (0, 60], got {poll_interval!r}")
        if idle_timeout is not None and not (isinstance(idle_timeout, int | float) and idle_timeout > 0):
            raise ConfigError(
                f"idle_timeout must be a positive number of seconds or None, got {idle_timeout!r}"
            )
        self.max_held = held
        self.poll_interval = float(poll_interval)
        if not (isinstance(pause_delay, int | float) and 0 <= pause_delay <= 60):
            raise ConfigError(f"pause_delay must be a number of seconds in [0, 60], got {pause_delay!r}")
        self.pause_delay = float(pause_delay)
        if not (isinstance(service_interval, int | float) and 0 < service_interval <= 60):
            raise ConfigError(
                f"service_interval must be a number of seconds in (0, 60], got {service_interval!r}"
            )
        self.service_interval = float(service_interval)
        self.idle_timeout = idle_timeout if idle_timeout is not None else sync.idle_timeout
        self.revoke_timeout = revoke_timeout
        self.close_consumer = close_consumer
        self.stats = ConsumerSourceStats()

        self._held: deque[StreamRecord] = deque()  # touched on the event loop thread only
        self._epochs: dict[PartitionKey, int] = {}  # written on the consumer thread only
        self._owned: set[PartitionKey] = set()  # consumer thread only (after binding)
        self._last_poll = time.monotonic()  # consumer thread: when Kafka was last polled
        self._changes = 0  # consumer thread: rebalance callbacks seen
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: concurrent.futures.ThreadPoolExecutor | None = None
        self._thread_ident: int | None = None
        self._run: RunControl | None = None
        self._session: CommitSession | None = None
        self._restore_auto_commit = False
        self._paused = False  # what the run asked for (event loop thread)
        self._pause_timer: asyncio.TimerHandle | None = None
        self._keepalive: asyncio.Task[None] | None = None
        self._server: asyncio.Task[None] | None = None
        self._job_error: BaseException | None = None
        self._pending_error: BaseException | None = None
        self._ended = False
        self._iterated = False
        self._closed = False
        self._idle_since = time.monotonic()
        self._sink: KafkaDeadLetterSink | None = None

    # -- binding to a run ----------------------------------------------------------------------------

    def _bind(self) -> None:
        """Take over the consumer for this run (on the event loop, before the first consumer call)."""
        if self._loop is not None:
            return
        if self._closed:
            raise PipelineError("this ConsumerSource was closed; make a new one for another run")
        consumer = self.consumer
        if consumer.auto_commit:
            if consumer.stats.events:
                raise ConfigError(
                    "a pipeline commits offsets itself, but this StreamConsumer already handed out items "
                    "with auto_commit=True; create it with auto_commit=False"
                )
            consumer.auto_commit = False  # the run commits exactly what is done; restored in detach()
            self._restore_auto_commit = True
        self._loop = asyncio.get_running_loop()
        self._owned = set(consumer.assignment())
        self._session = CommitSession(consumer, self, "a running pipeline")
        self._thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="freight-consumer")
        self._thread.submit(self._note_thread)
        self._server = self._loop.create_task(self._serve_group())

    def _note_thread(self) -> None:
        self._thread_ident = threading.get_ident()

    def attach(self, run: RunControl) -> None:
        """Called by the run when it starts (see `AttachableSource`)."""
        self._bind()
        self._run = run

    async def detach(self) -> None:
        """Called by the run after its final commit: stop polling, give the consumer back as it was."""
        await self.aclose()

    async def aclose(self) -> None:
        """Stop using the consumer: restore its listener and commit mode, end the consumer thread."""
        if self._closed:
            return
        self._closed = True
        self._paused = False
        if self._pause_timer is not None:
            self._pause_timer.cancel()
        for task in (self._keepalive, self._server):
            if task is not None:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        try:
            if self._thread is not None:
                with contextlib.suppress(Exception):
                    await self._call(self._resume_if_paused)
                self._thread.shutdown(wait=False)
        finally:
            if self._session is not None:
                self._session.release()
            if self._restore_auto_commit:
                self.consumer.auto_commit = True
            self._run = None
            if self._sink is not None:
                await self._sink.aclose()
            if self.close_consumer:
                await asyncio.to_thread(self.consumer.close)

    async def __aenter__(self) -> ConsumerSource:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def default_dead_letter(self) -> KafkaDeadLetterSink:
        """The sink a run uses when a stage dead-letters and none was given: the consumer's dead-letter
        topic if it has one, else `<topic>.dlq` per source topic. Closed with this source."""
        if self._sink is None:
            from freight.pipeline.dead_letter import KafkaDeadLetterSink

            self._sink = KafkaDeadLetterSink(self.consumer.settings, topic=self.consumer.dead_letter_topic)
        return self._sink

    # -- the consumer thread --------------------------------------------------------------------------

    async def _call(self, fn: Callable[..., R], *args: object) -> R:
        """Run `fn(*args)` on the consumer thread and await it."""
        assert self._thread is not None
        return await asyncio.wrap_future(self._thread.submit(fn, *args))

    def _submit(self, fn: Callable[[], object]) -> None:
        """Run `fn` on the consumer thread without waiting; its error surfaces at the next pull or commit."""
        assert self._thread is not None
        self._thread.submit(fn).add_done_callback(self._job_done)

    def _job_done(self, future: concurrent.futures.Future[object]) -> None:
        if not future.cancelled() and future.exception() is not None and self._job_error is None:
            self._job_error = future.exception()

    def _check_job_errors(self) -> None:
        if self._job_error is not None:
            error, self._job_error = self._job_error, None
            raise PipelineError(f"the Kafka consumer failed: {error}") from error

    def _fetch(self, limit: int, wait: float) -> _Batch:
        """Consumer thread: up to `limit` records, waiting at most `wait` for the first (see `_Batch`).

        Kafka is polled here with `wait_for_assignment(0)`, one non-blocking fetch of at most the consumer's
        `batch_size` records into its buffer, and records are taken with `next_record(0)`, which takes from
        that buffer (the consumer may serve its group meanwhile, see `StreamConsumer._serve_group`). Each
        run of records taken between two rebalances carries the partition epochs of its time.
        """
        consumer = self.consumer
        segments: list[tuple[list[StreamRecord], dict[PartitionKey, int]]] = []
        error: BaseException | None = None
        try:
            deadline = time.monotonic() + wait
            record = consumer.next_record(0, include_end=True)
            while record is None and not _stopped(consumer):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                consumer.wait_for_assignment(0)  # one fetch of at most batch_size records, buffered
                self._last_poll = time.monotonic()
                record = consumer.next_record(0, include_end=True)
                if record is None:
                    time.sleep(min(left, 0.005))
            taken = 0
            changes = -1
            current: list[StreamRecord] = []
            while record is not None:
                if self._changes != changes:  # first record, or a rebalance ran inside the last call
                    current = []
                    changes = self._changes
                    segments.append((current, dict(self._epochs)))
                current.append(record)
                taken += 1
                if taken >= limit:
                    break
                record = consumer.next_record(0, include_end=True)  # only what is already fetched
        except Exception as exc:  # e.g. a bad record under on_bad_event="raise": after the good ones
            error = exc
        return segments, error, _stopped(consumer)

    def _service_poll(self) -> None:
        """Consumer thread: serve the group if nothing polled Kafka for `service_interval`.

        Work-around: `StreamConsumer` serves its group only while it is called, and this source calls it
        only when the run has taken every held record, so a slow run would leave rebalances waiting (and
        could pass `max.poll.interval.ms`). Then the assigned partitions are paused for one non-blocking
        poll (so it brings no new records) and resumed.
        """
        if time.monotonic() - self._last_poll < self.service_interval or self.stats.paused:
            return  # polled meanwhile, or paused in Kafka (the keep-alive polls)
        consumer = self.consumer
        paused_here = not self.stats.paused and bool(consumer.assignment())
        if paused_here:
            consumer.pause()
        try:
            consumer.wait_for_assignment(0)
        finally:
            if paused_here and not self.stats.paused:
                consumer.resume()
        self._last_poll = time.monotonic()
        self.stats.service_polls += 1

    def _pause_now(self) -> None:
        self.consumer.pause()
        self.stats.kafka_pauses += 1
        self.stats.paused = True
        self.stats.paused_at = time.monotonic()
        self.stats.paused_polls = 0

    def _resume_now(self) -> None:
        self.consumer.resume()
        self.stats.kafka_resumes += 1
        self.stats.paused = False
        self.stats.paused_at = None

    def _resume_if_paused(self) -> None:
        if self.stats.paused:
            self._resume_now()

    def _poll_paused(self) -> None:
        """Consumer thread, while paused: serve the group (rebalances, max.poll.interval.ms) without waiting
        and without taking records (anything fetched stays in the consumer's own buffer)."""
        self.consumer.wait_for_assignment(0)
        self._last_poll = time.monotonic()
        self.stats.keepalive_polls += 1
        self.stats.paused_polls += 1

    def _commit_now(self, snapshot: dict[PartitionKey, tuple[int, int]]) -> None:
        """Consumer thread: commit positions of partitions still owned in the epoch they were computed in."""
        deadline = time.monotonic() + max(30.0, self.revoke_timeout)
        while True:
            todo = {
                key: offset
                for key, (offset, epoch) in snapshot.items()
                if key in self._owned and self._epochs.get(key, 0) == epoch
            }
            if not todo:
                return
            try:
                self.consumer.commit(todo)
                self.stats.commits += 1
                return
            except FreightError as exc:
                if not _rebalancing(exc) or time.monotonic() > deadline:
                    raise
                # The group is rebalancing: take part in it (this may revoke partitions), then try again.
                self.stats.commit_retries += 1
                logger.info("commit of %s met a rebalance; polling the group and trying again", todo)
                self.consumer.wait_for_assignment(self.poll_interval)

    # -- rebalances (consumer thread, inside a poll) --------------------------------------------------

    def partitions_assigned(self, partitions: list[PartitionKey]) -> None:
        self._changes += 1
        self.consumer.mark_unread(partitions)
        for key in partitions:
            self._epochs[key] = self._epochs.get(key, 0) + 1
        self._owned.update(partitions)
        self.stats.assigned += len(partitions)
        if not partitions:
            return
        # librdkafka keeps a partition's pause flag across unassign and assign: set it as the run needs it,
        # else a partition paused before a rebalance (e.g. by a service poll) would come back paused for good.
        if self.stats.paused:
            self.consumer.pause(partitions)
        else:
            self.consumer.resume(partitions)

    def partitions_revoked(self, partitions: list[PartitionKey]) -> None:
        self._changes += 1
        keys = set(partitions)
        for key in keys:
            self._epochs[key] = self._epochs.get(key, 0) + 1
        self.consumer.mark_unread(keys)
        self._owned -= keys
        self.stats.revoked += len(keys)
        positions = self._on_loop(self._forget, keys)
        if positions and self.consumer.group_id is not None:
            try:
                self.consumer.commit(positions)
                self.stats.revoke_commits += 1
            except FreightError as exc:  # the partitions are gone anyway; their new owner replays more
                logger.warning("committing %s of revoked partitions failed: %s", positions, exc)

    def _forget(self, keys: set[PartitionKey]) -> dict[PartitionKey, int]:
        """Event loop: drop held records of lost partitions; the run forgets them and says where they are."""
        before = len(self._held)
        self._held = deque(r for r in self._held if (r.topic, r.partition) not in keys)
        self.stats.dropped += before - len(self._held)
        self.stats.held = len(self._held)
        return self._run.revoke_partitions(keys) if self._run is not None else {}

    def _on_loop(
        self, fn: Callable[[set[PartitionKey]], dict[PartitionKey, int]], keys: set[PartitionKey]
    ) -> dict[PartitionKey, int]:
        """Run `fn(keys)` on the event loop and wait for it (from the consumer thread)."""
        loop = self._loop
        if loop is None or loop.is_closed() or threading.get_ident() != self._thread_ident:
            return fn(keys)  # not running on the consumer thread of a live run: nobody else touches the state
        done: concurrent.futures.Future[dict[PartitionKey, int]] = concurrent.futures.Future()

        def run() -> None:
            try:
                done.set_result(fn(keys))
            except BaseException as exc:
                done.set_exception(exc)

        try:
            loop.call_soon_threadsafe(run)
        except RuntimeError:  # the loop closed meanwhile
            return fn(keys)
        try:
            return done.result(timeout=self.revoke_timeout)
        except concurrent.futures.TimeoutError:
            logger.warning(
                "the event loop did not take back revoked partitions %s within %gs (is it blocked?); "
                "their done prefix is not committed, the new owner replays from the last commit",
                sorted(keys),
                self.revoke_timeout,
            )
            return {}

    # -- PipelineSource ---------------------------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[SourceItem[Proxy | None]]:
        if self._iterated:
            raise PipelineError("a ConsumerSource can be iterated once; make a new one for another run")
        self._iterated = True
        return self._items()

    async def _items(self) -> AsyncIterator[SourceItem[Proxy | None]]:
        self._bind()
        self._idle_since = time.monotonic()
        while True:
            while self._held:
                record = self._held.popleft()
                self.stats.held = len(self._held)
                key = (record.topic, record.partition)
                if record.proxy is None:  # END_OF_STREAM: a position only
                    self.stats.markers += 1
                    yield SourceItem(None, key, record.offset, record, marker=True)
                else:
                    yield SourceItem(record.proxy, key, record.offset, record)
                del record  # hold nothing once handed out (memory bound)
            self._check_job_errors()
            if self._pending_error is not None:
                pending, self._pending_error = self._pending_error, None
                raise pending
            if self._ended:
                return
            batch: _Batch = await self._call(self._fetch, self.max_held, self.poll_interval)
            segments, error, stopped = batch
            fetched = self._accept(segments)
            del batch, segments
            self._pending_error = error
            now = time.monotonic()
            if fetched or not self._owned:  # idle time counts only while partitions are assigned
                self._idle_since = now
            idle = self.idle_timeout is not None and now - self._idle_since >= self.idle_timeout
            if stopped or (idle and not fetched):
                self._ended = True

    def _accept(self, segments: list[tuple[list[StreamRecord], dict[PartitionKey, int]]]) -> int:
        """Event loop: hold fetched records, except those of partitions revoked since they were taken.

        Returns how many records were fetched."""
        now = self._epochs
        fetched = 0
        for records, epochs in segments:
            fetched += len(records)
            moved = {key for key in now.keys() | epochs.keys() if now.get(key, 0) != epochs.get(key, 0)}
            if not moved:
                self._held.extend(records)
            else:
                kept = [r for r in records if (r.topic, r.partition) not in moved]
                self._held.extend(kept)
                self.stats.dropped += len(records) - len(kept)
        self.stats.fetched += fetched
        self.stats.held = len(self._held)
        if self.stats.held > self.stats.max_held:
            self.stats.max_held = self.stats.held
        return fetched

    def pause(self) -> None:
        """The run's window is full: stop taking records; if it stays full for `pause_delay`, pause the
        assigned partitions in Kafka and keep polling the group until `resume()`."""
        if self._paused or self._closed:
            return
        self._paused = True
        if self._loop is not None:
            self._pause_timer = self._loop.call_later(self.pause_delay, self._pause_kafka)

    def resume(self) -> None:
        """The run drained: resume fetching (held records go out first)."""
        if not self._paused or self._closed:
            return
        self._paused = False
        self._idle_since = time.monotonic()
        if self._pause_timer is not None:
            self._pause_timer.cancel()  # a short stall: Kafka never heard of it
            self._pause_timer = None
        if self._keepalive is not None:
            self._keepalive.cancel()
            self._keepalive = None
            self._submit(self._resume_if_paused)  # after the pause job, whether it ran already or not

    def _pause_kafka(self) -> None:
        """Event loop, `pause_delay` after the run paused: pause the partitions, then keep polling."""
        self._pause_timer = None
        if not self._paused or self._closed or self._thread is None:
            return
        assert self._loop is not None
        self._submit(self._pause_now)
        self._keepalive = self._loop.create_task(self._keep_alive())

    async def _serve_group(self) -> None:
        """For the whole run: make sure the group is served at least every `service_interval`."""
        try:
            while not self._closed:
                await asyncio.sleep(self.service_interval / 2)
                if time.monotonic() - self._last_poll >= self.service_interval and not self._closed:
                    await self._call(self._service_poll)
        except Exception as exc:
            if self._job_error is None:
                self._job_error = exc

    async def _keep_alive(self) -> None:
        """While paused in Kafka: poll the group every `poll_interval` (each poll returns at once, so the
        consumer thread stays free for commits). Cancelled by `resume()`."""
        try:
            while True:
                await asyncio.sleep(self.poll_interval)
                await self._call(self._poll_paused)
        except Exception as exc:
            if self._job_error is None:
                self._job_error = exc

    async def commit(self, offsets: Mapping[PartitionKey, int]) -> None:
        """Commit exactly these positions (next offset to read) of partitions this member still owns."""
        self._check_job_errors()
        if not offsets:
            return
        if self._thread is None:
            self._bind()
        epochs = self._epochs
        snapshot = {key: (offset, epochs.get(key, 0)) for key, offset in offsets.items()}
        await self._call(self._commit_now, snapshot)


def _stopped(consumer: StreamConsumer) -> bool:
    """Whether the consumer reached its stop condition (`until_high_watermark`, `until_end_of`)."""
    return consumer.stopped


def _rebalancing(exc: BaseException) -> bool:
    """True when a (translated) Kafka error says the group is rebalancing."""
    cause: BaseException | None = exc
    while cause is not None:
        err = cause.args[0] if cause.args else None
        code = getattr(err, "code", None)
        if callable(code) and code() in _REBALANCING:
            return True
        cause = cause.__cause__
    return False
