"""Streaming core on the real broker and registry: groups, ordering, crash recovery, replay, proxies."""

from __future__ import annotations

import json
import pickle
import re
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.fixtures.stream import child_env

from freight.config import FreightSettings
from freight.errors import ConfigError, EventDecodeError, ObjectEvictedError
from freight.kafka import KafkaAdmin
from freight.stream import StreamConsumer, extract, is_resolved, ref_of

PROCS = Path(__file__).with_name("stream_procs.py")


def _read_all(consumer: StreamConsumer) -> list[tuple[Any, Any]]:
    return [(meta, extract(proxy)) for meta, proxy in consumer.iter_with_metadata()]


def test_two_groups_each_see_every_object_once_in_stream_order(
    stream_settings: FreightSettings,
    make_topic: Callable[..., str],
    make_producer: Callable[..., Any],
    file_store: Any,
    group_id: str,
) -> None:
    topic = make_topic(partitions=3)
    streams = [f"s{i}" for i in range(6)]
    expected: dict[str, list[bytes]] = defaultdict(list)
    producers = [make_producer({None: file_store}, inline_threshold=64) for _ in range(2)]
    for i in range(120):
        stream = streams[i % len(streams)]
        producer = producers[streams.index(stream) % 2]  # each stream has one producer
        payload = (f"{stream}:{i}:".encode() * 20) if i % 3 else f"tiny-{i}".encode()  # stored and inline
        producer.send(topic, payload, stream=stream)
        expected[stream].append(payload)
    for p in producers:
        p.flush()

    for group in (f"{group_id}-a", f"{group_id}-b"):
        with StreamConsumer(topic, group, settings=stream_settings, until_high_watermark=True) as consumer:
            seen: dict[str, list[bytes]] = defaultdict(list)
            sequences: dict[str, list[int]] = defaultdict(list)
            for meta, obj in _read_all(consumer):
                seen[meta.stream].append(bytes(obj))
                sequences[meta.stream].append(meta.sequence)
            consumer.commit()
        assert seen == expected
        assert all(seq == list(range(len(seq))) for seq in sequences.values())
        assert KafkaAdmin(stream_settings).group_offsets(group, topic)
        assert sum(p.lag for p in KafkaAdmin(stream_settings).group_offsets(group, topic)) == 0


