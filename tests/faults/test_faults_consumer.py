"""Consumer faults: group members SIGKILLed at random points, inside a rebalance, and between resolving an
item and asking for the next (its commit); the union of what the group processed covers every event, and
only items that were not committed when their member died are processed twice.

Each member (tests/faults/procs.py `consume`) fsyncs a line per finished item before it asks for the next, so
its file is exactly what it processed; the group's committed offsets are read right after each kill (a dead
member's partitions move only after its session times out, 6 s, so nothing else commits them in between).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from tests.faults.procs import STREAMS, payload
from tests.fixtures.faults import FULL, wait_until

from freight.config import FreightSettings
from freight.kafka import KafkaAdmin
from freight.stream import StreamConsumer

PROCS = Path(__file__).with_name("procs.py")


@dataclass
class Member:
    """One consumer process of the group and what it logged."""

    name: str
    out: Path
    proc: subprocess.Popen[bytes]
    killed_with: dict[tuple[str, int], int] | None = None  # committed offsets right after its SIGKILL

    def lines(self) -> list[dict[str, Any]]:
        if not self.out.exists():
            return []
        out = []
        for text in self.out.read_text().splitlines():
            try:
                out.append(json.loads(text))
            except ValueError:  # the last line of a process killed while writing it: not finished
                continue
        return out

    def wait(self, predicate: Callable[[Member], bool], what: str) -> None:
        """Wait until `predicate(self)`; fail at once if the process died on its own."""

        def check() -> bool:
            assert self.proc.poll() is None, f"{self.name} exited with {self.proc.returncode} before {what}"
            return predicate(self)

        wait_until(check, 120, f"{self.name} {what}")

    def items(self) -> list[tuple[int, int]]:
        return [(x["p"], x["o"]) for x in self.lines() if "o" in x]

    def held(self) -> str | None:
        return next((x["hold"] for x in self.lines() if "hold" in x), None)

    def kill(self, settings: FreightSettings, group: str, topic: str) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.killed_with = KafkaAdmin(settings).committed(group, topic)


@dataclass
class Group:
    settings: FreightSettings
    topic: str
    group: str
    directory: Path
    members: list[Member] = field(default_factory=list)

    def start(self, *args: str) -> Member:
        name = f"m{len(self.members)}"
        out = self.directory / f"{name}.jsonl"
        env = dict(os.environ)
        env.update(
            FREIGHT_KAFKA_BOOTSTRAP=self.settings.kafka_bootstrap,
            FREIGHT_SCHEMA_REGISTRY_URL=self.settings.schema_registry_url,
        )
        cmd = [sys.executable, str(PROCS), "consume", "--topic", self.topic, "--group", self.group]
        with open(self.directory / f"{name}.log", "wb") as log:
            proc = subprocess.Popen([*cmd, "--out", str(out), *args], env=env, stdout=log, stderr=log)
        member = Member(name, out, proc)
        self.members.append(member)
        return member

    def kill(self, member: Member) -> None:
        member.kill(self.settings, self.group, self.topic)

    def close(self) -> None:
        """Kill what is left (a failed test), showing the logs of members that failed on their own."""
        for m in self.members:
            if m.proc.poll() is None:
                m.proc.kill()
                m.proc.wait(10)
            elif m.killed_with is None and m.proc.returncode:
                print(f"--- {m.name} exited with {m.proc.returncode}:")
                print((self.directory / f"{m.name}.log").read_text()[-3000:])


@pytest.fixture
def consumer_group(
    stream_settings: FreightSettings, make_topic: Callable[..., str], group_id: str, tmp_path: Path
) -> Iterator[Group]:
    """A group of consumer processes on a fresh 3-partition topic (leftover processes killed after)."""
    group = Group(stream_settings, make_topic(partitions=3), group_id, tmp_path)
    try:
        yield group
    finally:
        group.close()


def _produce(make_producer: Callable[..., Any], store: Any, topic: str, n: int) -> None:
    producer = make_producer({None: store})
    for i in range(n):
        producer.send(topic, payload(i), stream=f"s{i % STREAMS}")
    producer.flush()


def _cycle(group: Group, rng: random.Random) -> None:
    """One round of the three kinds of kill, each followed by a new member."""
    # 1. A random point of normal processing.
    a = group.start("--delay", "0.02")
    target = rng.randint(5, 40)
    a.wait(lambda m: len(m.items()) >= target, f"to process {target} items")
    group.kill(a)
    # 2. Inside a rebalance: a new member joins, the old one is killed in its revoke callback (before it
    #    commits what it finished).
    b = group.start("--delay", "0.02", "--hold-in-revoke")
    b.wait(lambda m: len(m.items()) >= 5, "to get partitions and process items")
    c = group.start("--delay", "0.02", "--hold-after", str(rng.randint(3, 15)))
    b.wait(lambda m: m.held() == "revoke", "to enter the rebalance")
    group.kill(b)
    # 3. Between resolve and commit: the member resolved and logged an item and dies before asking for the
    #    next one (which would store that item's offset).
    c.wait(lambda m: m.held() == "resolved", "to hold after an item")
    # What it finished is committed in the background although it all came in one prefetched batch; the item
    # in hand is not (checked after the kill).
    first: dict[int, int] = {}
    for p, o in c.items():
        first.setdefault(p, o)
    admin = KafkaAdmin(group.settings)

    def committed_past_first() -> bool:
        done = admin.committed(group.group, group.topic)
        return any(done.get((group.topic, p), -1) > o for p, o in first.items())

    wait_until(committed_past_first, 20, f"the background commit of items {c.name} finished", step=0.5)
    group.kill(c)


def _cycle_random_rebalance(group: Group, rng: random.Random) -> None:
    """A member is killed at a random moment after another one started to join (full suite only)."""
    a = group.start("--delay", "0.02")
    first, second = rng.randint(3, 20), rng.randint(3, 20)
    a.wait(lambda m: len(m.items()) >= first, "to process items")
    b = group.start("--delay", "0.02")
    time.sleep(rng.uniform(0.0, 2.0))
    group.kill(a)
    b.wait(lambda m: len(m.items()) >= second, "to process items")
    group.kill(b)


@pytest.mark.long
def test_killed_members_lose_nothing_and_repeat_only_uncommitted_items(
    stream_settings: FreightSettings,
    consumer_group: Group,
    make_producer: Callable[..., Any],
    file_store: Any,
    rng: random.Random,
) -> None:
    group = consumer_group
    topic = group.topic
    total = 1500 if FULL else 300
    _produce(make_producer, file_store, topic, total)
    for round_ in range(3 if FULL else 1):
        _cycle(group, rng)
        if FULL:
            _cycle_random_rebalance(group, rng)
        print(f"round {round_}: {sum(len(m.items()) for m in group.members)} items processed so far")
    last = group.start("--until-end", "--idle", "30")
    assert last.proc.wait(180) == 0, "the last member failed (a wrong object is an AssertionError there)"

    everything = [(m, pos) for m in group.members for pos in m.items()]
    counts = Counter(pos for _, pos in everything)
    highs = {p: hi for p, (_lo, hi) in KafkaAdmin(stream_settings).watermarks(topic).items()}
    assert set(counts) == {(p, o) for p, hi in highs.items() for o in range(hi)}, (
        "an event was never processed"
    )
    assert sum(highs.values()) == total

    killed = [m for m in group.members if m.killed_with is not None]
    uncommitted: set[tuple[int, int]] = set()
    allowance = 0
    for m in killed:
        assert m.killed_with is not None
        open_items = {(p, o) for p, o in m.items() if o >= m.killed_with.get((topic, p), 0)}
        uncommitted |= open_items
        allowance += len(open_items)
        print(f"{m.name}: {len(m.items())} items, {len(open_items)} not committed when killed ({m.held()})")
    repeated = {pos: n - 1 for pos, n in counts.items() if n > 1}
    assert set(repeated) <= uncommitted, "an item committed before its member died was processed again"
    assert sum(repeated.values()) <= allowance
    # The item a member held between resolve and commit is processed again: it was never committed.
    for m in killed:
        if m.held() == "resolved":
            assert m.killed_with is not None
            (p, o) = m.items()[-1]
            assert m.killed_with.get((topic, p), 0) <= o, f"{m.name}'s item in hand was committed"
            assert counts[(p, o)] >= 2, f"{m.name}'s last, uncommitted item was not redelivered"
    print(f"{len(group.members)} members, {len(killed)} killed, {sum(repeated.values())} repeats")


def test_a_slow_member_hands_over_partitions_without_draining_its_prefetched_batch(
    stream_settings: FreightSettings,
    make_topic: Callable[..., str],
    make_producer: Callable[..., Any],
    file_store: Any,
    group_id: str,
) -> None:
    # A member that fetched a large backlog and works slowly through it must still serve a rebalance: the
    # new member gets its partitions promptly, and the handover loses and repeats nothing (the slow member
    # commits what it finished of the revoked partitions, and drops the rest of their prefetched records).
    topic = make_topic(partitions=2)
    total = 400
    _produce(make_producer, file_store, topic, total)
    config = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 500}
    slow_items: list[tuple[int, int]] = []
    fast_items: list[tuple[int, int]] = []
    fast_parts: list[list[tuple[str, int]]] = []
    processed_at_handover: list[int] = []
    with StreamConsumer(topic, group_id, settings=stream_settings, kafka_config=config) as slow:
        slow.wait_for_assignment(30)
        record = slow.next_record(timeout=30)  # its fetch brings the backlog of both partitions

        def join() -> None:
            with StreamConsumer(topic, group_id, settings=stream_settings, kafka_config=config) as fast:
                deadline = time.monotonic() + 60
                while not fast.assignment() and time.monotonic() < deadline:
                    fast.wait_for_assignment(0.2)
                fast_parts.append(fast.assignment())
                processed_at_handover.append(len(slow_items))
                while (r := fast.next_record(timeout=5)) is not None:
                    fast_items.append((r.partition, r.offset))

        thread = threading.Thread(target=join)
        thread.start()
        while record is not None:
            slow_items.append((record.partition, record.offset))
            time.sleep(0.05)  # slow work: 400 items would take 20 s
            record = slow.next_record(timeout=5 if thread.is_alive() else 0.5)
        thread.join(60)
    assert fast_parts and len(fast_parts[0]) == 1, "the new member got no partition"
    assert processed_at_handover[0] < total * 3 // 4, "the rebalance waited for the prefetched batch to drain"
    everything = slow_items + fast_items
    assert len(everything) == total and len(set(everything)) == total  # handed over: nothing lost or repeated
    (_topic, moved) = fast_parts[0][0]
    handover = processed_at_handover[0]
    assert all(p != moved for p, _o in slow_items[handover:]), "records of a revoked partition went on"
