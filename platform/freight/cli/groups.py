"""`freight groups list | describe | delete | reset-offsets`, like Kafka's kafka-consumer-groups tool."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from freight.cli.common import Bootstrap, CommandConfig, Json, settings_from
from freight.errors import ConfigError
from freight.output import console, print_json, print_table

GROUP = "groups"
app = typer.Typer(help="Inspect consumer groups and reset their offsets.", no_args_is_help=True)


@app.command("list")
def list_(bootstrap: Bootstrap = None, command_config: CommandConfig = None, json_: Json = False) -> None:
    """Consumer groups with their state and member count."""
    from freight.kafka import KafkaAdmin

    admin = KafkaAdmin(settings_from(bootstrap, command_config=command_config))
    rows = [(g, *admin.group_state(g)) for g in admin.list_groups()]
    if json_:
        print_json([{"group": g, "state": s, "members": m} for g, s, m in rows])
    else:
        print_table("Consumer groups", ["group", "state", "members"], rows)


@app.command("describe")
def describe(
    group: str,
    topic: Annotated[str | None, typer.Option("--topic", "-t", help="Only this topic.")] = None,
    bootstrap: Bootstrap = None,
    command_config: CommandConfig = None,
    json_: Json = False,
) -> None:
    """Members with their assignment (consumer id, host, client id), then committed offset, high watermark,
    lag and owner per partition of each topic the group committed on."""
    from freight.kafka import KafkaAdmin

    admin = KafkaAdmin(settings_from(bootstrap, command_config=command_config))
    desc = admin.describe_group(group)
    state, members = desc.state, len(desc.members)
    committed = admin.committed(group)
    if state.upper() == "DEAD" and not members and not committed:
        raise ConfigError(
            f"no consumer group named {group!r} (no members, no committed offsets): "
            "`freight groups list` shows the groups"
        )
    topics = sorted({t for t, _ in committed} | {t for m in desc.members for t, _ in m.assignment})
    if topic:
        topics = [topic]
    parts = [p for t in topics for p in admin.group_offsets(group, t)]

    def owner(t: str, p: int) -> str | None:
        m = desc.owner(t, p)
        return None if m is None else m.consumer_id

    if json_:
        print_json(
            {
                "group": group,
                "state": state,
                "members": members,
                "consumers": [
                    {
                        "consumer_id": m.consumer_id,
                        "host": m.host,
                        "client_id": m.client_id,
                        "assignment": [{"topic": t, "partition": p} for t, p in m.assignment],
                    }
                    for m in desc.members
                ],
                "partitions": [
                    {
                        "topic": p.topic,
                        "partition": p.partition,
                        "committed": p.committed,
                        "low": p.low,
                        "high": p.high,
                        "lag": p.lag,
                        "consumer_id": owner(p.topic, p.partition),
                    }
                    for p in parts
                ],
                "total_lag": sum(p.lag for p in parts),
            }
        )
        return
    if desc.members:
        print_table(
            f"Members of {group}",
            ["consumer-id", "host", "client-id", "#partitions", "assignment"],
            [
                (m.consumer_id, m.host, m.client_id, len(m.assignment), _assignment_text(m.assignment))
                for m in desc.members
            ],
        )
    print_table(
        f"Group {group} ({state}, {members} member(s))",
        ["topic", "partition", "committed", "log start", "high watermark", "lag", "consumer-id"],
        [
            (p.topic, p.partition, p.committed, p.low, p.high, p.lag, owner(p.topic, p.partition) or "-")
            for p in parts
        ],
        caption=f"total lag {sum(p.lag for p in parts)}",
    )


def _assignment_text(assignment: tuple[tuple[str, int], ...]) -> str:
    """`topic:0,1 other:2` for a member's partitions."""
    by_topic: dict[str, list[str]] = {}
    for t, p in assignment:
        by_topic.setdefault(t, []).append(str(p))
    return " ".join(f"{t}:{','.join(ps)}" for t, ps in by_topic.items()) or "-"


