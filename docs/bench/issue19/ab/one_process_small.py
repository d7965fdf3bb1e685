"""One process, no forks: send N objects of 128 B with StreamProducer, then read them back with a
StreamConsumer (group), resolving each inline proxy; prints objects/s for each side.

Used for the per-event A/B of issue 19 (run it alternately on two checkouts, e.g. with `git stash`):
    FREIGHT_KAFKA_BOOTSTRAP=... FREIGHT_SCHEMA_REGISTRY_URL=... python one_process_small.py 50000
"""

import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

from freight.config import load_settings
from freight.connectors.file import FileConnector
from freight.kafka import KafkaAdmin
from freight.stores import Store
from freight.stream import StreamConsumer, StreamProducer

settings = load_settings()
count = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
topic = f"ab-small-{uuid.uuid4().hex[:8]}"
admin = KafkaAdmin(settings)
admin.create_topic(topic, partitions=1)
payload = os.urandom(128)
with tempfile.TemporaryDirectory() as tmp:
    store = Store("ab-small", FileConnector(Path(tmp)))
    with StreamProducer({None: store}, settings=settings) as producer:
        producer.send(topic, payload, stream="warm-up")
        producer.flush()
        t0 = time.perf_counter()
        for i in range(count):
            producer.send(topic, payload, stream=f"s{i % 4}")
        producer.flush()
        sent = count / (time.perf_counter() - t0)
    with StreamConsumer(topic, f"g-{topic}", settings=settings, idle_timeout=30) as consumer:
        bytes(consumer.next_proxy(60))  # the warm-up object
        t0 = time.perf_counter()
        for got, proxy in enumerate(consumer, 1):
            bytes(proxy)
            if got == count:
                break
        read = count / (time.perf_counter() - t0)
admin.delete_topics([topic])
print(f"produce {sent:,.0f}/s consume {read:,.0f}/s (load average {os.getloadavg()[0]:.2f})")
