"""Offset-driven eviction on the real broker and registry, with file and S3 (moto) stores: a slow group holds
its objects, open buffer windows stay, replays of evicted objects fail clearly or are skipped, two evictors at
once are safe, and every send-side eviction mode is honoured."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.integration.eviction_procs import (
    commit_at,
    consume_all,
    events,
    keys_at_or_above,
    keys_below,
    send,
    stored_keys,
)

from freight.buffer import SlidingWindow
from freight.config import FreightSettings
from freight.connectors.file import FileConnector
from freight.errors import BrokerUnavailableError, ConfigError, ObjectEvictedError
from freight.eviction import EVICTOR_GROUP, Evictor, PolicyStore, RetentionPolicy, explain_missing
from freight.kafka import KafkaAdmin
from freight.stores import Store
from freight.stream import StreamConsumer, extract


@pytest.fixture(params=["file", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A file store, or an S3 store on the session's moto endpoint (a fresh bucket)."""
    if request.param == "file":
        made = Store(f"files-{uuid.uuid4().hex[:8]}", FileConnector(tmp_path / "store"))
    else:
        from freight.connectors import S3Connector

        bucket = request.getfixturevalue("s3_bucket")
        made = Store(f"s3-{uuid.uuid4().hex[:8]}", S3Connector(bucket))
    yield made
    made.close()


def _committed(admin: KafkaAdmin, group: str, topic: str) -> dict[int, int]:
    return {p: o for (_t, p), o in admin.committed(group, topic).items()}


def _chunks_to_end(settings: FreightSettings, topic: str, group: str, policy: SlidingWindow) -> int:
    """A stream-buffer consumer: cut chunks of everything there is, commit its low watermark, stop."""
    n = 0
    with (
        StreamConsumer(
            topic, group, settings=settings, until_high_watermark=True, idle_timeout=10, auto_commit=False
        ) as consumer,
        consumer.chunks(policy, commit_interval=0) as chunks,
    ):
        for _chunk in chunks:
            n += 1
    return n


def _open_window_seqs(n: int, window: SlidingWindow) -> range:
    """Sequences an open stream of `n` items still holds after every full window was delivered."""
    chunks = 0 if n < window.size else (n - window.size) // window.stride + 1
    return range(chunks * window.stride, n)


def test_slow_group_holds_its_objects_then_the_store_drains_to_the_open_windows(
    stream_settings: FreightSettings,
    make_topic: Callable[..., str],
    make_producer: Callable[..., Any],
    store: Store,
    group_id: str,
    admin: KafkaAdmin,
) -> None:
    topic = make_topic(partitions=2)
    fast, slow = f"{group_id}-fast", f"{group_id}-slow"
    window = SlidingWindow(4, 2)
    producer = make_producer({None: store})
    PolicyStore(stream_settings).put(RetentionPolicy(topic=topic, groups=(slow,), all_committed_groups=True))

    with Evictor(stream_settings, stores=[store], batch_size=7) as evictor:
        # 1. The slow group has not started: it holds everything, however far the fast group is.
        send(producer, topic, 24, streams=4)
        consume_all(stream_settings, topic, fast)
        first = evictor.run_once([topic])
        refs = events(stream_settings, topic)
        assert first.deleted == 0 and stored_keys(store, topic) == {r.key for r in refs.values()}
        assert any("never committed" in b for p in first.topics[0].partitions for b in p.blocking)

        # 2. The slow group chunks what is there (its open windows stay), then more arrives for the fast one.
        _chunks_to_end(stream_settings, topic, slow, window)
        send(producer, topic, 24, streams=4, start=24)
        consume_all(stream_settings, topic, fast)
        refs = events(stream_settings, topic)
        slow_at = _committed(admin, slow, topic)
        assert _committed(admin, fast, topic) != slow_at  # the fast group is ahead
        second = evictor.run_once([topic])
        assert stored_keys(store, topic) == keys_at_or_above(refs, slow_at)  # nothing uncommitted is gone
        assert second.deleted == len(keys_below(refs, slow_at)) > 0
        assert _committed(admin, EVICTOR_GROUP, topic) == slow_at  # the evictor never passes the slowest

        # 3. The slow group catches up: the store drains to what its open windows still hold.
        _chunks_to_end(stream_settings, topic, slow, window)
        slow_at = _committed(admin, slow, topic)
        third = evictor.run_once([topic])
        held = {
            r.key
            for r in refs.values()
            if r.sequence in _open_window_seqs(12, window)  # 48 items over 4 streams: 12 each
        }
        left = stored_keys(store, topic)
        assert held and held <= left  # objects of open windows stay
        assert left == keys_at_or_above(refs, slow_at)
        assert third.deleted == len(keys_below(refs, slow_at)) - second.deleted > 0
        assert len(left) < len(refs) // 2


def test_replay_after_eviction_raises_the_evicted_error_or_skips_and_counts(
    stream_settings: FreightSettings,
    make_topic: Callable[..., str],
    make_producer: Callable[..., Any],
    file_store: Store,
    group_id: str,
) -> None:
    topic = make_topic()
    send(make_producer({None: file_store}), topic, 10)
    commit_at(stream_settings, topic, group_id, {0: 6})
    PolicyStore(stream_settings).put(RetentionPolicy(topic=topic))
    with Evictor(stream_settings, stores=[file_store]) as evictor:
        assert evictor.run_once([topic]).deleted == 6

    with StreamConsumer(topic, None, settings=stream_settings, until_high_watermark=True) as replay:
        proxy = next(iter(replay))
        with pytest.raises(ObjectEvictedError, match=rf"topic '{topic}' partition 0 offset 0"):
            extract(proxy)
    assert "evicted by policy" in explain_missing(topic, 0, 0, settings=stream_settings)
    assert "passed offset 6" in explain_missing(topic, 0, 0, settings=stream_settings)
    assert "not evicted" in explain_missing(topic, 0, 7, settings=stream_settings)

    with StreamConsumer(
        topic, None, settings=stream_settings, until_high_watermark=True, skip_evicted=True
    ) as replay:
        survivors = [int(obj[0]) for obj in replay.iter_objects()]
        assert survivors == [6, 7, 8, 9]
        assert replay.stats.evicted_skipped == 6