@app.command("delete")
def delete(
    groups: Annotated[list[str], typer.Argument(help="The groups to delete (each must have no members).")],
    bootstrap: Bootstrap = None,
    command_config: CommandConfig = None,
    json_: Json = False,
) -> None:
    """Delete consumer groups and their committed offsets (like kafka-consumer-groups --delete)."""
    from freight.kafka import KafkaAdmin

    admin = KafkaAdmin(settings_from(bootstrap, command_config=command_config))
    for group in groups:
        admin.delete_group(group)
        if not json_:
            console.print(f"group [bold]{escape(group)}[/] deleted")
    if json_:
        print_json({"deleted": groups})


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
    topic: Annotated[
        list[str] | None, typer.Option("--topic", "-t", help="The topic whose offsets to reset (repeatable).")
    ] = None,
    all_topics: Annotated[
        bool, typer.Option("--all-topics", help="Every topic the group has committed offsets on.")
    ] = False,
    to_earliest: Annotated[bool, typer.Option("--to-earliest", help="Reset to the log start.")] = False,
    to_latest: Annotated[bool, typer.Option("--to-latest", help="Reset to the high watermark.")] = False,
    to_offset: Annotated[int | None, typer.Option("--to-offset", help="Reset to this offset.")] = None,
    to_datetime: Annotated[
        str | None, typer.Option("--to-datetime", help="Reset to the first record at/after this ISO time.")
    ] = None,
    shift_by: Annotated[
        int | None,
        typer.Option(
            "--shift-by",
            help="Move the committed offset by N (negative: back); never-committed: from log start.",
        ),
    ] = None,
    by_duration: Annotated[
        str | None,
        typer.Option(
            "--by-duration", help="Reset to the first record this long ago (ISO 8601: PT10M, P1DT2H)."
        ),
    ] = None,
    to_current: Annotated[
        bool, typer.Option("--to-current", help="Keep the committed offsets (e.g. to --export them).")
    ] = False,
    from_file: Annotated[
        Path | None,
        typer.Option(
            "--from-file", help="Reset to the offsets of a topic,partition,offset CSV (as --export writes)."
        ),
    ] = None,
    partition: Annotated[
        list[int] | None, typer.Option("--partition", "-p", help="Only these partitions.")
    ] = None,
    export: Annotated[
        bool, typer.Option("--export", help="Print the plan as topic,partition,offset CSV (for --from-file).")
    ] = False,
    execute: Annotated[bool, typer.Option("--execute", help="Apply the plan (default: dry run).")] = False,
    bootstrap: Bootstrap = None,
    command_config: CommandConfig = None,
    json_: Json = False,
) -> None:
    """Plan (and with --execute, apply) new committed offsets for a stopped group; a dry run by default."""
    from freight.cli.offset_reset import ResetSpec, parse_duration_ms, plan, plan_csv, read_plan_csv
    from freight.kafka import KafkaAdmin

    chosen = [
        to_earliest,
        to_latest,
        to_offset is not None,
        to_datetime is not None,
        shift_by is not None,
        by_duration is not None,
        to_current,
        from_file is not None,
    ]
    if sum(chosen) != 1:
        raise ConfigError(
            "give exactly one of --to-earliest, --to-latest, --to-offset N, --to-datetime ISO, --shift-by N, "
            "--by-duration PT.., --to-current, --from-file CSV"
        )
    if from_file is not None and (topic or all_topics or partition):
        raise ConfigError(
            "--from-file names its topics and partitions; drop --topic / --all-topics / --partition"
        )
    if from_file is None and bool(topic) == all_topics:
        raise ConfigError("give --topic T (repeatable) or --all-topics")
    if export and json_:
        raise ConfigError("give either --export (CSV) or --json, not both")
    spec = ResetSpec(
        to="earliest" if to_earliest else "latest" if to_latest else None,
        offset=to_offset,
        timestamp_ms=_parse_datetime(to_datetime) if to_datetime else None,
        shift_by=shift_by,
        duration_ms=parse_duration_ms(by_duration) if by_duration is not None else None,
        to_current=to_current,
        from_file=read_plan_csv(from_file) if from_file is not None else None,
    )
    admin = KafkaAdmin(settings_from(bootstrap, command_config=command_config))
    topics = list(topic or [])
    if all_topics:
        topics = sorted({t for t, _ in admin.committed(group)})
        if not topics:
            raise ConfigError(f"group {group!r} has no committed offsets; name the topics with --topic")
    rows = plan(admin, group, topics, partition, spec)
    if execute:
        admin.alter_group_offsets(group, {(r.topic, r.partition): r.new for r in rows})
    if export:
        sys.stdout.write(plan_csv(rows))
        return
    if json_:
        print_json(
            {
                "group": group,
                "topic": topics[0] if len(topics) == 1 else None,
                "topics": sorted({r.topic for r in rows}),
                "executed": execute,
                "partitions": [
                    {"topic": r.topic, "partition": r.partition, "current": r.current, "new": r.new}
                    for r in rows
                ],
            }
        )
        return
    print_table(
        f"Reset offsets of group {group}" + ("" if execute else " (dry run)"),
        ["topic", "partition", "current", "new"],
        [(r.topic, r.partition, r.current, r.new) for r in rows],
    )
    if not execute:
        console.print("[dim]dry run: add --execute to apply[/]")
