"""An evictor SIGKILLed mid-pass (a batch deleted, its checkpoint not committed) and restarted: nothing is
deleted early, nothing leaks, and the checkpoint never passes the slowest group."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.fixtures.stream import child_env
from tests.integration.eviction_procs import (
    commit_at,
    events,
    keys_at_or_above,
    keys_below,
    send,
    stored_keys,
    wait_for,
)

from freight.config import FreightSettings
from freight.eviction import EVICTOR_GROUP, Evictor, PolicyStore, RetentionPolicy
from freight.kafka import KafkaAdmin
from freight.stores import Store

PROCS = Path(__file__).with_name("eviction_procs.py")


def _progress(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]


def test_evictor_killed_between_deleting_a_batch_and_committing_restarts_without_loss_or_leak(
    stream_settings: FreightSettings,
    make_topic: Callable[..., str],
    make_producer: Callable[..., Any],
    file_store: Store,
    group_id: str,
    admin: KafkaAdmin,
    tmp_path: Path,
) -> None:
    topic = make_topic(partitions=2)
    send(make_producer({None: file_store}), topic, 60, streams=8)  # publishes the store to the catalog
    refs = events(stream_settings, topic)
    marks = {p: max(hi - 8, 0) for p, (_lo, hi) in admin.watermarks(topic).items()}
    assert len(keys_below(refs, marks)) >= 20
    commit_at(stream_settings, topic, group_id, marks)
    PolicyStore(stream_settings).put(RetentionPolicy(topic=topic))
    below, kept = keys_below(refs, marks), keys_at_or_above(refs, marks)

    progress = tmp_path / "progress.jsonl"
    cmd = [sys.executable, str(PROCS), "evict", "--topic", topic, "--batch-size", "5", "--pause", "0.5"]
    child = subprocess.Popen(
        [*cmd, "--progress", str(progress)], env=child_env(stream_settings), start_new_session=True
    )
    try:
        # Kill it while it sits after deleting its second batch, before committing that batch's checkpoint.
        wait_for(
            lambda: (
                sum(1 for e in _progress(progress) if e["phase"] == "deleted") >= 2
                or child.poll() is not None
            ),
            120,
            "the evictor child to delete two batches",
        )
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(30)
    assert child.returncode == -signal.SIGKILL, "the child finished before it could be killed"
    steps = _progress(progress)
    deleted_keys = {k for e in steps if e["phase"] == "deleted" for k in e["keys"]}
    committed_batches = [e for e in steps if e["phase"] == "committed"]
    assert len(deleted_keys) == 10 and len(committed_batches) == 1

    left = stored_keys(file_store, topic)
    assert kept <= left  # nothing the group has not committed past was deleted
    assert left == (kept | below) - deleted_keys  # exactly the killed run's deletions are gone
    checkpoint = {p: o for (_t, p), o in admin.committed(EVICTOR_GROUP, topic).items()}
    assert all(checkpoint[p] <= marks[p] for p in checkpoint)  # never past the watermark
    # The last batch was deleted but not committed: the restart re-reads it (and deletes nothing twice).
    last = steps[-1]
    assert last["phase"] == "deleted" and set(last["keys"]) <= deleted_keys

    with Evictor(stream_settings, stores=[file_store], batch_size=5) as evictor:
        report = evictor.run_once([topic])
    assert stored_keys(file_store, topic) == kept  # none leaked
    assert report.deleted == len(below) - len(deleted_keys)
    assert sum(p.already_gone for p in report.topics[0].partitions) >= 5  # the uncommitted batch, again
    assert {p: o for (_t, p), o in admin.committed(EVICTOR_GROUP, topic).items()} == marks
