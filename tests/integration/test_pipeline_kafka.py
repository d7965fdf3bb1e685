"""Pipelines over a real `StreamConsumer` on the session broker: backpressure reaching Kafka, a crash and
restart in a child process (offsets and dead letters), the default dead-letter topic, a member joining in the
middle of a run, and a bad record in the input.

Bounds come from the configuration (window, hold limit), never from timings. librdkafka's own view comes
from its statistics callback, which runs on the consumer thread between our calls: its `ts` is the same
monotonic clock as `time.monotonic()`, so a snapshot can be placed inside or outside a pause.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pipeline_procs import failing
from tests.fixtures.stream import child_env

from freight.config import FreightSettings
from freight.kafka import KafkaAdmin
from freight.pipeline import ConsumerSource, read_dead_letters, stage
from freight.stream import StreamConsumer, extract, is_resolved, ref_of

PROCS = Path(__file__).with_name("pipeline_procs.py")

Item = tuple[int, int]  # (partition, offset)


def _produce(
    producer: Any, topic: str, count: int, streams: int, *, end: bool = True, size: int = 64
) -> tuple[dict[Item, tuple[str, int]], set[Item]]:
    """Send `count` objects round-robin over `streams` streams (then END_OF_STREAM for each).

    Returns {(partition, offset): (stream, sequence)} of the objects and the positions of the end markers.
    """
    sent = []
    for i in range(count):
        stream = f"s{i % streams}"
        sent.append((stream, i // streams, producer.send(topic, bytes([i % 251]) * size, stream=stream)))
    ends = [producer.end_stream(topic, f"s{k}") for k in range(streams)] if end else []
    producer.flush()
    items = {}
    for stream, sequence, result in sent:
        pos = result.result()
        items[(pos.partition, pos.offset)] = (stream, sequence)
    markers = {(r.result().partition, r.result().offset) for r in ends}
    return items, markers


def test_fast_producer_slow_stage_pauses_kafka_and_stays_bounded(
    stream_settings: FreightSettings,
    make_topic: Callable[..., str],
    make_producer: Callable[..., Any],
    file_store: Any,
    group_id: str,
) -> None:
    topic = make_topic(partitions=2)
    window, resume_at, max_held, batch = 16, 4, 24, 40
    total = 2400
    producer = make_producer({None: file_store}, inline_threshold=1024)  # tiny objects travel inline

    produced: dict[str, Any] = {}

    def write() -> None:
        produced["items"], produced["markers"] = _produce(producer, topic, total, 6)

    writer = threading.Thread(target=write)
    samples: list[dict[str, Any]] = []
    source: ConsumerSource | None = None

    def on_stats(text: str) -> None:  # consumer thread, inside a poll
        doc = json.loads(text)
        parts = [p for k, p in doc["topics"].get(topic, {}).get("partitions", {}).items() if k != "-1"]
        assert source is not None
        samples.append(
            {
                "ts": doc["ts"] / 1e6,
                "paused_at": source.stats.paused_at,
                "polls": source.stats.paused_polls,
                "prefetched": sum(p["fetchq_size"] for p in parts),
                "rx": sum(p["rxmsgs"] for p in parts),
            }
        )

    consumer = StreamConsumer(
        topic,
        group_id,
        settings=stream_settings,
        auto_commit=False,
        batch_size=batch,
        until_end_of=[f"s{k}" for k in range(6)],  # the input ends at the end-of-stream markers
        kafka_config={"statistics.interval.ms": 50, "stats_cb": on_stats},
    )
    source = ConsumerSource(consumer, max_held=max_held)

    @stage(concurrency=2)
    async def slow(proxy: Any) -> Item:
        ref = ref_of(proxy)
        # Mostly fast, with a long stall every 300 items: the window fills and stays full.
        await asyncio.sleep(0.3 if ref.sequence % 300 == 299 else 0.0005)
        return ref.partition, ref.offset

    peak_outside_kafka = 0

    async def main() -> list[Item]:
        nonlocal peak_outside_kafka
        seen: list[Item] = []
        async with slow(source, max_in_flight=window, resume_at=resume_at) as run:
            async for item in run:
                seen.append(item)
                # The consumer's own buffer of fetched records is private; reading its length is enough here.
                outside = run.in_flight + source.stats.held + len(consumer._batch)
                peak_outside_kafka = max(peak_outside_kafka, outside)
        assert run.stats.max_in_flight <= window and run.stats.max_queued <= window
        assert run.stats.pauses >= 1
        return seen

    writer.start()
    try:
        with consumer:
            seen = asyncio.run(asyncio.wait_for(main(), 120))
    finally:
        writer.join(60)
    items = produced["items"]
    assert sorted(seen) == sorted(items)  # each once (one run, no rebalance), end markers not among them

    stats = source.stats
    # What this process holds never exceeds the configured bounds, whatever the producer's rate.
    assert 0 < stats.max_held <= max_held
    assert peak_outside_kafka <= window + max_held + 2 * batch
    # The long stalls reached Kafka: partitions paused (and resumed), and the member kept polling meanwhile.
    assert stats.kafka_pauses >= 1 and stats.kafka_resumes == stats.kafka_pauses
    assert stats.keepalive_polls >= 1
    # librdkafka's view, from snapshots taken during pauses: nothing was fetched from the broker, and from
    # the first keep-alive poll on, its prefetch queue was empty (paused partitions' records are dropped).
    paused = [s for s in samples if s["paused_at"] is not None and s["ts"] > s["paused_at"]]
    assert paused, "no librdkafka statistics were taken during a pause"
    fetched_during: dict[float, set[int]] = {}
    for s in paused:
        fetched_during.setdefault(s["paused_at"], set()).add(s["rx"])
    assert all(len(rx) == 1 for rx in fetched_during.values()), "records were fetched while paused"
    polled = [s for s in paused if s["polls"] >= 1]
    assert polled and all(s["prefetched"] == 0 for s in polled)
    # Everything was committed: the final commit covers the last items and the end-of-stream markers.
    ends = {(topic, p): high for p, (_low, high) in KafkaAdmin(stream_settings).watermarks(topic).items()}
    assert KafkaAdmin(stream_settings).committed(group_id, topic) == ends
    assert consumer.auto_commit is False and consumer.rebalance_listener is None  # given back as it was


@pytest.mark.parametrize("mode", ["ordered", "as_completed"])
def test_crash_mid_pipeline_and_restart(
    stream_settings: FreightSettings,
    make_topic: Callable[..., str],
    make_producer: Callable[..., Any],
    file_store: Any,
    group_id: str,
    tmp_path: Path,
    mode: str,
) -> None:
    topic = make_topic(partitions=3)
    admin = KafkaAdmin(stream_settings)
    producer = make_producer({None: file_store}, inline_threshold=0)  # objects go to the file store
    items, markers = _produce(producer, topic, 420, 6, size=256)
    bad = {key for key, (_stream, sequence) in items.items() if failing(sequence)}
    dlq_topic = f"{topic}.dlq"
    out = tmp_path / "done.jsonl"
    cmd = [
        sys.executable,
        str(PROCS),
        "--topic",
        topic,
        "--group",
        group_id,
        "--out",
        str(out),
        "--mode",
        mode,
    ]

    def logged() -> list[Item]:
        text = out.read_text() if out.exists() else ""
        return [(d["p"], d["o"]) for d in map(json.loads, text.splitlines())]

    def dead_lettered() -> list[Item]:
        if not admin.topic_exists(dlq_topic):
            return []
        return [(d.source_partition, d.source_offset) for d in read_dead_letters(dlq_topic, stream_settings)]

    checks = 0

    def check_committed_prefix() -> dict[tuple[str, int], int]:
        """Read the committed offsets first, then what is done: nothing below a commit may be unfinished."""
        nonlocal checks
        committed = admin.committed(group_id, topic)
        done = set(logged()) | set(dead_lettered())
        for (_t, p), position in committed.items():
            unfinished = [o for (q, o) in items if q == p and o < position and (q, o) not in done]
            assert not unfinished, (
                f"committed {position} on partition {p} passes unfinished offsets {unfinished}"
            )
        checks += 1
        return committed

    child = subprocess.Popen(cmd, env=child_env(stream_settings))
    try:
        history: list[dict[tuple[str, int], int]] = []
        deadline = time.monotonic() + 60
        while len(logged()) < len(items) // 2 and time.monotonic() < deadline and child.poll() is None:
            history.append(check_committed_prefix())
            time.sleep(0.05)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    first_run = logged()
    assert len(items) // 2 <= len(first_run) < len(items), "the kill did not land mid-run"
    at_kill = check_committed_prefix()
    history.append(at_kill)

    subprocess.run([*cmd, "--until-end"], env=child_env(stream_settings), timeout=120, check=True)
    history.append(check_committed_prefix())

    everything = logged()
    letters = read_dead_letters(dlq_topic, stream_settings)
    dead = [(d.source_partition, d.source_offset) for d in letters]
    # Every input was processed at least once: a result, or a dead letter (the failing ones, and only those).
    assert set(everything) | set(dead) == set(items)
    assert set(dead) == bad and not set(everything) & bad
    # Repeats happen only past what was committed when the process died (the unfinished tail).
    for (p, o), n in (Counter(everything) + Counter(dead)).items():
        assert n == 1 or o >= at_kill.get((topic, p), 0), f"{p}@{o} done {n} times below the commit"
    # Committed offsets only moved forward, and end past every item and end-of-stream marker.
    for before, after in itertools.pairwise(history):
        assert all(after.get(k, 0) >= v for k, v in before.items())
    ends = {(topic, p): high for p, (_low, high) in admin.watermarks(topic).items()}
    assert history[-1] == ends
    assert all(ends[(topic, p)] == o + 1 for p, o in markers if o == max(m for q, m in markers if q == p))
    # Dead letters carry the failed event (a Freight stream again) and the error report as headers.
    for letter in letters:
        assert letter.event is not None
        assert (letter.event.stream, letter.event.sequence) == items[
            (letter.source_partition, letter.source_offset)
        ]
        assert letter.error["stage"] == "work" and letter.error["error_type"] == "builtins.ValueError"
        assert letter.error["message"].startswith(f"sequence {letter.event.sequence} ")
        assert letter.error["topic"] == topic and letter.error["action"] == "dead_letter"
    assert checks >= 3


def test_default_dead_letter_topic_is_a_stream_of_the_failed_objects(
    stream_settings: FreightSettings,
    make_topic: Callable[..., str],
    make_producer: Callable[..., Any],
    file_store: Any,
    group_id: str,
) -> None:
    topic = make_topic(partitions=1)
    producer = make_producer({None: file_store}, inline_threshold=0)
    items, _markers = _produce(producer, topic, 30, 2, end=False)

    @stage(on_error="dead_letter")
    async def reject_thirds(proxy: Any) -> int:
        if ref_of(proxy).offset % 3 == 0:
            raise RuntimeError("thirds are rejected")
        return ref_of(proxy).offset

    async def main(consumer: StreamConsumer) -> list[int]:
        return await reject_thirds(consumer).collect()  # no dead_letter=: the consumer's <topic>.dlq

    # A consumer in auto-commit mode is switched to manual commits for the run and given back as it was.
    with StreamConsumer(topic, group_id, settings=stream_settings, until_high_watermark=True) as consumer:
        results = asyncio.run(main(consumer))
        assert consumer.auto_commit is True
    assert results == [o for (_p, o) in sorted(items) if o % 3]
    assert KafkaAdmin(stream_settings).committed(group_id, topic) == {(topic, 0): 30}

    with StreamConsumer(f"{topic}.dlq", None, settings=stream_settings, until_high_watermark=True) as dlq:
        failed = [
            (meta.stream, meta.sequence, bytes(extract(proxy))) for meta, proxy in dlq.iter_with_metadata()
        ]
    expected = [(s, q) for (_p, o), (s, q) in sorted(items.items()) if o % 3 == 0]
    assert sorted((s, q) for s, q, _ in failed) == sorted(expected)  # in the order they failed
    assert all(data == bytes([(2 * q + int(s[1:])) % 251]) * 64 for s, q, data in failed)


def test_a_member_joining_mid_run_takes_partitions_without_losing_or_regressing(
    stream_settings: FreightSettings,
    make_topic: Callable[..., str],
    make_producer: Callable[..., Any],
    file_store: Any,
    group_id: str,
) -> None:
    topic = make_topic(partitions=4)
    admin = KafkaAdmin(stream_settings)
    producer = make_producer({None: file_store}, inline_threshold=1024)
    items, _markers = _produce(producer, topic, 600, 8)
    ends = {(topic, p): high for p, (_low, high) in admin.watermarks(topic).items()}
    done: dict[str, list[Item]] = {"a": [], "b": []}
    sources: dict[str, ConsumerSource] = {}
    errors: list[BaseException] = []
    history: list[dict[tuple[str, int], int]] = []
    b_started = threading.Event()
    finished = threading.Event()  # set once the group committed past every item and end marker

    @stage(concurrency=4)
    async def work(proxy: Any) -> Item:
        await asyncio.sleep(0.02)
        assert not is_resolved(proxy)
        return ref_of(proxy).partition, ref_of(proxy).offset

    def member(name: str) -> None:
        """A group member with no stop condition of its own: it runs until the group is done."""

        async def main() -> None:
            with StreamConsumer(topic, group_id, settings=stream_settings, auto_commit=False) as consumer:
                source = sources[name] = ConsumerSource(consumer, max_held=32)
                run = work(source, max_in_flight=24, commit_interval=0.05, mode="as_completed")

                async def stop_when_finished() -> None:
                    while not finished.is_set():
                        await asyncio.sleep(0.05)
                    await run.aclose()

                stopper = asyncio.create_task(stop_when_finished())
                async for item in run:
                    done[name].append(item)
                    if name == "a" and len(done["a"]) == 40:
                        b_started.set()
                await stopper

        try:
            asyncio.run(asyncio.wait_for(main(), 90))
        except BaseException as exc:
            errors.append(exc)
            finished.set()

    a = threading.Thread(target=member, args=("a",))
    b = threading.Thread(target=member, args=("b",))
    a.start()
    try:
        assert b_started.wait(60)
        b.start()
        deadline = time.monotonic() + 90
        while not finished.is_set() and time.monotonic() < deadline:
            history.append(admin.committed(group_id, topic))
            if history[-1] == ends:
                finished.set()
            time.sleep(0.05)
    finally:
        finished.set()
        a.join(60)
        b.join(60)
    history.append(admin.committed(group_id, topic))
    assert not errors, errors

    assert history[-1] == ends  # the group committed past every item and end-of-stream marker
    assert set(done["a"]) | set(done["b"]) == set(items)  # nothing lost across the rebalance
    assert done["b"] and sources["a"].stats.revoked >= 1  # the newcomer took partitions mid-run
    for before, after in itertools.pairwise(history):
        assert all(after.get(k, 0) >= v for k, v in before.items()), "a commit moved backwards"


def test_a_bad_record_stops_the_run_after_the_items_before_it(
    stream_settings: FreightSettings,
    make_topic: Callable[..., str],
    make_producer: Callable[..., Any],
    file_store: Any,
    group_id: str,
) -> None:
    from confluent_kafka import Producer

    from freight.errors import EventDecodeError
    from freight.kafka import producer_config

    topic = make_topic(partitions=1)
    producer = make_producer({None: file_store}, inline_threshold=1024)
    for i in range(10):
        producer.send(topic, f"a{i}".encode(), stream="s")
    producer.flush()
    raw = Producer(producer_config(stream_settings))
    raw.produce(topic, key=b"s", value=b"\x01not-avro")  # offset 10
    raw.flush(10)
    for i in range(5):
        producer.send(topic, f"b{i}".encode(), stream="s")
    producer.flush()

    @stage(concurrency=4)
    async def read(proxy: Any) -> bytes:
        return bytes(extract(proxy))

    async def main(on_bad_event: Any, seen: list[bytes]) -> None:
        with StreamConsumer(
            topic,
            group_id,
            settings=stream_settings,
            auto_commit=False,
            until_high_watermark=True,
            on_bad_event=on_bad_event,
        ) as consumer:
            async for data in read(consumer, commit_interval=0):
                seen.append(data)

    seen: list[bytes] = []
    with pytest.raises(EventDecodeError, match="offset 10"):
        asyncio.run(main("raise", seen))
    assert seen == [f"a{i}".encode() for i in range(10)]  # every item before it, in order
    assert KafkaAdmin(stream_settings).committed(group_id, topic) == {(topic, 0): 10}  # not past it
    rest: list[bytes] = []
    asyncio.run(main("skip", rest))  # a restart that skips it goes on from there
    assert rest == [f"b{i}".encode() for i in range(5)]
    assert KafkaAdmin(stream_settings).committed(group_id, topic) == {(topic, 0): 16}
