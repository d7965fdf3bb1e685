"""Async processing pipelines over streams, with bounded buffers, error policies and Dask dispatch.

```python
from freight.pipeline import batch_stage, stage

@stage(concurrency=8, on_error="skip")
async def decode(event): ...

@batch_stage(max_size=64, min_size=8, max_wait=0.05)
def embed(items: list[Image]) -> list[Vector]: ...   # plain functions run on an executor

async for vector in (decode | embed)(source):          # StreamConsumer, async iterable or iterable
    ...
```

Modules: `stages` (decorators, `|`), `engine` (the runner), `errors` (policies, reports), `offsets`
(contiguous-prefix commits), `source` (the `PipelineSource` / `DeadLetterSink` protocols and adapters),
`kafka` (`ConsumerSource`: a `StreamConsumer` as a source, with pause/resume, commits and rebalances),
`dead_letter` (`KafkaDeadLetterSink`, `read_dead_letters`), `dask` (`DaskExecutor`; Dask itself is only
needed by whoever creates the client). The Kafka modules load on first use of their names.
"""

from typing import TYPE_CHECKING, Any

from freight.pipeline.dask import DaskExecutor
from freight.pipeline.engine import PipelineRun, PipelineStats
from freight.pipeline.error_policy import (
    BatchResultError,
    ErrorPolicy,
    ErrorReport,
    FinalAction,
    Retry,
    StageError,
)
from freight.pipeline.offsets import OffsetTracker
from freight.pipeline.source import (
    AttachableSource,
    DeadLetterSink,
    IterableSource,
    MemoryDeadLetterSink,
    MemorySource,
    PartitionKey,
    PipelineSource,
    RunControl,
    SourceItem,
    as_source,
)
from freight.pipeline.stages import (
    BatchStage,
    ItemStage,
    Mode,
    Pipeline,
    RunOptions,
    Stage,
    StageExecutor,
    ThreadExecutor,
    batch_stage,
    stage,
)

if TYPE_CHECKING:
    from freight.pipeline.consumer_source import ConsumerSource, ConsumerSourceStats
    from freight.pipeline.dead_letter import DeadLetter, KafkaDeadLetterSink, read_dead_letters

_LAZY = {
    "ConsumerSource": "freight.pipeline.consumer_source",
    "ConsumerSourceStats": "freight.pipeline.consumer_source",
    "DeadLetter": "freight.pipeline.dead_letter",
    "KafkaDeadLetterSink": "freight.pipeline.dead_letter",
    "read_dead_letters": "freight.pipeline.dead_letter",
}


def __getattr__(name: str) -> Any:
    """The Kafka-facing names, imported on first use (plain pipelines do not load Kafka clients)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'freight.pipeline' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = [
    "AttachableSource",
    "BatchResultError",
    "BatchStage",
    "ConsumerSource",
    "ConsumerSourceStats",
    "DaskExecutor",
    "DeadLetter",
    "DeadLetterSink",
    "ErrorPolicy",
    "ErrorReport",
    "FinalAction",
    "ItemStage",
    "IterableSource",
    "KafkaDeadLetterSink",
    "MemoryDeadLetterSink",
    "MemorySource",
    "Mode",
    "OffsetTracker",
    "PartitionKey",
    "Pipeline",
    "PipelineRun",
    "PipelineSource",
    "PipelineStats",
    "Retry",
    "RunControl",
    "RunOptions",
    "SourceItem",
    "Stage",
    "StageError",
    "StageExecutor",
    "ThreadExecutor",
    "as_source",
    "batch_stage",
    "read_dead_letters",
    "stage",
]
