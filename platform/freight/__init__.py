"""Freight: stream large objects through Kafka.

Small Avro events travel through Kafka topics; the bulk bytes they describe live in a store (filesystem, S3,
memory, GPU). Consumers in consumer groups receive lazy proxies, and the bytes move only between the store
and the process that resolves the proxy.

The main names are importable from here (`from freight import StreamProducer, StreamConsumer, Store`);
they load on first use so that `import freight` stays light.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

logging.getLogger("freight").addHandler(logging.NullHandler())

__version__ = "0.1.0"

_EXPORTS = {
    "StreamProducer": "freight.stream",
    "StreamConsumer": "freight.stream",
    "AsyncStreamProducer": "freight.stream",
    "AsyncStreamConsumer": "freight.stream",
    "Proxy": "freight.stream",
    "ItemMetadata": "freight.stream",
    "extract": "freight.stream",
    "is_resolved": "freight.stream",
    "Store": "freight.stores",
    "FreightSettings": "freight.config",
    "EvictionMode": "freight.schemas",
    "FreightError": "freight.errors",
}
__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'freight' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
