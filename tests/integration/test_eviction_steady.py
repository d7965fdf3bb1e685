"""Steady streaming with two groups keeping up and the evictor running as a service: the store stays bounded.

Configuration: the producer sends at most RATE objects per second (paced one at a time, so a stall never
turns into a burst) and never while a group lags more than MAX_LAG records (its committed offset behind the
high watermark); that is what "groups keep up" means here. One group auto-commits, the other is a stream
buffer (`consumer.chunks(SlidingWindow)`) whose commits stay at its open windows. The evictor runs every
INTERVAL seconds. The store can then hold at most

    MAX_LAG                  objects above the watermark (the slowest group's lag, windows included)
  + MAX_LAG + RATE * INTERVAL objects below it not yet evicted (the watermark jumps by at most one group's
                             lag at a commit, plus what arrives between two passes)

and the test allows RATE * INTERVAL once more for the length of a pass. Without eviction the store would grow
by RATE every second, past the bound within the default run. The run lasts FREIGHT_SOAK_SECONDS (default 20 s
per store; set it to minutes for a soak), sampling the store every 0.25 s. The consumers resolve every
object, so an object evicted too early would fail the run too.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.integration.eviction_procs import events, keys_at_or_above, payload, stored_keys

from freight.buffer import SlidingWindow
from freight.config import FreightSettings
from freight.connectors.file import FileConnector
from freight.eviction import Evictor, PolicyStore, RetentionPolicy
from freight.kafka import KafkaAdmin
from freight.stores import Store
from freight.stream import StreamConsumer

RATE = 50.0  # objects per second, at most
INTERVAL = 1.0  # seconds between evictor passes
MAX_LAG = 80  # records a group may lag before the producer waits
STREAMS = 4
WINDOW = SlidingWindow(8, 4)
SIZE = 8192  # bytes per object (above the inline threshold)
DURATION = float(os.environ.get("FREIGHT_SOAK_SECONDS", "20"))
BOUND = 2 * MAX_LAG + 2 * RATE * INTERVAL


@pytest.fixture(params=["file", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "file":
        made = Store(f"steady-{uuid.uuid4().hex[:8]}", FileConnector(tmp_path / "store"))
    else:
        from freight.connectors import S3Connector

        made = Store(f"steady-s3-{uuid.uuid4().hex[:8]}", S3Connector(request.getfixturevalue("s3_bucket")))
    yield made
    made.close()


def _lag(admin: KafkaAdmin, groups: list[str], topic: str) -> int:
    return max(sum(p.lag for p in admin.group_offsets(g, topic)) for g in groups)


@pytest.mark.long
def test_store_stays_bounded_while_groups_keep_up(
    stream_settings: FreightSettings,
    make_topic: Callable[..., str],
    make_producer: Callable[..., Any],
    store: Store,
    group_id: str,
    admin: KafkaAdmin,
) -> None:
    topic = make_topic(partitions=2)
    plain, buffered = f"{group_id}-plain", f"{group_id}-buffered"
    PolicyStore(stream_settings).put(RetentionPolicy(topic=topic, groups=(plain, buffered)))
    producer = make_producer({None: store})
    stop_producing = threading.Event()
    stop_evictor = threading.Event()
    errors: list[BaseException] = []
    sent = [0]
    samples: list[tuple[int, int]] = []
    passes: list[Any] = []

    def guarded(fn: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                fn()
            except BaseException as exc:
                errors.append(exc)
                stop_producing.set()

        return run

    def produce() -> None:
        lag_admin = KafkaAdmin(stream_settings)
        while not stop_producing.is_set():
            if sent[0] % 10 == 0:
                while (
                    _lag(lag_admin, [plain, buffered], topic) > MAX_LAG - 10 and not stop_producing.is_set()
                ):
                    time.sleep(0.05)
            producer.send(topic, payload(sent[0], SIZE), stream=f"s{sent[0] % STREAMS}")
            sent[0] += 1
            time.sleep(1 / RATE)
        producer.end_stream(topic, "stop")  # the data streams stay open: their windows stay open
        producer.flush()

    def consume_plain() -> None:
        with StreamConsumer(topic, plain, settings=stream_settings, until_end_of=["stop"]) as c:
            for obj in c.iter_objects():  # resolving: an object evicted too early would raise here
                assert len(obj) == SIZE // 8

    def consume_buffered() -> None:
        with (
            StreamConsumer(
                topic, buffered, settings=stream_settings, until_end_of=["stop"], auto_commit=False
            ) as c,
            c.chunks(WINDOW, resolve=True, commit_interval=0.5) as chunks,
        ):
            for chunk in chunks:
                assert chunk.stream == "stop" or len(chunk.data) == WINDOW.size

    with Evictor(stream_settings, stores=[store], batch_size=50, stop=stop_evictor) as evictor:
        threads = [threading.Thread(target=guarded(f)) for f in (consume_plain, consume_buffered)]
        for t in threads:
            t.start()
        service = threading.Thread(
            target=guarded(
                lambda: evictor.serve(INTERVAL, topics=[topic], orphan_interval_s=None, on_pass=passes.append)
            )
        )
        service.start()
        writer = threading.Thread(target=guarded(produce))
        writer.start()
        end = time.monotonic() + DURATION
        while time.monotonic() < end and not errors:
            listed = list(store.connector.list(topic + "/"))
            samples.append((len(listed), sum(i.size for i in listed)))
            time.sleep(0.25)
        stop_producing.set()
        writer.join(60)
        for t in threads:
            t.join(60)
        stop_evictor.set()
        service.join(60)
        assert not errors, errors

        object_bytes = max(r.size for r in events(stream_settings, topic).values())
        worst = max(n for n, _ in samples)
        print(f"sent {sent[0]}, store at most {worst} objects (bound {BOUND:g}), {len(passes)} passes")
        assert sent[0] > 1.5 * BOUND, f"only {sent[0]} objects were sent: the run does not show a bound"
        assert worst <= BOUND, f"the store held {worst} objects, over the bound of {BOUND:g}"
        assert max(b for _, b in samples) <= BOUND * object_bytes
        assert sum(p.deleted for p in passes) >= sent[0] - BOUND

        # Producing stopped and both groups finished: one more pass drains the store to the retained windows.
        evictor.stop.clear()
        evictor.run_once([topic])
    refs = events(stream_settings, topic)
    committed = [{p: o for (_t, p), o in admin.committed(g, topic).items()} for g in (plain, buffered)]
    marks = {p: min(c.get(p, 0) for c in committed) for p in (0, 1)}
    left = stored_keys(store, topic)
    assert left == keys_at_or_above(refs, marks)
    assert len(left) <= STREAMS * WINDOW.size + 2 * MAX_LAG  # open windows, and what the groups did not reach
