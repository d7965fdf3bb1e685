"""`freight produce` / `freight consume` as a user runs them, and `freight demo` end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from freight.config import FreightSettings


def freight(
    settings: FreightSettings, *args: str, stdin: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.update(
        FREIGHT_KAFKA_BOOTSTRAP=settings.kafka_bootstrap,
        FREIGHT_SCHEMA_REGISTRY_URL=settings.schema_registry_url,
    )
    return subprocess.run(
        [sys.executable, "-m", "freight.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def test_produce_a_directory_and_consume_it_into_another(
    stream_settings: FreightSettings, tmp_path: Path
) -> None:
    src = tmp_path / "in"
    (src / "nested").mkdir(parents=True)
    files = {"a.bin": os.urandom(10_000), "b.txt": b"hello", "nested/c.bin": os.urandom(50_000)}
    for name, data in files.items():
        (src / name).write_bytes(data)
    topic = f"cli-files-{uuid.uuid4().hex[:8]}"
    store = tmp_path / "store"

    produced = freight(stream_settings, "produce", topic, str(src), "--store-dir", str(store), "--json")
    assert produced.returncode == 0, produced.stderr
    summary = json.loads(produced.stdout)
    assert summary["objects"] == 3 and summary["stored"] == 2 and summary["inline"] == 1

    out = tmp_path / "out"
    consumed = freight(
        stream_settings, "consume", topic, "--group", "g1", "--out", str(out), "--idle-timeout", "3"
    )
    assert consumed.returncode == 0, consumed.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == {Path(k).name: v for k, v in files.items()}
    assert "consumed 3 object(s)" in consumed.stderr + consumed.stdout

    again = freight(stream_settings, "consume", topic, "--group", "g1", "--idle-timeout", "2", "--json")
    assert again.stdout.strip() == ""  # the group committed: nothing new


def test_stdin_lines_and_replay_options(stream_settings: FreightSettings, tmp_path: Path) -> None:
    topic = f"cli-lines-{uuid.uuid4().hex[:8]}"
    store = str(tmp_path / "store")
    first = freight(
        stream_settings, "produce", topic, "--store-dir", store, "--no-end", stdin="one\ntwo\nthree\n"
    )
    assert first.returncode == 0, first.stderr
    time.sleep(0.05)
    middle = datetime.now(UTC).isoformat()
    time.sleep(0.05)
    second = freight(stream_settings, "produce", topic, "--store-dir", store, stdin="four\nfive\n")
    assert second.returncode == 0, second.stderr

    def lines(*extra: str) -> list[str]:
        result = freight(stream_settings, "consume", topic, "--idle-timeout", "2", *extra)
        assert result.returncode == 0, result.stderr
        return result.stdout.split()

    assert lines("--from-beginning") == ["one", "two", "three", "four", "five"]
    assert lines("--offset", "3") == ["four", "five"]
    assert lines("--timestamp", middle) == ["four", "five"]
    assert lines("--from-beginning", "--max", "2") == ["one", "two"]
    meta = freight(
        stream_settings, "consume", topic, "--from-beginning", "--max", "1", "--json", "--idle-timeout", "2"
    )
    record = json.loads(meta.stdout.splitlines()[0])
    assert record["offset"] == 0 and record["stream"] == "default" and record["inline"] is True

    bad = freight(stream_settings, "consume", topic, "--offset", "1", "--from-beginning")
    assert bad.returncode == 2 and "at most one of" in bad.stderr
    missing = freight(stream_settings, "consume", "no-such-topic-xyz", "--idle-timeout", "1")
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def test_demo_runs_end_to_end_with_its_own_services(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FREIGHT_")}
    result = subprocess.run(
        [sys.executable, "-m", "freight.cli", "demo", "--state-dir", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "demo ok" in result.stdout
    assert "48/48" in result.stdout and "stopped the local services" in result.stdout
    leftover = subprocess.run(
        ["pgrep", "-f", str(tmp_path / "demo")], capture_output=True, text=True, check=False
    )
    assert leftover.stdout.strip() == ""