def test_two_evictors_at_once_delete_exactly_what_is_below_the_watermark(
    stream_settings: FreightSettings,
    make_topic: Callable[..., str],
    make_producer: Callable[..., Any],
    file_store: Store,
    group_id: str,
    admin: KafkaAdmin,
) -> None:
    topic = make_topic(partitions=3)
    send(make_producer({None: file_store}), topic, 90, streams=6)
    refs = events(stream_settings, topic)
    highs = {p: hi for p, (_lo, hi) in admin.watermarks(topic).items()}
    marks = {p: hi - 5 for p, hi in highs.items()}
    commit_at(stream_settings, topic, group_id, marks)
    PolicyStore(stream_settings).put(RetentionPolicy(topic=topic))

    reports: list[Any] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def run() -> None:
        try:
            with Evictor(stream_settings, stores=[file_store], batch_size=4) as evictor:
                barrier.wait(30)
                reports.append(evictor.run_once([topic]))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert stored_keys(file_store, topic) == keys_at_or_above(refs, marks)
    assert sum(r.deleted for r in reports) == len(keys_below(refs, marks))  # each object deleted once
    assert _committed(admin, EVICTOR_GROUP, topic) == marks


def test_modes_never_retention_on_resolve_and_min_age(
    stream_settings: FreightSettings,
    make_topic: Callable[..., str],
    make_producer: Callable[..., Any],
    file_store: Store,
    group_id: str,
    admin: KafkaAdmin,
) -> None:
    topic = make_topic()
    producer = make_producer({None: file_store})
    for i, mode in enumerate(["watermark", "never", "retention", "on-resolve", "on-resolve", "watermark"]):
        send(producer, topic, 1, start=i, evict=mode)
    refs = events(stream_settings, topic)
    by_offset = {o: r for (_p, o), r in refs.items()}
    # Offset 3 (on-resolve) is resolved by a consumer: its first resolve deletes it.
    with StreamConsumer(topic, group_id, settings=stream_settings, until_high_watermark=True) as c:
        for meta, proxy in c.iter_with_metadata():
            if meta.offset == 3:
                extract(proxy)
        c.commit()
    assert by_offset[3].key not in stored_keys(file_store, topic)
    policies = PolicyStore(stream_settings)

    with Evictor(stream_settings, stores=[file_store]) as evictor:
        # A minimum age longer than the objects' age: nothing goes, the checkpoint stops at the first one.
        policies.put(RetentionPolicy(topic=topic, min_age_s=3600))
        waiting = evictor.run_once([topic])
        assert waiting.deleted == 0 and waiting.topics[0].partitions[0].waiting_at == 0
        assert _committed(admin, EVICTOR_GROUP, topic) == {}
        (status,) = evictor.status([topic])
        assert any("min age" in b for b in status.partitions[0].blocking)

        # Without it: watermark and never-resolved on-resolve objects go; never and retention stay.
        policies.put(RetentionPolicy(topic=topic, delete_records=True, orphan_grace_s=0))
        report = evictor.run_once([topic])
        assert report.deleted == 3 and report.topics[0].partitions[0].already_gone == 1
        left = stored_keys(file_store, topic)
        assert left == {by_offset[1].key, by_offset[2].key}
        # delete_records dropped the events: the retention object goes with its event, the never one stays.
        assert admin.watermarks(topic)[0][0] == 6
        (sweep,) = evictor.sweep_orphans([topic])
        assert sweep.deleted == 1 and sweep.kept == 1
        assert stored_keys(file_store, topic) == {by_offset[1].key}
        again = evictor.run_once([topic], orphans=True)
        assert again.deleted == 0 and again.sweeps[0].deleted == 0
        assert stored_keys(file_store, topic) == {by_offset[1].key}


def test_bad_inputs_are_clear_errors(
    stream_settings: FreightSettings, make_topic: Callable[..., str], file_store: Store
) -> None:
    topic = make_topic()
    with Evictor(stream_settings, stores=[file_store]) as evictor:
        with pytest.raises(ConfigError, match=r"has no retention policy.*freight evict policy set"):
            evictor.run_once([topic])
        policies = PolicyStore(stream_settings)
        policies.put(RetentionPolicy(topic=f"{topic}-missing"))
        report = evictor.run_once([f"{topic}-missing"])
        assert "does not exist" in (report.topics[0].error or "")
        assert policies.delete(f"{topic}-missing") and not policies.delete(f"{topic}-missing")
    with pytest.raises(ConfigError, match="names no group"):
        RetentionPolicy.build(topic=topic, all_committed_groups=False)
    down = FreightSettings(
        kafka_bootstrap="127.0.0.1:1", schema_registry_url=stream_settings.schema_registry_url
    )
    with pytest.raises(BrokerUnavailableError, match="freight dev up"):
        Evictor(down)
