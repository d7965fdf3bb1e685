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


def test_until_high_watermark_member_does_not_stop_while_its_partitions_are_revoked(
    stream_settings: FreightSettings,
    make_topic: Callable[..., str],
    make_producer: Callable[..., Any],
    file_store: Any,
    group_id: str,
) -> None:
    """A join revokes every partition of the running member before assigning again; with nothing assigned
    for that moment, the member must wait for its new assignment, not report the end of its input."""
    topic = make_topic(partitions=2)
    producer = make_producer({None: file_store})
    total = 80
    for i in range(total):
        producer.send(topic, i.to_bytes(4, "big"), stream=f"s{i % 4}")
    producer.flush()

    seen: dict[str, list[int]] = {"a": [], "b": []}
    stopped: dict[str, bool] = {}

    def read(name: str, consumer: StreamConsumer) -> None:
        deadline = time.monotonic() + 60
        while not consumer.stopped and time.monotonic() < deadline:
            proxy = consumer.poll(timeout=0.01)  # short polls: the revocation and the new assignment
            # arrive in separate calls, so the member sees the moment in between with nothing assigned
            if proxy is not None:
                seen[name].append(int.from_bytes(bytes(proxy), "big"))
                time.sleep(0.05)  # slow items: the join below lands mid-read
        stopped[name] = consumer.stopped

    opts: dict[str, Any] = {"settings": stream_settings, "until_high_watermark": True, "batch_size": 1}
    with StreamConsumer(topic, group_id, **opts) as a:
        assert not a.stopped
        first = a.poll(timeout=30.0)
        assert first is not None
        seen["a"].append(int.from_bytes(bytes(first), "big"))
        with StreamConsumer(topic, group_id, **opts) as b:
            joiner = threading.Thread(target=read, args=("b", b))
            joiner.start()
            read("a", a)
            joiner.join(90)
            assert not joiner.is_alive(), "the joiner never finished: it waited on a stopped member"
    assert stopped == {"a": True, "b": True}
    missing = sorted(set(range(total)) - set(seen["a"]) - set(seen["b"]))
    assert not missing, f"{len(missing)} record(s) never read, e.g. {missing[:10]}; a stopped early"


def test_stopped_tells_the_end_of_input_from_a_timeout(
    stream_settings: FreightSettings, topic: str, make_producer: Callable[..., Any], file_store: Any
) -> None:
    producer = make_producer({None: file_store})
    for i in range(3):
        producer.send(topic, bytes([i]))
    producer.flush()
    with StreamConsumer(topic, None, settings=stream_settings) as open_ended:
        assert [bytes(open_ended.next_object(timeout=30)) for _ in range(3)] == [b"\0", b"\1", b"\2"]
        assert open_ended.next_record(timeout=1) is None and not open_ended.stopped
    with StreamConsumer(topic, None, settings=stream_settings, until_high_watermark=True) as bounded:
        assert [bytes(bounded.next_object(timeout=30)) for _ in range(3)] == [b"\0", b"\1", b"\2"]
        assert bounded.next_record(timeout=5) is None and bounded.stopped
