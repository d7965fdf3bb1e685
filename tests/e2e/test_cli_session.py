"""One user session with the `freight` command on the real broker and registry (issue 16, "done when"):
produce files and keyed lines, a foreign record among them, consume with the new flags, groups
describe / reset / delete, topics alter. Each flag has its own focused test elsewhere; this one checks they
work together the way a person chains them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Producer

from freight.config import FreightSettings
from freight.kafka import producer_config


def run(settings: FreightSettings, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ,
        FREIGHT_KAFKA_BOOTSTRAP=settings.kafka_bootstrap,
        FREIGHT_SCHEMA_REGISTRY_URL=settings.schema_registry_url,
    )
    return subprocess.run(
        [sys.executable, "-m", "freight.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def ok(settings: FreightSettings, *args: str, stdin: str | None = None) -> str:
    result = run(settings, *args, stdin=stdin)
    assert result.returncode == 0, (args, result.stderr)
    return result.stdout


@pytest.mark.long
def test_a_session_with_the_freight_command(stream_settings: FreightSettings, tmp_path: Path) -> None:
    s = stream_settings
    topic = f"cli-session-{uuid.uuid4().hex[:8]}"
    group = f"g-session-{uuid.uuid4().hex[:6]}"
    store = str(tmp_path / "store")
    files = tmp_path / "files"
    files.mkdir()
    (files / "big.bin").write_bytes(os.urandom(100_000))
    (files / "note.txt").write_bytes(b"note")

    ok(s, "topics", "create", topic, "-p", "1")
    ok(s, "produce", topic, str(files), "--store-dir", store, "--stream", "files")
    ok(
        s,
        "produce",
        topic,
        "--store-dir",
        store,
        "--key-separator",
        "=",
        stdin="cam1=frame-a\ncam2=frame-b\n",
    )
    foreign = Producer(producer_config(s))
    foreign.produce(topic, key=b"legacy", value=b"plain text from another tool")
    foreign.flush(30)

    # The foreign record stops a plain consume (exit 8), is skipped with --on-bad-event skip.
    assert run(s, "consume", topic, "-f", "%S", "--idle-timeout", "2").returncode == 8
    lines = ok(
        s, "consume", topic, "-g", group, "--on-bad-event", "skip", "--idle-timeout", "2", "-f", "%k %S"
    )
    assert lines.splitlines() == ["files 100000", "files 4", "cam1 7", "cam2 7"]
    raw = ok(s, "consume", topic, "--raw", "--raw-encoding", "text", "-f", "%o %k %s", "--idle-timeout", "2")
    assert raw.splitlines()[-1] == "7 legacy plain text from another tool"  # 4 objects, 3 ENDs, the record
    assert ok(
        s,
        "consume",
        topic,
        "--partition",
        "0",
        "--offset",
        "4",
        "--max",
        "1",
        "-f",
        "%k",
        "--idle-timeout",
        "2",
    ).split() == ["cam2"]

    described = json.loads(ok(s, "groups", "describe", group, "--json"))
    assert described["partitions"][0]["committed"] == 8 and described["consumers"] == []
    plan = ok(s, "groups", "reset-offsets", "-g", group, "--all-topics", "--to-earliest", "--export")
    assert plan == f"{topic},0,0\n"
    (tmp_path / "plan.csv").write_text(plan)
    ok(s, "groups", "reset-offsets", "-g", group, "--from-file", str(tmp_path / "plan.csv"), "--execute")
    again = ok(s, "consume", topic, "-g", group, "--max", "1", "-f", "%o %S", "--idle-timeout", "2")
    assert again == "0 100000\n"  # read again from the start

    # An object gone from its store: --skip-evicted reads past it.
    for path in Path(store).rglob("*"):
        if path.is_file() and path.stat().st_size >= 100_000:
            path.unlink()
    rest = ok(
        s, "consume", topic, "--skip-evicted", "--on-bad-event", "skip", "-f", "%s", "--idle-timeout", "2"
    )
    assert rest.split() == ["note", "frame-a", "frame-b"]

    ok(s, "topics", "alter", topic, "--partitions", "2", "--config", "retention.ms=86400000")
    info = json.loads(ok(s, "topics", "describe", topic, "--json"))
    assert len(info["partitions"]) == 2 and info["config"]["retention.ms"] == "86400000"
    assert all(p["leader"] in p["isr"] for p in info["partitions"])

    ok(s, "groups", "delete", group)
    assert run(s, "groups", "describe", group).returncode == 2
