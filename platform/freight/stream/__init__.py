"""Streaming core: producers, consumer groups, lazy proxies, replay from offsets."""

from freight.stream.aio import AsyncStreamConsumer, AsyncStreamProducer
from freight.stream.consumer import ConsumerStats, RebalanceListener, StreamConsumer, StreamRecord
from freight.stream.metadata import ItemMetadata
from freight.stream.producer import ProducerStats, RecordPosition, SendResult, StreamProducer
from freight.stream.proxy import Proxy, ProxyRef, extract, is_resolved, ref_of

__all__ = [
    "AsyncStreamConsumer",
    "AsyncStreamProducer",
    "ConsumerStats",
    "ItemMetadata",
    "ProducerStats",
    "Proxy",
    "ProxyRef",
    "RebalanceListener",
    "RecordPosition",
    "SendResult",
    "StreamConsumer",
    "StreamProducer",
    "StreamRecord",
    "extract",
    "is_resolved",
    "ref_of",
]
