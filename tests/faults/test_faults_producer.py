"""Producer faults: a producer SIGKILLed between writing an object and producing its event, and producers
SIGKILLed at random moments mid-stream. No event may point at missing bytes (every event in the log
resolves, with the right bytes); what the crash leaves behind is an orphan, which the evictor's orphan sweep
removes after its grace period, and nothing else.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.faults.procs import check
from tests.fixtures.faults import FULL, wait_until

from freight.config import FreightSettings
from freight.connectors.file import FileConnector
from freight.eviction import Evictor, PolicyStore, RetentionPolicy
from freight.stores import Store
from freight.stream import StreamConsumer, extract

PROCS = Path(__file__).with_name("procs.py")
GRACE_S = 1.0


def _child(settings: FreightSettings, *args: str, out: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.update(
        FREIGHT_KAFKA_BOOTSTRAP=settings.kafka_bootstrap,
        FREIGHT_SCHEMA_REGISTRY_URL=settings.schema_registry_url,
    )
    log = open(out.with_suffix(".stderr"), "wb")  # noqa: SIM115 - handed to the child
    try:
        return subprocess.Popen(
            [sys.executable, str(PROCS), "produce", "--out", str(out), *args], env=env, stdout=log, stderr=log
        )
    finally:
        log.close()


def _lines(out: Path) -> list[dict[str, Any]]:
    found = []
    for text in out.read_text().splitlines() if out.exists() else []:
        try:
            found.append(json.loads(text))
        except ValueError:  # a line cut by the kill
            continue
    return found


def _events(settings: FreightSettings, topic: str) -> dict[str, int]:
    """key -> item of every event in the topic, each resolved and its bytes checked (never a missing one)."""
    keys = {}
    with StreamConsumer(topic, None, settings=settings, until_high_watermark=True) as consumer:
        for meta, proxy in consumer.iter_with_metadata():
            assert meta.key is not None, "every item of these producers is stored"
            keys[meta.key] = check(extract(proxy), meta.stream, meta.sequence)  # raises if bytes are missing
    return keys


def _stored(store: Store, topic: str) -> set[str]:
    return {info.key for info in store.connector.list(f"{topic}/")}


def _sweep(settings: FreightSettings, store: Store, topic: str) -> Any:
    """Sweep `topic`'s orphans older than the grace period (waiting until every object is that old)."""
    PolicyStore(settings).put(RetentionPolicy(topic=topic, orphan_grace_s=GRACE_S))
    newest = max((i.modified for i in store.connector.list(f"{topic}/")), default=time.time())
    time.sleep(max(newest + GRACE_S + 0.2 - time.time(), 0))
    with Evictor(settings, stores=[store]) as evictor:
        (report,) = evictor.sweep_orphans([topic])
    assert not report.errors, report.errors
    return report


def test_a_crash_between_store_write_and_produce_leaves_an_orphan_that_the_evictor_removes(
    stream_settings: FreightSettings, make_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = make_topic()
    root = tmp_path / "store"
    store = Store(f"crash-{uuid.uuid4().hex[:8]}", FileConnector(root))
    out = tmp_path / "producer.jsonl"
    args = ["--topic", topic, "--store", store.name, "--root", str(root), "--ok", "6", "--crash-after-put"]
    child = _child(stream_settings, *args, out=out)
    assert child.wait(120) == -signal.SIGKILL, out.with_suffix(".stderr").read_text()[-3000:]
    (orphan,) = [x["orphan"] for x in _lines(out) if "orphan" in x]

    events = _events(stream_settings, topic)
    assert sorted(events.values()) == list(range(6))  # every acknowledged event resolves, right bytes
    assert orphan not in events and orphan in _stored(store, topic)  # the crash left only an orphan
    report = _sweep(stream_settings, store, topic)
    assert report.deleted == 1 and report.referenced == 6, report
    assert _stored(store, topic) == set(events)  # the orphan is gone, nothing else
    assert _events(stream_settings, topic) == events


def test_producers_killed_at_random_moments_leave_no_event_without_its_bytes(
    stream_settings: FreightSettings, make_topic: Callable[..., str], tmp_path: Path, rng: random.Random
) -> None:
    topic = make_topic(partitions=2)
    root = tmp_path / "store"
    store = Store(f"kills-{uuid.uuid4().hex[:8]}", FileConnector(root))
    acked: dict[tuple[int, int], int] = {}
    for run in range(4 if FULL else 1):
        out = tmp_path / f"producer-{run}.jsonl"
        args = ["--topic", topic, "--store", store.name, "--root", str(root), "--count", "5000"]
        args += ["--producer-id", f"p{run}-{uuid.uuid4().hex[:6]}", "--delay", "0.002"]
        args += ["--linger-ms", str(rng.choice([5, 50, 200]))]  # longer: more events queued at the kill
        child = _child(stream_settings, *args, out=out)
        target = rng.randint(20, 300)
        wait_until(
            lambda out=out, child=child, target=target: (
                child.poll() is not None or sum(1 for x in _lines(out) if "o" in x) >= target
            ),
            120,
            f"the producer to get {target} acknowledgements",
        )
        assert child.poll() is None, out.with_suffix(".stderr").read_text()[-3000:]
        time.sleep(rng.uniform(0, 0.3))  # a random moment: mid-send, mid-store-write, mid-batch
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        acked.update({(x["p"], x["o"]): x["i"] for x in _lines(out) if "o" in x})

    events = _events(stream_settings, topic)  # raises if any event points at missing or wrong bytes
    stored = _stored(store, topic)
    assert set(events) <= stored
    with StreamConsumer(topic, None, settings=stream_settings, until_high_watermark=True) as consumer:
        logged = {(r.partition, r.offset): r.event.sequence for r in consumer.iter_records()}
    assert set(acked) <= set(logged), "an acknowledged event is not in the log"
    orphans = stored - set(events)  # objects whose events were still queued in the killed producer
    report = _sweep(stream_settings, store, topic)
    assert report.deleted == len(orphans), (report, len(orphans))
    assert _stored(store, topic) == set(events)
    print(f"{len(events)} events, {len(acked)} acknowledged before the kills, {len(orphans)} orphans swept")
