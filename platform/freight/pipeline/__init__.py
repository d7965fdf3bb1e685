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
`dask` (`DaskExecutor`; Dask itself is only needed by whoever creates the client).
"""

from freight.pipeline.dask import DaskExecutor
from freight.pipeline.engine import PipelineRun, PipelineStats
from freight.pipeline.errors import BatchResultError, ErrorPolicy, ErrorReport, FinalAction, Retry, StageError
from freight.pipeline.offsets import OffsetTracker
from freight.pipeline.source import (
    DeadLetterSink,
    IterableSource,
    MemoryDeadLetterSink,
    MemorySource,
    PartitionKey,
    PipelineSource,
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

__all__ = [
    "BatchResultError",
    "BatchStage",
    "DaskExecutor",
    "DeadLetterSink",
    "ErrorPolicy",
    "ErrorReport",
    "FinalAction",
    "ItemStage",
    "IterableSource",
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
    "RunOptions",
    "SourceItem",
    "Stage",
    "StageError",
    "StageExecutor",
    "ThreadExecutor",
    "as_source",
    "batch_stage",
    "stage",
]
