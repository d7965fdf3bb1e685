"""Plans of `freight groups reset-offsets`: new committed offsets per (topic, partition), as
kafka-consumer-groups computes them (--to-*, --shift-by, --by-duration, --to-current, --from-file), and the
CSV it exports and reads back (`topic,partition,offset`, one line per partition)."""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from freight.errors import ConfigError
from freight.kafka import KafkaAdmin
from freight.stream.replay import Position, seek_targets

_DURATION = re.compile(
    r"^P(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$", re.IGNORECASE
)


@dataclass(frozen=True)
class ResetRow:
    """One partition of a reset plan: the committed offset now (None if never committed) and the new one."""

    topic: str
    partition: int
    current: int | None
    new: int


@dataclass(frozen=True)
class ResetSpec:
    """What to reset to: exactly one field is set (checked by the command)."""

    to: Position | None = None
    offset: int | None = None
    timestamp_ms: int | None = None
    shift_by: int | None = None
    duration_ms: int | None = None
    to_current: bool = False
    from_file: Mapping[tuple[str, int], int] | None = None


def parse_duration_ms(text: str) -> int:
    """An ISO 8601 duration as kafka-consumer-groups --by-duration takes it (`PnDTnHnMnS`), in ms.

    Raises:
        ConfigError: not such a duration (the message shows examples).
    """
    m = _DURATION.match(text.strip())
    if not m or not any(m.groupdict().values()):
        raise ConfigError(
            f"--by-duration expects an ISO 8601 duration such as PT10M, PT1H30M or P1DT2H, not {text!r}"
        )
    d, h, mins, s = (float(m.group(k) or 0) for k in ("d", "h", "m", "s"))
    return int((((d * 24 + h) * 60 + mins) * 60 + s) * 1000)


def read_plan_csv(path: Path) -> dict[tuple[str, int], int]:
    """Offsets from a `topic,partition,offset` CSV (what --export writes; a header line is allowed).

    Raises:
        ConfigError: the file is missing or a line is not `topic,partition,offset` (named by number).
    """
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"--from-file {path}: cannot read it ({exc.strerror})") from exc
    out: dict[tuple[str, int], int] = {}
    for number, row in enumerate(csv.reader(io.StringIO(text)), 1):
        if not row or not "".join(row).strip() or row[0].strip().lower() == "topic":
            continue
        try:
            topic, partition, offset = (c.strip() for c in row)
            out[(topic, int(partition))] = int(offset)
        except ValueError as exc:
            raise ConfigError(
                f"--from-file {path} line {number}: expected topic,partition,offset, got {','.join(row)!r}"
            ) from exc
    if not out:
        raise ConfigError(f"--from-file {path}: no topic,partition,offset lines in it")
    return out


def plan_csv(rows: Iterable[ResetRow]) -> str:
    """The plan as kafka-consumer-groups --export writes it: `topic,partition,offset` lines."""
    return "".join(f"{r.topic},{r.partition},{r.new}\n" for r in rows)


def plan(
    admin: KafkaAdmin,
    group: str,
    topics: list[str],
    partitions: list[int] | None,
    spec: ResetSpec,
) -> list[ResetRow]:
    """The new offset of every partition concerned, clamped to [log start, high watermark].

    Args:
        admin: the cluster's admin.
        group: the consumer group.
        topics: the topics (ignored with `spec.from_file`, which names its own).
        partitions: only these partitions of each topic (None: all).
        spec: where to go.

    Returns:
        One row per partition, in topic and partition order. With `to_current`, partitions the group never
        committed are left out (they have no current offset to keep).
    """
    committed = admin.committed(group)
    if spec.from_file is not None:
        wanted: dict[str, list[int]] = {}
        for t, p in sorted(spec.from_file):
            wanted.setdefault(t, []).append(p)
    else:
        wanted = {t: list(partitions) if partitions else admin.partitions(t) for t in topics}
    rows: list[ResetRow] = []
    for topic, parts in wanted.items():
        targets = _targets(admin, topic, parts, spec, committed)
        rows += [ResetRow(topic, p, committed.get((topic, p)), o) for p, o in sorted(targets.items())]
    return rows


def _targets(
    admin: KafkaAdmin,
    topic: str,
    parts: list[int],
    spec: ResetSpec,
    committed: Mapping[tuple[str, int], int],
) -> dict[int, int]:
    if spec.to is not None or spec.offset is not None or spec.timestamp_ms is not None:
        return seek_targets(
            admin, topic, parts, to=spec.to, offset=spec.offset, timestamp_ms=spec.timestamp_ms
        )
    if spec.duration_ms is not None:
        since = int(time.time() * 1000) - spec.duration_ms
        return seek_targets(admin, topic, parts, timestamp_ms=since)
    marks = admin.watermarks(topic)
    unknown = [p for p in parts if p not in marks]
    if unknown:
        raise ConfigError(f"topic {topic!r} has no partition(s) {unknown}; it has {sorted(marks)}")
    out: dict[int, int] = {}
    for p in parts:
        low, high = marks[p]
        now = committed.get((topic, p))
        if spec.shift_by is not None:
            wanted = (low if now is None else now) + spec.shift_by
        elif spec.to_current:
            if now is None:
                continue
            wanted = now
        else:
            assert spec.from_file is not None
            wanted = spec.from_file[(topic, p)]
        out[p] = min(max(wanted, low), high)
    return out
