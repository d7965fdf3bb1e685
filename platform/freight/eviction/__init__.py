"""Offset-watermark eviction: delete objects every retaining group has committed past.

`Evictor` runs passes (once, or as a service) over the topics that have a `RetentionPolicy` (kept in a
compacted topic by `PolicyStore`); `freight.eviction.watermark` computes the per-partition watermark,
`freight.eviction.orphans` sweeps unreferenced objects, `freight.eviction.report` reports what is held and
why. The CLI is `freight evict`.
"""

from freight.eviction.decisions import Action, decide
from freight.eviction.evictor import BatchEvent, Evictor, PartitionReport, PassReport, TopicReport, summary
from freight.eviction.ledger import LEDGER_TOPIC, KeepLedger
from freight.eviction.orphans import SweepReport, is_producer_key, orphan_candidates
from freight.eviction.policy import (
    POLICIES_TOPIC,
    PolicyStore,
    RetentionPolicy,
    format_duration,
    parse_duration,
)
from freight.eviction.report import PartitionStatus, StoreUsage, TopicStatus
from freight.eviction.watermark import (
    GroupPosition,
    PartitionWatermark,
    partition_watermark,
    retaining_groups,
    topic_watermarks,
)
from freight.kafka.checkpoint import EVICTOR_GROUP, explain_missing

__all__ = [
    "EVICTOR_GROUP",
    "LEDGER_TOPIC",
    "POLICIES_TOPIC",
    "Action",
    "BatchEvent",
    "Evictor",
    "GroupPosition",
    "KeepLedger",
    "PartitionReport",
    "PartitionStatus",
    "PartitionWatermark",
    "PassReport",
    "PolicyStore",
    "RetentionPolicy",
    "StoreUsage",
    "SweepReport",
    "TopicReport",
    "TopicStatus",
    "decide",
    "explain_missing",
    "format_duration",
    "is_producer_key",
    "orphan_candidates",
    "parse_duration",
    "partition_watermark",
    "retaining_groups",
    "summary",
    "topic_watermarks",
]
