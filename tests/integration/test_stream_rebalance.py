"""Rebalances lose nothing: records prefetched for a partition that is revoked and assigned back (to the
same member or another) are read again from the group's committed offset."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from freight.config import FreightSettings
from freight.stream import StreamConsumer


def test_members_joining_and_leaving_lose_no_record(
    stream_settings: FreightSettings,
    make_topic: Callable[..., str],
    make_producer: Callable[..., Any],
    file_store: Any,
    group_id: str,
) -> None:
    topic = make_topic(partitions=2)
    producer = make_producer({None: file_store})
    total = 600
    for i in range(total):
        producer.send(topic, i.to_bytes(4, "big"), stream=f"s{i % 8}")
    producer.flush()

    seen: list[int] = []
    lock = threading.Lock()
    stop = threading.Event()

    def member(name: str, lifetime: float) -> None:
        end = time.monotonic() + lifetime
        # Small batches and slow items: revocations find prefetched records not yet handed out.
        with StreamConsumer(topic, group_id, settings=stream_settings, batch_size=16, idle_timeout=4) as c:
            for proxy in c:
                with lock:
                    seen.append(int.from_bytes(bytes(proxy), "big"))
                time.sleep(0.002)
                if time.monotonic() > end or stop.is_set():
                    break

    first = threading.Thread(target=member, args=("a", 60))
    first.start()
    time.sleep(1.0)
    for _ in range(3):  # members come and go: each join and leave revokes and reassigns partitions
        visitor = threading.Thread(target=member, args=("b", 1.0))
        visitor.start()
        visitor.join(30)
    first.join(90)
    stop.set()
    missing = sorted(set(range(total)) - set(seen))
    assert not missing, f"{len(missing)} record(s) never delivered, e.g. {missing[:10]}"
