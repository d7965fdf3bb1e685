"""`freight topics create | alter | list | describe | delete`, like kafka-topics and kafka-configs."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from freight.cli.common import Bootstrap, CommandConfig, Json, parse_pairs, settings_from
from freight.errors import ConfigError
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
    if_not_exists: Annotated[
        bool,
        typer.Option(
            "--if-not-exists", help="Accept an existing topic as it is, even with other partitions (exit 0)."
        ),
    ] = False,
    bootstrap: Bootstrap = None,
    command_config: CommandConfig = None,
    json_: Json = False,
) -> None:
    """Create a topic. An existing topic is fine when it has the partitions asked for; one with other
    partitions is an error (exit 2) unless --if-not-exists."""
    from freight.kafka import KafkaAdmin

    conf = parse_pairs(config, "--config")
    if compact:
        conf["cleanup.policy"] = "compact"
    admin = KafkaAdmin(settings_from(bootstrap, command_config=command_config))
    created = admin.create_topic(name, partitions, config=conf, replication_factor=replication_factor or -1)
    actual = partitions if created else admin.list_topics(internal=True)[name].partitions
    if not created and actual != partitions and not if_not_exists:
        grow = (
            f"`freight topics alter {name} --partitions {partitions}` adds partitions"
            if partitions > actual
            else "Kafka cannot remove partitions"
        )
        raise ConfigError(
            f"topic {name!r} already exists with {actual} partition(s), not the {partitions} asked for: "
            f"{grow}; --if-not-exists accepts it as it is"
        )
    if json_:
        print_json({"topic": name, "partitions": actual, "created": created, "config": conf})
    elif created:
        console.print(f"topic [bold]{escape(name)}[/] created ({actual} partition(s))")
    else:
        differs = f"; {partitions} were asked for" if actual != partitions else ""
        console.print(f"topic [bold]{escape(name)}[/] already exists ({actual} partition(s){differs})")


@app.command("alter")
def alter(
    name: str,
    partitions: Annotated[
        int | None,
        typer.Option(
            "--partitions", "-p", min=1, help="Grow the topic to this many partitions (never fewer)."
        ),
    ] = None,
    config: Annotated[
        list[str] | None, typer.Option("--config", "-c", help="Set a topic config key=value (repeatable).")
    ] = None,
    delete_config: Annotated[
        list[str] | None,
        typer.Option("--delete-config", help="Back to the broker default for this key (repeatable)."),
    ] = None,
    bootstrap: Bootstrap = None,
    command_config: CommandConfig = None,
    json_: Json = False,
) -> None:
    """Add partitions and set or delete configs of a topic (other configs stay as they are)."""
    from freight.kafka import KafkaAdmin

    conf = parse_pairs(config, "--config")
    if partitions is None and not conf and not delete_config:
        raise ConfigError("nothing to alter: give --partitions N, --config key=value or --delete-config key")
    admin = KafkaAdmin(settings_from(bootstrap, command_config=command_config))
    if conf or delete_config:
        admin.alter_topic_config(name, conf, delete_config or [])
    if partitions is not None:
        admin.add_partitions(name, partitions)
    count = len(admin.partitions(name))
    if json_:
        print_json({"topic": name, "partitions": count, "set": conf, "deleted": list(delete_config or [])})
        return
    done = [f"{count} partition(s)"] + [f"{k}={v}" for k, v in conf.items()]
    done += [f"{k} reset to the default" for k in delete_config or []]
    console.print(f"topic [bold]{escape(name)}[/] altered: " + escape(", ".join(done)))


@app.command("list")
def list_(
    internal: Annotated[
        bool, typer.Option(help="Include internal topics (__consumer_offsets, ...).")
    ] = False,
    bootstrap: Bootstrap = None,
    command_config: CommandConfig = None,
    json_: Json = False,
) -> None:
    """Topics with their partition counts."""
    from freight.kafka import KafkaAdmin

    topics = KafkaAdmin(settings_from(bootstrap, command_config=command_config)).list_topics(
        internal=internal
    )
    if json_:
        print_json([{"topic": t.name, "partitions": t.partitions} for t in topics.values()])
    else:
        print_table("Topics", ["topic", "partitions"], [(t.name, t.partitions) for t in topics.values()])


@app.command("describe")
def describe(
    name: str, bootstrap: Bootstrap = None, command_config: CommandConfig = None, json_: Json = False
) -> None:
    """Partitions (leader, replicas, in-sync replicas, log start, high watermark, records) and the
    non-default configuration of a topic."""
    from freight.kafka import KafkaAdmin

    admin = KafkaAdmin(settings_from(bootstrap, command_config=command_config))
    info = admin.describe_topic(name)
    marks = admin.watermarks(name)
    replicas = {r.partition: r for r in admin.partition_replicas(name)}
    if json_:
        print_json(
            {
                "topic": name,
                "partitions": [
                    {
                        "partition": p,
                        "low": lo,
                        "high": hi,
                        "leader": replicas[p].leader,
                        "replicas": list(replicas[p].replicas),
                        "isr": list(replicas[p].isr),
                    }
                    for p, (lo, hi) in marks.items()
                ],
                "config": info.config,
            }
        )
        return

    def ids(broker_ids: tuple[int, ...]) -> str:
        return ",".join(map(str, broker_ids))

    print_table(
        f"Topic {name}",
        ["partition", "leader", "replicas", "isr", "log start", "high watermark", "records"],
        [
            (p, replicas[p].leader, ids(replicas[p].replicas), ids(replicas[p].isr), lo, hi, hi - lo)
            for p, (lo, hi) in marks.items()
        ],
    )
    if info.config:
        print_table("Configuration (non-default)", ["key", "value"], sorted(info.config.items()))


@app.command("delete")
def delete(
    name: str, bootstrap: Bootstrap = None, command_config: CommandConfig = None, json_: Json = False
) -> None:
    """Delete a topic and its records."""
    from freight.kafka import KafkaAdmin

    KafkaAdmin(settings_from(bootstrap, command_config=command_config)).delete_topics([name])
    if json_:
        print_json({"topic": name, "deleted": True})
    else:
        console.print(f"topic [bold]{escape(name)}[/] deleted")
