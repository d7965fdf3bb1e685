"""`freight topics create | list | describe | delete`."""

from __future__ import annotations

from typing import Annotated

import typer

from freight.cli.common import Bootstrap, Json, parse_pairs, settings_from
from freight.output import console, print_json, print_table

GROUP = "topics"
app = typer.Typer(help="Create, list and inspect topics.", no_args_is_help=True)


@app.command("create")
def create(
    name: str,
    partitions: Annotated[int, typer.Option("--partitions", "-p", help="Number of partitions.")] = 1,
    config: Annotated[
        list[str] | None, typer.Option("--config", "-c", help="Topic config key=value.")
    ] = None,
    compact: Annotated[bool, typer.Option(help="cleanup.policy=compact.")] = False,
    replication_factor: Annotated[
        int | None,
        typer.Option(
            "--replication-factor", min=1, help="Replicas per partition (default: the broker's default)."
        ),
    ] = None,
    bootstrap: Bootstrap = None,
    json_: Json = False,
) -> None:
    """Create a topic (succeeds if it already exists, and then reports what it has)."""
    from freight.kafka import KafkaAdmin

    conf = parse_pairs(config, "--config")
    if compact:
        conf["cleanup.policy"] = "compact"
    admin = KafkaAdmin(settings_from(bootstrap))
    created = admin.create_topic(name, partitions, config=conf, replication_factor=replication_factor or -1)
    actual = partitions if created else admin.list_topics(internal=True)[name].partitions
    if json_:
        print_json({"topic": name, "partitions": actual, "created": created, "config": conf})
    elif created:
        console.print(f"topic [bold]{name}[/] created ({actual} partition(s))")
    else:
        differs = f"; {partitions} were asked for" if actual != partitions else ""
        console.print(f"topic [bold]{name}[/] already exists ({actual} partition(s){differs})")


@app.command("list")
def list_(
    internal: Annotated[
        bool, typer.Option(help="Include internal topics (__consumer_offsets, ...).")
    ] = False,
    bootstrap: Bootstrap = None,
    json_: Json = False,
) -> None:
    """Topics with their partition counts."""
    from freight.kafka import KafkaAdmin

    topics = KafkaAdmin(settings_from(bootstrap)).list_topics(internal=internal)
    if json_:
        print_json([{"topic": t.name, "partitions": t.partitions} for t in topics.values()])
    else:
        print_table("Topics", ["topic", "partitions"], [(t.name, t.partitions) for t in topics.values()])


@app.command("describe")
def describe(name: str, bootstrap: Bootstrap = None, json_: Json = False) -> None:
    """Partitions (log start, high watermark, records) and non-default configuration of a topic."""
    from freight.kafka import KafkaAdmin

    admin = KafkaAdmin(settings_from(bootstrap))
    info = admin.describe_topic(name)
    marks = admin.watermarks(name)
    if json_:
        print_json(
            {
                "topic": name,
                "partitions": [{"partition": p, "low": lo, "high": hi} for p, (lo, hi) in marks.items()],
                "config": info.config,
            }
        )
        return
    print_table(
        f"Topic {name}",
        ["partition", "log start", "high watermark", "records"],
        [(p, lo, hi, hi - lo) for p, (lo, hi) in marks.items()],
    )
    if info.config:
        print_table("Configuration (non-default)", ["key", "value"], sorted(info.config.items()))


@app.command("delete")
def delete(name: str, bootstrap: Bootstrap = None, json_: Json = False) -> None:
    """Delete a topic and its records."""
    from freight.kafka import KafkaAdmin

    KafkaAdmin(settings_from(bootstrap)).delete_topics([name])
    if json_:
        print_json({"topic": name, "deleted": True})
    else:
        console.print(f"topic [bold]{name}[/] deleted")
