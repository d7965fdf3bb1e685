"""Orphans: a producer SIGKILLed between writing an object and producing its event leaves an object no event
names; the sweep deletes it once older than the grace period, and never an object whose event exists."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.integration.eviction_procs import events, stored_keys

from freight.config import FreightSettings
from freight.connectors.file import FileConnector
from freight.eviction import Evictor, PolicyStore, RetentionPolicy
from freight.stores import Store

PROCS = Path(__file__).with_name("eviction_procs.py")
GRACE_S = 1.5


@pytest.fixture(params=["file", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Store, list[str]]]:
    """A store and the child arguments that build the same store in the crashing producer."""
    name = f"orphans-{request.param}-{uuid.uuid4().hex[:8]}"
    if request.param == "file":
        root = tmp_path / "store"
        store = Store(name, FileConnector(root))
        args = ["--root", str(root)]
    else:
        from freight.connectors import S3Connector

        bucket = request.getfixturevalue("s3_bucket")
        store = Store(name, S3Connector(bucket))
        args = ["--s3-bucket", bucket]
    yield store, ["--store", name, *args]
    store.close()


def test_orphan_of_a_crashed_producer_is_deleted_after_the_grace_period_and_nothing_else(
    stream_settings: FreightSettings,
    make_topic: Callable[..., str],
    backend: tuple[Store, list[str]],
) -> None:
    store, store_args = backend
    topic = make_topic()
    env = dict(os.environ)
    env.update(
        FREIGHT_KAFKA_BOOTSTRAP=stream_settings.kafka_bootstrap,
        FREIGHT_SCHEMA_REGISTRY_URL=stream_settings.schema_registry_url,
        PYTHONPATH=str(PROCS.parents[2]),
    )
    cmd = [sys.executable, str(PROCS), "crash-producer", "--topic", topic, "--ok", "3", *store_args]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == -9, out.stderr[-2000:]
    orphan = json.loads(out.stdout.strip().splitlines()[-1])["orphan"]

    referenced = {r.key for r in events(stream_settings, topic).values()}
    assert len(referenced) == 3 and orphan not in referenced
    assert stored_keys(store, topic) == referenced | {orphan}
    # No group committed: the watermark holds everything, so only the sweep can remove anything.
    policies = PolicyStore(stream_settings)
    policies.put(RetentionPolicy(topic=topic, orphan_grace_s=3600))

    with Evictor(stream_settings, stores=[store]) as evictor:
        (early,) = evictor.sweep_orphans([topic])
        assert early.orphans == 0 and early.deleted == 0 and early.young == 4  # within the grace period
        assert stored_keys(store, topic) == referenced | {orphan}

        policies.put(RetentionPolicy(topic=topic, orphan_grace_s=GRACE_S))
        mtime = {i.key: i.modified for i in store.connector.list(topic + "/")}[orphan]
        time.sleep(max(mtime + GRACE_S + 0.2 - time.time(), 0))
        (dry,) = evictor.sweep_orphans([topic], dry_run=True)
        assert dry.orphans == 1 and dry.deleted == 0
        report = evictor.run_once([topic], orphans=True)
        (sweep,) = report.sweeps
        assert sweep.deleted == 1 and sweep.referenced == 3 and not sweep.errors
        assert report.deleted == 0
    assert stored_keys(store, topic) == referenced  # objects whose events exist stay, however old
