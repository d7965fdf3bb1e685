"""`freight evict` as a user runs it: policies, --status, --once, the service stopped with SIGTERM, and clear
errors for bad input and a broker that is down."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest
from tests.integration.eviction_procs import commit_at, send, stored_keys

from freight.cli import main
from freight.config import FreightSettings
from freight.stores import Store


def _run(capsys: pytest.CaptureFixture[str], settings: FreightSettings, *args: str) -> tuple[int, Any, str]:
    """Run `freight evict ...` in this process; returns (exit code, parsed --json output or text, stderr)."""
    capsys.readouterr()
    code = main(["evict", *args, "-b", settings.kafka_bootstrap, "--registry", settings.schema_registry_url])
    out, err = capsys.readouterr()
    try:
        parsed: Any = json.loads(out)
    except ValueError:
        parsed = out
    return code, parsed, err


def test_policy_status_once_and_errors(
    capsys: pytest.CaptureFixture[str],
    stream_settings: FreightSettings,
    make_topic: Callable[..., str],
    make_producer: Callable[..., Any],
    file_store: Store,
    group_id: str,
) -> None:
    topic = make_topic()
    send(make_producer({None: file_store}), topic, 10)
    commit_at(stream_settings, topic, group_id, {0: 6})
    s = stream_settings

    code, pol, _ = _run(
        capsys, s, "policy", "set", topic, "-g", group_id, "--named-only", "--min-age", "0s", "--json"
    )
    assert code == 0 and pol["groups"] == [group_id] and pol["all_committed_groups"] is False
    code, _, err = _run(capsys, s, "policy", "set", topic, "-g", "nobody-here", "--json")
    assert code == 2 and "unknown consumer group" in err and "--allow-unknown-group" in err
    code, _, err = _run(capsys, s, "policy", "set", f"{topic}-nope", "--json")
    assert code == 2 and "does not exist" in err
    code, _, err = _run(capsys, s, "policy", "set", topic, "--min-age", "ten minutes")
    assert code == 2 and "not a duration" in err
    code, got, _ = _run(capsys, s, "policy", "get", topic, "--json")
    assert code == 0 and got["topic"] == topic
    code, listed, _ = _run(capsys, s, "policy", "list", "--json")
    assert code == 0 and topic in [p["topic"] for p in listed]

    code, status, _ = _run(capsys, s, "--status", "--topic", topic, "--json")
    assert code == 0
    (part,) = status[0]["partitions"]
    assert (part["watermark"], part["checkpoint"], part["evictor_lag"]) == (6, 0, 6)
    assert part["held_objects"] == 10 and part["evictable_objects"] == 6
    assert any("evictor behind" in b for b in part["blocking"])
    assert [(g["group"], g["committed"], g["lag"]) for g in part["groups"]] == [(group_id, 6, 4)]
    code, text, _ = _run(capsys, s, "--status", "--topic", topic)
    assert code == 0 and "evictor behind" in text and group_id in text

    code, report, _ = _run(capsys, s, "--once", "--topic", topic, "--json")
    assert code == 0 and report["deleted"] == 6 and report["sweeps"][0]["orphans"] == 0
    assert len(stored_keys(file_store, topic)) == 4
    code, status, _ = _run(capsys, s, "--status", "--topic", topic, "--json")
    (part,) = status[0]["partitions"]
    assert part["evictor_lag"] == 0 and part["held_objects"] == 4
    assert part["blocking"] == [f"group {group_id} at offset 6 (lag 4)"]
    assert status[0]["stores"][0]["objects"] == 4
    from freight.eviction import summary

    overview = {t["topic"]: t for t in summary(s)["topics"]}
    assert overview[topic]["partitions"][0]["checkpoint"] == 6

    code, _, _ = _run(capsys, s, "policy", "delete", topic, "--json")
    assert code == 0
    code, _, err = _run(capsys, s, "policy", "get", topic)
    assert code == 2 and "has no retention policy" in err
    code, _, err = _run(capsys, s, "--once", "--topic", topic)
    assert code == 2 and "freight evict policy set" in err
    code, _, err = _run(capsys, s, "--once", "--status")
    assert code == 2 and "exactly one of" in err

    capsys.readouterr()
    code = main(["evict", "--status", "-b", "127.0.0.1:1"])
    assert code == 3 and "freight dev up" in capsys.readouterr().err


def test_service_evicts_as_groups_commit_and_stops_on_sigterm(
    stream_settings: FreightSettings,
    make_topic: Callable[..., str],
    make_producer: Callable[..., Any],
    file_store: Store,
    group_id: str,
) -> None:
    topic = make_topic()
    send(make_producer({None: file_store}), topic, 8)  # publishes the file store to the catalog
    commit_at(stream_settings, topic, group_id, {0: 5})
    from freight.eviction import PolicyStore, RetentionPolicy

    PolicyStore(stream_settings).put(RetentionPolicy(topic=topic))
    env = dict(os.environ)
    env.update(
        FREIGHT_KAFKA_BOOTSTRAP=stream_settings.kafka_bootstrap,
        FREIGHT_SCHEMA_REGISTRY_URL=stream_settings.schema_registry_url,
    )
    cmd = [
        sys.executable,
        "-m",
        "freight.cli",
        "evict",
        "serve",
        "-t",
        topic,
        "--interval",
        "300ms",
        "--json",
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        deleted = 0
        deadline = time.monotonic() + 60
        while deleted < 5 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            deleted += json.loads(line)["deleted"]
        assert deleted == 5
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 0, err
    final = json.loads(out.strip().splitlines()[-1])
    assert final["stopped"] is True and final["deleted"] == 5 and "SIGTERM" in err
    assert len(stored_keys(file_store, topic)) == 3
