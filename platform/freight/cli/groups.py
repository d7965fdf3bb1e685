"""`freight groups list | describe | reset-offsets`, like Kafka's kafka-consumer-groups tool."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from freight.cli.common import Bootstrap, Json, settings_from
from freight.errors import ConfigError
from freight.output import console, print_json, print_table

GROUP = "groups"
app = typer.Typer(help="Inspect consumer groups and reset their offsets.", no_args_is_help=True)


@app.command("list")
def list_(bootstrap: Bootstrap = None, json_: Json = False) -> None:
    """Consumer groups with their state and member count."""
    from freight.kafka import KafkaAdmin

    admin = KafkaAdmin(settings_from(bootstrap))
    rows = [(g, *admin.group_state(g)) for g in admin.list_groups()]
    if json_:
        print_json([{"group": g, "state": s, "members": m} for g, s, m in rows])
    else:
        print_table("Consumer groups", ["group", "state", "members"], rows)


@app.command("describe")
def describe(
    group: str,
    topic: Annotated[str | None, typer.Option(help="Only this topic.")] = None,
    bootstrap: Bootstrap = None,
    json_: Json = False,
) -> None:
    """Committed offset, high watermark and lag per partition of each topic the group committed on."""
    from freight.kafka import KafkaAdmin

    admin = KafkaAdmin(settings_from(bootstrap))
    state, members = admin.group_state(group)
    committed = admin.committed(group)
    if state.upper() == "DEAD" and not members and not committed:
        raise ConfigError(
            f"no consumer group named {group!r} (no members, no committed offsets): "
            "`freight groups list` shows the groups"
        )
    topics = sorted({t for t, _ in committed} | ({topic} if topic else set()))
    if topic:
        topics = [topic]
    parts = [p for t in topics for p in admin.group_offsets(group, t)]
    if json_:
        print_json(
            {
                "group": group,
                "state": state,
                "members": members,
                "partitions": [
                    {
                        "topic": p.topic,
                        "partition": p.partition,
                        "committed": p.committed,
                        "low": p.low,
                        "high": p.high,
                        "lag": p.lag,
                    }
                    for p in parts
                ],
                "total_lag": sum(p.lag for p in parts),
            }
        )
        return
    print_table(
        f"Group {group} ({state}, {members} member(s))",
        ["topic", "partition", "committed", "log start", "high watermark", "lag"],
        [(p.topic, p.partition, p.committed, p.low, p.high, p.lag) for p in parts],
        caption=f"total lag {sum(p.lag for p in parts)}",
    )


def _parse_datetime(text: str) -> int:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ConfigError(
            f"--to-datetime expects ISO 8601 such as 2026-01-31T12:00:00+00:00, got {text!r}"
        ) from exc
    if moment.tzinfo is None:
        moment = moment.astimezone()  # local time, as Kafka's tool does
    return int(moment.timestamp() * 1000)


@app.command("reset-offsets")
def reset_offsets(
    group: Annotated[str, typer.Option("--group", "-g", help="The consumer group (must have no members).")],
    topic: Annotated[str, typer.Option("--topic", "-t", help="The topic whose offsets to reset.")],
    to_earliest: Annotated[bool, typer.Option("--to-earliest", help="Reset to the log start.")] = False,
    to_latest: Annotated[bool, typer.Option("--to-latest", help="Reset to the high watermark.")] = False,
    to_offset: Annotated[int | None, typer.Option("--to-offset", help="Reset to this offset.")] = None,
    to_datetime: Annotated[
        str | None, typer.Option("--to-datetime", help="Reset to the first record at/after this ISO time.")
    ] = None,
    partition: Annotated[
        list[int] | None, typer.Option("--partition", "-p", help="Only these partitions.")
    ] = None,
    execute: Annotated[bool, typer.Option("--execute", help="Apply the plan (default: dry run).")] = False,
    bootstrap: Bootstrap = None,
    json_: Json = False,
) -> None:
    """Plan (and with --execute, apply) new committed offsets for a stopped group."""
    from freight.stream.replay import plan_reset

    chosen = [to_earliest, to_latest, to_offset is not None, to_datetime is not None]
    if sum(chosen) != 1:
        raise ConfigError("give exactly one of --to-earliest, --to-latest, --to-offset N, --to-datetime ISO")
    plan = plan_reset(
        settings_from(bootstrap),
        group,
        topic,
        to="earliest" if to_earliest else "latest" if to_latest else None,
        offset=to_offset,
        timestamp_ms=_parse_datetime(to_datetime) if to_datetime else None,
        partitions=partition,
    )
    if execute:
        plan.apply()
    rows = [(topic, p, plan.current.get(p), new) for p, new in sorted(plan.targets.items())]
    if json_:
        print_json(
            {
                "group": group,
                "topic": topic,
                "executed": execute,
                "partitions": [{"partition": p, "current": c, "new": n} for _, p, c, n in rows],
            }
        )
        return
    print_table(
        f"Reset offsets of group {group}" + ("" if execute else " (dry run)"),
        ["topic", "partition", "current", "new"],
        rows,
    )
    if not execute:
        console.print("[dim]dry run: add --execute to apply[/]")
