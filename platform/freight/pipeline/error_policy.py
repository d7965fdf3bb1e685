"""Error policies of stages and the reports they leave behind.

Every failure ends in exactly one visible outcome, in both execution modes:

- `"fail"` (default): the pipeline stops admitting input, commits the done prefix (which cannot pass the
  failed item) and raises `StageError`. In ordered mode the error surfaces at the failed item's position,
  after every earlier result; in as-completed mode as soon as it happens.
- `"skip"`: the item is counted as done, logged at WARNING and recorded in `PipelineRun.errors`.
- `"dead_letter"`: the source item and an `ErrorReport` go to the run's `DeadLetterSink`; the item counts as
  done once the sink accepted it. A failing sink stops the pipeline.
- `Retry(...)`: retried with exponential backoff; when attempts run out, its `then` policy applies.
"""

from __future__ import annotations

import asyncio
import random
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from freight.errors import ConfigError, PipelineError
from freight.pipeline.source import PartitionKey

FinalAction = Literal["fail", "skip", "dead_letter"]
"""What happens to an item once its stage gave up on it."""

_ACTIONS: tuple[FinalAction, ...] = ("fail", "skip", "dead_letter")


@dataclass(frozen=True)
class Retry:
    """Retry a failing call with exponential backoff, then apply `then`.

    `attempts` counts every call, the first included. The n-th retry waits
    `min(backoff * factor ** (n - 1), max_backoff)`, stretched by up to `jitter` (a fraction) at random.
    Only exceptions matching `retry_on` are retried; others go to `then` at once. `sleep` is injectable so
    tests can record the delays instead of waiting.
    """

    attempts: int = 3
    backoff: float = 0.1
    factor: float = 2.0
    max_backoff: float = 30.0
    jitter: float = 0.0
    then: FinalAction = "fail"
    retry_on: tuple[type[BaseException], ...] = (Exception,)
    sleep: Callable[[float], Awaitable[Any]] = field(default=asyncio.sleep, compare=False)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ConfigError(f"Retry attempts must be at least 1, got {self.attempts}")
        if self.backoff < 0 or self.max_backoff < 0:
            raise ConfigError("Retry backoff and max_backoff must be >= 0")
        if self.factor < 1:
            raise ConfigError(f"Retry factor must be >= 1, got {self.factor}")
        if not 0 <= self.jitter <= 1:
            raise ConfigError(f"Retry jitter is a fraction in [0, 1], got {self.jitter}")
        if self.then not in _ACTIONS:
            raise ConfigError(f"Retry then must be one of {', '.join(_ACTIONS)}, got {self.then!r}")

    def delay(self, retry_number: int) -> float:
        """Seconds to wait before retry number `retry_number` (1 for the first retry)."""
        base = min(self.backoff * self.factor ** (retry_number - 1), self.max_backoff)
        if self.jitter:
            base *= 1 + random.uniform(0, self.jitter)  # noqa: S311 - backoff jitter, not cryptography
        return base


ErrorPolicy: TypeAlias = Literal["fail", "skip", "dead_letter", "dead-letter", "retry"] | Retry
"""A stage's `on_error`: a final action, `"retry"` (Retry() defaults), or a configured `Retry`."""


def normalize_policy(policy: object) -> Retry | FinalAction:
    """Validate `on_error`: a final action name, "retry"/"dead-letter" spellings, or a `Retry`."""
    if isinstance(policy, Retry):
        return policy
    if policy == "retry":
        return Retry()
    if policy == "dead-letter":
        return "dead_letter"
    if policy in _ACTIONS:
        return policy
    raise ConfigError(
        f"unknown on_error policy {policy!r}; use 'fail', 'skip', 'dead_letter', 'retry' or Retry(...)"
    )


def final_action(policy: Retry | FinalAction) -> FinalAction:
    """The action applied once retries (if any) are exhausted."""
    return policy.then if isinstance(policy, Retry) else policy


@dataclass(frozen=True)
class ErrorReport:
    """What failed, where and how: enough to find the input again (topic, partition, offset) and debug it.

    It never holds the item's value (it may be a large object or an unresolved proxy) nor the exception
    object (which would pin frames and values in memory); `traceback` has the formatted stack.
    """

    stage: str
    partition_key: PartitionKey
    offset: int
    error_type: str
    message: str
    traceback: str
    attempts: int
    action: FinalAction
    batch_size: int = 1
    time: float = field(default_factory=time.time)

    @classmethod
    def from_exception(
        cls,
        exc: BaseException,
        *,
        stage: str,
        partition_key: PartitionKey,
        offset: int,
        attempts: int,
        action: FinalAction,
        batch_size: int = 1,
    ) -> ErrorReport:
        kind = type(exc)
        return cls(
            stage=stage,
            partition_key=partition_key,
            offset=offset,
            error_type=f"{kind.__module__}.{kind.__qualname__}",
            message=str(exc),
            traceback="".join(traceback.format_exception(exc)),
            attempts=attempts,
            action=action,
            batch_size=batch_size,
        )

    def where(self) -> str:
        topic, partition = self.partition_key
        return f"{topic}[{partition}]@{self.offset}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (DLQ record headers, logs)."""
        topic, partition = self.partition_key
        return {
            "stage": self.stage,
            "topic": topic,
            "partition": partition,
            "offset": self.offset,
            "error_type": self.error_type,
            "message": self.message,
            "traceback": self.traceback,
            "attempts": self.attempts,
            "action": self.action,
            "batch_size": self.batch_size,
            "time": self.time,
        }


class StageError(PipelineError):
    """A stage failed on an item under the `fail` policy; `report` names the stage, the item and the cause."""

    def __init__(self, report: ErrorReport) -> None:
        super().__init__(
            f"stage {report.stage!r} failed on {report.where()} after {report.attempts} attempt(s): "
            f"{report.error_type.rsplit('.', 1)[-1]}: {report.message}"
        )
        self.report = report


class BatchResultError(PipelineError):
    """A batch stage returned a number of results different from the number of items it was given."""
