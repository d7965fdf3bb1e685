"""`freight consume` flags of issue 16 (kcat / kafka-console-consumer parity) on the real broker and registry:
--on-bad-event, --skip-evicted, --raw, --partition, -f/--format, and `produce --key-separator`."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from confluent_kafka import Producer
from tests.fixtures.cli import run_freight

from freight.config import FreightSettings
from freight.kafka import producer_config

FOREIGN = b"\x00\x00\x00\x00\x07not a freight event [x]"


freight = run_freight


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, result.stderr
    return result


def write_foreign(settings: FreightSettings, topic: str, partition: int = 0) -> None:
    """A record another tool wrote: not a Freight event, with a key and a header."""
    producer = Producer(producer_config(settings))
    producer.produce(
        topic, key=b"other-tool", value=FOREIGN, headers=[("origin", b"kcat")], partition=partition
    )
    producer.flush(30)


def test_a_foreign_record_stops_consume_until_skipped_dead_lettered_or_read_raw(
    stream_settings: FreightSettings, tmp_path: Path
) -> None:
    topic = f"cli-foreign-{uuid.uuid4().hex[:8]}"
    store = str(tmp_path / "store")
    ok(freight(stream_settings, "produce", topic, "--store-dir", store, "--no-end", stdin="a\nb\n"))
    write_foreign(stream_settings, topic)
    ok(freight(stream_settings, "produce", topic, "--store-dir", store, stdin="c\n"))

    stopped = freight(stream_settings, "consume", topic, "--idle-timeout", "2")
    assert stopped.returncode == 8
    assert "offset 2" in stopped.stderr and "--on-bad-event skip" in stopped.stderr
    assert "--raw" in stopped.stderr and "Traceback" not in stopped.stderr

    skipped = ok(freight(stream_settings, "consume", topic, "--idle-timeout", "2", "--on-bad-event", "skip"))
    assert skipped.stdout.split() == ["a", "b", "c"]
    assert "1 record(s) that are not Freight events skipped" in skipped.stderr

    group = f"g-dlq-{uuid.uuid4().hex[:6]}"
    lettered = ok(
        freight(
            stream_settings,
            *("consume", topic, "-g", group, "--idle-timeout", "2", "--on-bad-event", "dead-letter"),
        )
    )
    assert lettered.stdout.split() == ["a", "b", "c"] and "dead-lettered" in lettered.stderr
    dlq = ok(freight(stream_settings, "consume", f"{topic}.dlq", "--raw", "--json", "--idle-timeout", "2"))
    [letter] = [json.loads(line) for line in dlq.stdout.splitlines()]
    assert base64.b64decode(letter["value"]) == FOREIGN and letter["encoding"] == "base64"

    raw = ok(freight(stream_settings, "consume", topic, "--raw", "--idle-timeout", "2"))
    lines = raw.stdout.splitlines()
    assert len(lines) == 4 + 1  # a, b, the foreign record, c, and the END_OF_STREAM of the second produce
    foreign = next(line for line in lines if "other-tool" in line)
    assert foreign.split("\t")[:2] == ["0", "2"]
    assert repr(FOREIGN) in foreign and "origin=b'kcat'" in foreign

    hexed = ok(
        freight(
            stream_settings,
            *("consume", topic, "--raw", "--raw-encoding", "hex", "-f", "%o|%k|%S|%s", "--offset", "2"),
            *("--max", "1", "--idle-timeout", "2"),
        )
    )
    assert hexed.stdout == f"2|{b'other-tool'.hex()}|{len(FOREIGN)}|{FOREIGN.hex()}\n"


def test_partition_format_and_per_line_keys(stream_settings: FreightSettings, tmp_path: Path) -> None:
    topic = f"cli-parts-{uuid.uuid4().hex[:8]}"
    store = str(tmp_path / "store")
    ok(freight(stream_settings, "topics", "create", topic, "-p", "3"))
    lines = "".join(f"k{i % 6}:v{i}\n" for i in range(30))
    produced = json.loads(
        ok(
            freight(
                stream_settings,
                *("produce", topic, "--store-dir", store, "--key-separator", ":", "--json"),
                stdin=lines,
            )
        ).stdout
    )
    assert produced["objects"] == 30 and sorted(produced["stream"].split(",")) == [f"k{i}" for i in range(6)]

    every = ok(freight(stream_settings, "consume", topic, "--idle-timeout", "2", "-f", r"%p %o %k %s"))
    rows = [line.split(" ") for line in every.stdout.splitlines()]
    assert sorted(int(v[1:]) for _, _, _, v in rows) == list(range(30))
    assert all(v[1:] and int(v[1:]) % 6 == int(k[1:]) for _, _, k, v in rows)  # each line's key kept
    by_partition: dict[int, list[list[str]]] = {}
    for row in rows:
        by_partition.setdefault(int(row[0]), []).append(row)
    busy = max(by_partition, key=lambda p: len(by_partition[p]))

    one = ok(
        freight(
            stream_settings,
            "consume",
            topic,
            "--partition",
            str(busy),
            "--idle-timeout",
            "2",
            "-f",
            "%p %o %k %s",
        )
    )
    assert [line.split(" ") for line in one.stdout.splitlines()] == by_partition[busy]
    second_offset = by_partition[busy][1][1]
    later = ok(
        freight(
            stream_settings,
            *("consume", topic, "--partition", str(busy), "--offset", second_offset),
            *("--idle-timeout", "2", "-f", "%o"),
        )
    )
    assert later.stdout.split() == [row[1] for row in by_partition[busy][1:]]

    missing = freight(stream_settings, "consume", topic, "--partition", "7", "--idle-timeout", "1")
    assert missing.returncode == 2 and "--partition 7" in missing.stderr and "0..2" in missing.stderr
    with_group = freight(stream_settings, "consume", topic, "--partition", "0", "-g", "g")
    assert with_group.returncode == 2 and "drop --group" in with_group.stderr

    no_sep = freight(
        stream_settings, "produce", topic, "--store-dir", store, "--key-separator", ":", stdin="k:v\nnokey\n"
    )
    assert no_sep.returncode == 2 and "line 2" in no_sep.stderr and "Traceback" not in no_sep.stderr


def test_skip_evicted_reads_past_an_object_gone_from_its_store(
    stream_settings: FreightSettings, tmp_path: Path
) -> None:
    topic = f"cli-evicted-{uuid.uuid4().hex[:8]}"
    src = tmp_path / "in"
    src.mkdir()
    (src / "1-big.bin").write_bytes(os.urandom(200_000))
    (src / "2-small.txt").write_bytes(b"small")
    store = tmp_path / "store"
    ok(freight(stream_settings, "produce", topic, str(src), "--store-dir", str(store)))
    gone = [p for p in store.rglob("*") if p.is_file() and p.stat().st_size >= 200_000]
    assert len(gone) == 1
    gone[0].unlink()  # as an eviction would

    stopped = freight(stream_settings, "consume", topic, "--idle-timeout", "2")
    assert stopped.returncode == 5 and "--skip-evicted" in stopped.stderr
    skipped = ok(freight(stream_settings, "consume", topic, "--idle-timeout", "2", "--skip-evicted"))
    assert skipped.stdout.split() == ["small"]
    assert "1 evicted object(s) skipped" in skipped.stderr


def test_raw_reads_one_partition_or_from_a_time_and_dead_letters_go_where_told(
    stream_settings: FreightSettings, tmp_path: Path
) -> None:
    topic = f"cli-rawparts-{uuid.uuid4().hex[:8]}"
    ok(freight(stream_settings, "topics", "create", topic, "-p", "2"))
    producer = Producer(producer_config(stream_settings))
    for i in range(4):
        producer.produce(topic, value=f"early-{i}".encode(), partition=i % 2)
    producer.flush(30)
    time.sleep(0.05)
    middle = datetime.now(UTC).isoformat()
    time.sleep(0.05)
    producer.produce(topic, value=b"late", partition=1)
    producer.flush(30)

    def raw(*extra: str) -> list[str]:
        result = ok(
            freight(
                stream_settings,
                "consume",
                topic,
                "--raw",
                "--raw-encoding",
                "text",
                "--idle-timeout",
                "2",
                *extra,
            )
        )
        return sorted(result.stdout.splitlines())

    assert raw("--partition", "1", "-f", "%p %o %s") == ["1 0 early-1", "1 1 early-3", "1 2 late"]
    assert raw("--timestamp", middle, "-f", "%p %s") == ["1 late"]
    assert raw("--partition", "0", "--offset", "1", "-f", "%s") == ["early-2"]

    dlq = f"{topic}-rejects"
    lettered = freight(
        stream_settings,
        *("consume", topic, "-g", "g-rejects", "--on-bad-event", "dead-letter", "--dead-letter-topic", dlq),
        *("--idle-timeout", "2"),
    )
    assert lettered.returncode == 0, lettered.stderr
    assert "5 record(s) that are not Freight events dead-lettered" in lettered.stderr
    copied = ok(
        freight(
            stream_settings,
            "consume",
            dlq,
            "--raw",
            "--raw-encoding",
            "text",
            "-f",
            "%s",
            "--idle-timeout",
            "2",
        )
    )
    assert sorted(copied.stdout.split()) == ["early-0", "early-1", "early-2", "early-3", "late"]