def test_two_members_of_one_group_split_the_partitions(
    stream_settings: FreightSettings,
    make_topic: Callable[..., str],
    make_producer: Callable[..., Any],
    file_store: Any,
    group_id: str,
) -> None:
    topic = make_topic(partitions=3)
    producer = make_producer({None: file_store})
    for i in range(60):
        producer.send(topic, f"item-{i}".encode(), stream=f"s{i % 6}")
    producer.flush()

    got: dict[int, list[tuple[int, int]]] = {0: [], 1: []}
    assignments: dict[int, list[tuple[str, int]]] = {0: [], 1: []}
    settled = threading.Barrier(2, timeout=60)

    def member(n: int) -> None:
        with StreamConsumer(topic, group_id, settings=stream_settings, idle_timeout=5) as c:
            # Keep serving the group until both members hold disjoint partitions covering the topic.
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                assignments[n] = c.wait_for_assignment(0.3)
                a, b = set(assignments[0]), set(assignments[1])
                if a and b and not a & b and len(a | b) == 3:
                    break
            settled.wait()
            for meta, _proxy in c.iter_with_metadata():
                got[n].append((meta.partition, meta.offset))
            c.commit()

    threads = [threading.Thread(target=member, args=(n,)) for n in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    all_items = got[0] + got[1]
    assert len(all_items) == 60 and len(set(all_items)) == 60  # nothing lost, nothing twice
    parts = [set(assignments[0]), set(assignments[1])]
    assert parts[0] and parts[1] and not parts[0] & parts[1]  # they split the partitions
    assert {p for _, p in parts[0] | parts[1]} == {0, 1, 2}


def test_sigkilled_consumer_restarts_without_loss_and_redelivers_only_uncommitted(
    stream_settings: FreightSettings,
    make_topic: Callable[..., str],
    make_producer: Callable[..., Any],
    file_store: Any,
    group_id: str,
    tmp_path: Path,
) -> None:
    topic = make_topic(partitions=2)
    producer = make_producer({None: file_store}, inline_threshold=0)
    total = 300
    for i in range(total):
        producer.send(topic, np.full(512, i, dtype=np.int64), stream=f"s{i % 4}")
    producer.flush()
    # The consumer resolves objects from the file store by name: publish it for the child process.
    out = tmp_path / "processed.jsonl"
    cmd = [sys.executable, str(PROCS), "consume", "--topic", topic, "--group", group_id, "--out", str(out)]
    child = subprocess.Popen(cmd, env=child_env(stream_settings))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        lines = out.read_text().splitlines() if out.exists() else []
        if len(lines) >= 120:
            break
        time.sleep(0.02)
    child.send_signal(signal.SIGKILL)
    child.wait(10)
    first = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(first) >= 120, "the child did not get far enough before the kill"
    committed = KafkaAdmin(stream_settings).committed(group_id, topic)

    restart = subprocess.run(
        [*cmd, "--until-end", "--idle", "20"], env=child_env(stream_settings), timeout=120, check=True
    )
    assert restart.returncode == 0
    everything = [json.loads(x) for x in out.read_text().splitlines()]
    second = everything[len(first) :]
    keys = [(x["p"], x["o"]) for x in everything]
    assert len(set(keys)) == total, "some object was never processed"
    first_keys = {(x["p"], x["o"]) for x in first}
    redelivered = [(x["p"], x["o"]) for x in second if (x["p"], x["o"]) in first_keys]
    for partition, offset in redelivered:
        assert offset >= committed.get((topic, partition), 0), "a committed item was delivered again"
    # Only what was handed out but not committed comes again: at most the in-flight item per partition plus
    # what the background commit had not flushed yet (bounded by the one-second commit interval).
    assert len(redelivered) <= sum(1 for x in first if x["o"] >= committed.get((topic, x["p"]), 0))


def test_replay_from_beginning_offset_and_timestamp(
    stream_settings: FreightSettings,
    make_topic: Callable[..., str],
    make_producer: Callable[..., Any],
    file_store: Any,
    group_id: str,
) -> None:
    topic = make_topic(partitions=2)
    producer = make_producer({None: file_store})
    for i in range(20):
        producer.send(topic, f"early-{i}".encode(), stream=f"s{i % 5}")
    producer.flush()
    time.sleep(0.05)
    middle_ms = int(time.time() * 1000)
    time.sleep(0.05)
    for i in range(20):
        producer.send(topic, f"late-{i}".encode(), stream=f"s{i % 5}")
    producer.flush()

    def read(seek: dict[str, Any]) -> list[tuple[str, int, bytes]]:
        with StreamConsumer(topic, group_id, settings=stream_settings, until_high_watermark=True) as c:
            c.seek(**seek)
            items = [(m.stream, m.sequence, bytes(o)) for m, o in c.iter_objects_with_metadata()]
            c.commit()
        return sorted(items)

    everything = read({"to": "beginning"})
    assert len(everything) == 40
    assert read({"to": "beginning"}) == everything  # the same events again, after a commit at the end
    by_time = read({"timestamp": middle_ms})
    assert by_time == sorted(x for x in everything if x[2].startswith(b"late"))
    marks = KafkaAdmin(stream_settings).watermarks(topic)
    busiest = max(marks, key=lambda p: marks[p][1])
    other = 1 - busiest
    with StreamConsumer(topic, None, settings=stream_settings, until_high_watermark=True) as c:
        c.seek(offset=15, topic=topic, partition=busiest)
        tail = [(m.partition, m.offset) for m, _ in c.iter_with_metadata()]
    assert [o for p, o in tail if p == busiest] == list(range(15, marks[busiest][1]))
    assert [o for p, o in tail if p == other] == list(range(marks[other][1]))  # untouched: from its start


def test_dispatcher_passes_proxies_to_a_worker_and_reads_no_bulk_bytes(
    stream_settings: FreightSettings,
    make_topic: Callable[..., str],
    make_producer: Callable[..., Any],
    file_store: Any,
    group_id: str,
) -> None:
    topic = make_topic()
    producer = make_producer({None: file_store})
    arrays = [np.random.default_rng(i).random(131072) for i in range(6)]  # 1 MiB each
    for a in arrays:
        producer.send(topic, a, stream="chunks")
    producer.flush()

    run = subprocess.run(
        [sys.executable, str(PROCS), "dispatch", "--topic", topic, "--group", group_id, "--idle", "20"],
        env=child_env(stream_settings),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["dispatcher_bytes_read"] == 0 and report["dispatcher_stores_built"] == 0
    assert report["max_pickled"] < 1024
    sums = [r["sum"] for r in report["results"]]
    assert sums == pytest.approx([float(a.sum()) for a in arrays])
    assert all(r["pid"] != report["pid"] for r in report["results"])
    assert sum(r["worker_bytes_read"] for r in report["results"][-1:]) > 0


def test_on_resolve_eviction_deletes_after_first_resolve(
    stream_settings: FreightSettings,
    topic: str,
    make_producer: Callable[..., Any],
    file_store: Any,
    group_id: str,
) -> None:
    producer = make_producer({None: file_store})
    producer.send(topic, np.arange(4096), stream="once", evict="on-resolve")
    producer.flush()
    with StreamConsumer(topic, group_id, settings=stream_settings, until_high_watermark=True) as c:
        (proxy,) = list(c)
        key = ref_of(proxy).key
        assert file_store.exists(key)
        assert int(np.asarray(proxy).sum()) == sum(range(4096))
        assert file_store.exists(key), "deleted before the group committed past it"
    assert not file_store.exists(key), "the commit at close() covers it: it goes"
    with StreamConsumer(topic, None, settings=stream_settings, until_high_watermark=True) as replay:
        (again,) = list(replay)
        with pytest.raises(
            ObjectEvictedError, match=rf"topic '{topic}' partition 0 offset 0.*{re.escape(key)}"
        ):
            extract(again)
        with pytest.raises(
            ObjectEvictedError, match="an on-resolve object: it was resolved and then deleted"
        ):
            extract(pickle.loads(pickle.dumps(again)))


def test_on_resolve_survives_redelivery_until_the_group_commits(
    stream_settings: FreightSettings,
    topic: str,
    make_producer: Callable[..., Any],
    file_store: Any,
    group_id: str,
) -> None:
    """Issue 14 defect 4: a member resolves an on-resolve item and stops before committing it; the event is
    delivered again and the next member must still resolve it. It goes once the group commits past it."""
    producer = make_producer({None: file_store}, inline_threshold=0)
    producer.send(topic, np.arange(100), stream="once", evict="on-resolve")
    producer.send(topic, np.arange(5), stream="once", evict="on-resolve")
    producer.flush()
    first = StreamConsumer(topic, group_id, settings=stream_settings, until_high_watermark=True)
    proxy = first.next_proxy(30)
    key = ref_of(proxy).key
    assert int(np.asarray(proxy).sum()) == sum(range(100))
    first.close()  # stops with the item in hand: not committed, so Kafka delivers it again
    assert file_store.exists(key)
    with StreamConsumer(topic, group_id, settings=stream_settings, until_high_watermark=True) as second:
        again = second.next_proxy(30)
        assert ref_of(again).offset == 0
        assert int(np.asarray(again).sum()) == sum(range(100))  # before: ObjectEvictedError
        second.next_proxy(30)  # moving on finishes offset 0
        assert file_store.exists(key)
        second.commit()
        assert not file_store.exists(key), "the group committed past it: it goes"


_RESOLVE_THEN_HANG = """
import sys, time
import numpy as np
from freight.stream import StreamConsumer
consumer = StreamConsumer(sys.argv[1], sys.argv[2], until_high_watermark=True)
proxy = consumer.next_proxy(30)
print(int(np.asarray(proxy).sum()), flush=True)  # resolved; the item stays in hand, never committed
time.sleep(120)
"""


def test_on_resolve_survives_a_member_killed_after_resolving(
    stream_settings: FreightSettings,
    topic: str,
    make_producer: Callable[..., Any],
    file_store: Any,
    group_id: str,
) -> None:
    """Issue 14 defect 4, with a crash: a member SIGKILLed right after resolving an on-resolve item (before
    any commit) leaves it to the next member, which resolves it; the next member's commit deletes it."""
    producer = make_producer({None: file_store}, inline_threshold=0)
    producer.send(topic, np.arange(1000), evict="on-resolve")
    producer.flush()
    child = subprocess.Popen(
        [sys.executable, "-c", _RESOLVE_THEN_HANG, topic, group_id],
        env=child_env(stream_settings),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == str(sum(range(1000))), "the child did not resolve the item"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    with StreamConsumer(topic, group_id, settings=stream_settings, until_high_watermark=True) as second:
        (again,) = list(second)
        key = ref_of(again).key
        assert file_store.exists(key), "the killed member's resolve deleted it before any commit"
        assert int(np.asarray(again).sum()) == sum(range(1000))
    assert not file_store.exists(key), "the group committed past it (at close): it goes"


def test_proxies_are_lazy_transparent_and_pickle_small(
    stream_settings: FreightSettings,
    topic: str,
    make_producer: Callable[..., Any],
    file_store: Any,
) -> None:
    producer = make_producer({None: file_store})
    producer.send(topic, np.arange(10_000, dtype=np.float32), stream="a", metadata={"kind": "ramp"})
    producer.send(topic, {"small": [1, 2, 3]}, stream="a")
    producer.flush()
    with StreamConsumer(topic, None, settings=stream_settings, until_high_watermark=True) as c:
        (m1, p1), (m2, p2) = list(c.iter_with_metadata())
    assert m1.metadata == {"kind": "ramp"} and m1.descriptor is not None and m1.descriptor.shape == (10_000,)
    assert not m1.inline and m2.inline
    assert not is_resolved(p1)
    blob = pickle.dumps(p1)
    assert len(blob) < 1024 and not is_resolved(p1)
    assert isinstance(p1, np.ndarray) and p1.shape == (10_000,) and float(p1[9]) == 9.0
    assert is_resolved(p1)
    assert float(np.asarray(pickle.loads(blob)).sum()) == float(np.arange(10_000, dtype=np.float32).sum())
    assert p2["small"] == [1, 2, 3] and len(p2) == 1


def test_end_of_stream_stops_iteration(
    stream_settings: FreightSettings,
    make_topic: Callable[..., str],
    make_producer: Callable[..., Any],
    file_store: Any,
) -> None:
    topic = make_topic(partitions=2)
    producer = make_producer({None: file_store})
    for stream in ("a", "b"):
        for i in range(5):
            producer.send(topic, f"{stream}{i}".encode(), stream=stream)
        producer.end_stream(topic, stream)
    producer.flush()
    with StreamConsumer(topic, None, settings=stream_settings, until_end_of=["a", "b"], idle_timeout=30) as c:
        items = [bytes(o) for o in c.iter_objects()]
        assert c.stats.end_of_streams == 2
    assert sorted(items) == sorted(f"{s}{i}".encode() for s in "ab" for i in range(5))


def test_bad_records_raise_skip_or_go_to_the_dead_letter_topic(
    stream_settings: FreightSettings,
    topic: str,
    make_producer: Callable[..., Any],
    file_store: Any,
) -> None:
    from confluent_kafka import Producer

    from freight.kafka import producer_config

    producer = make_producer({None: file_store})
    producer.send(topic, b"good-0", stream="s")
    producer.flush()
    raw = Producer(producer_config(stream_settings))
    for garbage in (b"\x01not-avro", b"\x00\x00\x0f\x42\x40xx", b""):
        raw.produce(topic, key=b"s", value=garbage)
    raw.flush(10)
    producer.send(topic, b"good-1", stream="s")
    producer.flush()

    with StreamConsumer(topic, None, settings=stream_settings, until_high_watermark=True) as c:
        items: list[bytes] = []
        errors: list[str] = []
        it = c.iter_objects()
        while True:
            try:
                items.append(bytes(next(it)))
            except EventDecodeError as exc:
                errors.append(str(exc))
            except StopIteration:
                break
    assert items == [b"good-0", b"good-1"]
    assert len(errors) == 3 and all(f"topic '{topic}' partition 0" in e for e in errors)

    with StreamConsumer(
        topic, None, settings=stream_settings, until_high_watermark=True, on_bad_event="skip"
    ) as c:
        assert [bytes(o) for o in c.iter_objects()] == [b"good-0", b"good-1"]
        assert c.stats.bad_events == 3

    dlq = f"{topic}.dlq"
    with StreamConsumer(
        topic,
        None,
        settings=stream_settings,
        until_high_watermark=True,
        on_bad_event="dead-letter",
        dead_letter_topic=dlq,
    ) as c:
        assert [bytes(o) for o in c.iter_objects()] == [b"good-0", b"good-1"]
        assert c.stats.dead_lettered == 3
    assert sum(hi - lo for lo, hi in KafkaAdmin(stream_settings).watermarks(dlq).values()) == 3


def test_missing_topic_and_unreachable_broker_are_clear_errors(
    stream_settings: FreightSettings,
    make_producer: Callable[..., Any],
    file_store: Any,
) -> None:
    strict = make_producer({None: file_store}, create_topics=None)
    with pytest.raises(ConfigError, match="does not exist; create it with `freight topics create"):
        strict.send("no-such-topic-here", b"x")
    from freight.errors import BrokerUnavailableError
    from freight.stream import StreamProducer

    down = FreightSettings(
        kafka_bootstrap="127.0.0.1:1", schema_registry_url=stream_settings.schema_registry_url
    )
    producer = StreamProducer({None: file_store}, settings=down)
    try:
        with pytest.raises(BrokerUnavailableError, match=r"no Kafka broker answered at 127\.0\.0\.1:1"):
            producer.send("t", b"x")
    finally:
        producer._closed = True


def test_manual_commits_carry_metadata_and_listeners_hear_rebalances(
    stream_settings: FreightSettings,
    topic: str,
    make_producer: Callable[..., Any],
    file_store: Any,
    group_id: str,
) -> None:
    producer = make_producer({None: file_store})
    for i in range(5):
        producer.send(topic, f"m{i}".encode())
    producer.flush()
    heard: list[tuple[str, list[tuple[str, int]]]] = []

    class Listener:
        def on_assign(self, consumer: StreamConsumer, partitions: list[tuple[str, int]]) -> None:
            heard.append(("assign", partitions))

        def on_revoke(self, consumer: StreamConsumer, partitions: list[tuple[str, int]]) -> None:
            heard.append(("revoke", partitions))

    with StreamConsumer(
        topic,
        group_id,
        settings=stream_settings,
        until_high_watermark=True,
        auto_commit=False,
        rebalance_listener=Listener(),
    ) as c:
        assert len(list(c)) == 5
        assert c.committed() == {}  # iteration commits nothing in manual mode
        c.commit({(topic, 0): (3, "resume:v1")})
        assert c.committed() == {(topic, 0): (3, "resume:v1")}
    assert heard[0] == ("assign", [(topic, 0)]) and heard[-1] == ("revoke", [(topic, 0)])
    assert KafkaAdmin(stream_settings).committed(group_id, topic) == {
        (topic, 0): 3
    }  # close committed nothing
