"""Offset-driven stream buffers: chunk policies, sliding windows, exact rebuild after a crash.

- `BufferItem` (what a consumer feeds), `StreamChunk` (what comes out): `freight.buffer.chunk`
- the `ChunkPolicy` family - `Count`, `Bytes`, `Time`, `SlidingWindow`, `LeftContext`, `SessionGap`,
  `Ramp` - with their exact semantics: `freight.buffer.policies`
- `StreamBuffer` and its `ResumeState`: `freight.buffer.buffer`
- the per-partition commit low watermark and the resume state stored in commit metadata:
  `freight.buffer.commit_point`; `PartitionBuffers`, the pure core of `consumer.chunks()`:
  `freight.buffer.partition`
- `stack` (numpy / torch): `freight.buffer.stacking`
"""

from freight.buffer.buffer import ResumeState, StreamBuffer
from freight.buffer.chunk import BufferItem, StreamChunk
from freight.buffer.commit_point import (
    DEFAULT_METADATA_LIMIT,
    CommitPoint,
    PartitionResume,
    PartitionWatermark,
    decode_resume,
    encode_resume,
)
from freight.buffer.partition import PartitionBuffers
from freight.buffer.policies import (
    NO_PAD,
    Bytes,
    ChunkPolicy,
    ChunkScanner,
    Count,
    LeftContext,
    PartialMode,
    Ramp,
    SessionGap,
    SlidingWindow,
    Time,
    Verdict,
)
from freight.buffer.stacking import stack

__all__ = [
    "DEFAULT_METADATA_LIMIT",
    "NO_PAD",
    "BufferItem",
    "Bytes",
    "ChunkPolicy",
    "ChunkScanner",
    "CommitPoint",
    "Count",
    "LeftContext",
    "PartialMode",
    "PartitionBuffers",
    "PartitionResume",
    "PartitionWatermark",
    "Ramp",
    "ResumeState",
    "SessionGap",
    "SlidingWindow",
    "StreamBuffer",
    "StreamChunk",
    "Time",
    "Verdict",
    "decode_resume",
    "encode_resume",
    "stack",
]
