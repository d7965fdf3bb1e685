"""`freight evict`: offset-driven eviction from the command line.

    freight evict --once [--topic T]        one pass (and an orphan sweep), then exit
    freight evict serve [--interval 5s]     a long-lived service; SIGTERM/SIGINT finish the batch and stop
    freight evict --status [--topic T]      watermarks, groups and lag, objects held, what blocks eviction
    freight evict policy set|get|list|delete ...

Only topics with a retention policy are touched. Every command takes `--json`.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer

from freight.cli.common import (
    Bootstrap,
    CommandConfig,
    Json,
    RegistryCa,
    RegistryCert,
    RegistryKey,
    RegistryUrl,
    settings_from,
)
from freight.config import FreightSettings
from freight.errors import ConfigError
from freight.output import console, err_console, note, print_json, print_kv, print_table

if TYPE_CHECKING:
    from freight.eviction import Evictor, PassReport, RetentionPolicy, TopicStatus
    from freight.kafka import KafkaAdmin

GROUP = "evict"
app = typer.Typer(
    help="Delete stored objects every retaining consumer group has committed past (offset watermark).",
    no_args_is_help=True,
)
policy_app = typer.Typer(
    help="Retention policies: which groups must see a topic's objects.", no_args_is_help=True
)
app.add_typer(policy_app, name="policy")

Topics = Annotated[
    list[str] | None,
    typer.Option("--topic", "-t", help="Only this topic (repeatable; default: every policy)."),
]
BatchSize = Annotated[int, typer.Option("--batch-size", min=1, help="Objects deleted per batch and commit.")]
CheckpointGroup = Annotated[
    str, typer.Option("--group", "-g", help="The evictor's checkpoint consumer group.")
]


def _connect(
    bootstrap: str | None,
    registry: str | None,
    command_config: Path | None = None,
    registry_tls: tuple[Path | None, Path | None, Path | None] = (None, None, None),
) -> tuple[FreightSettings, KafkaAdmin]:
    """Settings and an admin client for the command, after a quick broker check (a clear error saying
    `freight dev up`). One admin client serves the whole command: each new one costs a connection."""
    from freight.kafka import KafkaAdmin

    ca, cert, key = registry_tls
    settings = settings_from(
        bootstrap,
        registry,
        command_config=command_config,
        registry_ca=ca,
        registry_cert=cert,
        registry_key=key,
    )
    admin = KafkaAdmin(settings, quiet=True)
    admin.ping(3)
    return settings, admin


def _evictor(
    settings: FreightSettings,
    admin: KafkaAdmin,
    group: str,
    batch_size: int,
    stop: threading.Event | None = None,
) -> Evictor:
    from freight.eviction import Evictor

    return Evictor(settings, group=group, batch_size=batch_size, stop=stop, admin=admin)


def _check_topics(admin: KafkaAdmin, topics: list[str] | None) -> None:
    if not topics:
        return
    settings = admin.settings
    for topic in topics:
        if not admin.topic_exists(topic):
            raise ConfigError(
                f"topic {topic!r} does not exist on {settings.kafka_bootstrap} (`freight topics list`)"
            )


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1024
    return f"{n} B"


# -- one pass ----------------------------------------------------------------------------------------------


def _print_pass(report: PassReport) -> None:
    rows: list[tuple[object, ...]] = []
    for t in report.topics:
        if t.error:
            rows.append((t.topic, None, None, None, None, None, None, None, f"error: {t.error}"))
            continue
        for p in t.partitions:
            note_ = "; ".join(p.blocking) if p.watermark < p.high else "all committed"
            if p.waiting_at is not None:
                note_ = f"waiting for min age at offset {p.waiting_at}; " + note_
            rows.append(
                (
                    t.topic,
                    p.partition,
                    f"{p.low}/{p.watermark}/{p.high}",
                    f"{p.start} -> {p.checkpoint}",
                    p.deleted,
                    _size(p.bytes_deleted),
                    p.already_gone,
                    p.kept,
                    note_,
                )
            )
    print_table(
        "Eviction pass",
        ["topic", "part", "low/watermark/high", "checkpoint", "deleted", "bytes", "gone", "kept", "held by"],
        rows,
        caption=f"{report.deleted} object(s), {_size(report.bytes_deleted)} deleted in {report.seconds:.2f}s",
    )
    if report.sweeps:
        print_table(
            "Orphan sweep",
            ["topic", "events read", "stores", "listed", "younger than grace", "orphans", "deleted", "kept"],
            [
                (
                    s.topic,
                    s.events,
                    ", ".join(s.stores) or None,
                    s.listed,
                    s.young,
                    s.orphans,
                    s.deleted,
                    s.kept,
                )
                for s in report.sweeps
            ],
        )


def _run_once(
    settings: FreightSettings,
    admin: KafkaAdmin,
    topics: list[str] | None,
    group: str,
    batch_size: int,
    orphans: bool,
    json_: bool,
) -> None:
    _check_topics(admin, topics)
    with _evictor(settings, admin, group, batch_size) as evictor:
        if not topics and not evictor.policies.refresh():
            note("no retention policies: nothing to evict (set one with `freight evict policy set TOPIC`)")
        with err_console.status("evicting ...", spinner="dots"):
            report = evictor.run_once(topics, orphans=orphans)
    if json_:
        print_json(report.as_dict())
    else:
        _print_pass(report)
    if report.errors:
        for line in report.errors:
            err_console.print(f"[bold red]error:[/] {line}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)


# -- status ------------------------------------------------------------------------------------------------


def _print_status(statuses: list[TopicStatus]) -> None:
    if not statuses:
        note("no retention policies: nothing to show (set one with `freight evict policy set TOPIC`)")
    for st in statuses:
        pol = st.policy
        groups = ", ".join(pol["groups"]) or "-"
        console.print(
            f"[bold]{st.topic}[/]  groups: {groups}"
            + (" + every group that committed" if pol["all_committed_groups"] else "")
            + (f" (excluding {', '.join(pol['exclude_groups'])})" if pol["exclude_groups"] else "")
            + f"; min age {pol['min_age']}; delete records: {'yes' if pol['delete_records'] else 'no'}; "
            f"orphan grace {pol['orphan_grace']}",
            highlight=False,
        )
        if st.error:
            err_console.print(f"[bold red]error:[/] {st.error}", highlight=False, soft_wrap=True)
            continue
        print_table(
            None,
            [
                "part",
                "log start",
                "watermark",
                "high",
                "evictor at",
                "evictor lag",
                "held",
                "held bytes",
                "evictable",
                "blocking",
            ],
            [
                (
                    p.partition,
                    p.low,
                    p.watermark,
                    p.high,
                    p.checkpoint,
                    p.evictor_lag,
                    f"{p.held_objects}{'+' if p.scan_truncated else ''}",
                    _size(p.held_bytes),
                    p.evictable_objects,
                    "; ".join(p.blocking) or "nothing: up to date",
                )
                for p in st.partitions
            ],
        )
        group_rows = [
            (g.group, p.partition, g.committed, g.lag, "yes" if g.holds_watermark else "")
            for p in st.partitions
            for g in p.groups
        ]
        if group_rows:
            print_table(None, ["group", "part", "committed", "lag", "holds watermark"], group_rows)
        if st.stores:
            print_table(
                None,
                ["store", "objects under the topic", "bytes"],
                [
                    (s.store, s.objects if s.error is None else f"error: {s.error}", _size(s.bytes))
                    for s in st.stores
                ],
            )


# -- the command -------------------------------------------------------------------------------------------


@app.callback(invoke_without_command=True)
def evict(
    ctx: typer.Context,
    once: Annotated[
        bool, typer.Option("--once", help="Run one pass (and an orphan sweep), then exit.")
    ] = False,
    status: Annotated[
        bool, typer.Option("--status", help="Show watermarks, lag, held objects, blockers.")
    ] = False,
    service: Annotated[bool, typer.Option("--service", help="Run as a service (same as `serve`).")] = False,
    topic: Topics = None,
    orphans: Annotated[bool, typer.Option("--orphans/--no-orphans", help="Sweep orphans in --once.")] = True,
    interval: Annotated[str, typer.Option(help="--service: time between passes (e.g. 5s).")] = "5s",
    batch_size: BatchSize = 500,
    group: CheckpointGroup = "freight-evictor",
    scan_limit: Annotated[
        int, typer.Option("--scan-limit", min=1, help="--status: events read per partition at most.")
    ] = 100_000,
    bootstrap: Bootstrap = None,
    command_config: CommandConfig = None,
    registry: RegistryUrl = None,
    registry_ca: RegistryCa = None,
    registry_cert: RegistryCert = None,
    registry_key: RegistryKey = None,
    json_: Json = False,
) -> None:
    """Offset-driven eviction. Use --once, --status or --service, or a subcommand (serve, policy)."""
    if ctx.invoked_subcommand is not None:
        if once or status or service:
            raise ConfigError("--once / --status / --service do not combine with a subcommand")
        return
    if sum((once, status, service)) != 1:
        raise ConfigError(
            "give exactly one of --once, --status or --service (or a subcommand: serve, policy)"
        )
    settings, admin = _connect(
        bootstrap, registry, command_config, (registry_ca, registry_cert, registry_key)
    )
    if once:
        _run_once(settings, admin, topic, group, batch_size, orphans, json_)
    elif status:
        _check_topics(admin, topic)
        with _evictor(settings, admin, group, batch_size) as evictor:
            statuses = evictor.status(topic, scan_limit=scan_limit)
        if json_:
            print_json([s.as_dict() for s in statuses])
        else:
            _print_status(statuses)
    else:
        _serve(settings, admin, topic, interval, "5m", orphans, group, batch_size, json_)


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT set `stop` (the pass in progress finishes its batch and commits)."""

    def handler(signum: int, _frame: FrameType | None) -> None:
        note(f"{signal.Signals(signum).name}: finishing the current batch, then stopping")
        stop.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _serve(
    settings: FreightSettings,
    admin: KafkaAdmin,
    topics: list[str] | None,
    interval: str,
    orphan_interval: str,
    orphans: bool,
    group: str,
    batch_size: int,
    json_: bool,
) -> None:
    from freight.eviction import parse_duration

    every = parse_duration(interval, "--interval")
    if every <= 0:
        raise ConfigError("--interval must be positive, e.g. 5s")
    sweep_every = parse_duration(orphan_interval, "--orphan-interval") if orphans else None
    _check_topics(admin, topics)
    stop = threading.Event()
    totals: dict[str, Any] = {
        "passes": 0,
        "deleted": 0,
        "bytes_deleted": 0,
        "orphans_deleted": 0,
        "errors": 0,
    }

    def on_pass(report: PassReport) -> None:
        totals["passes"] += 1
        totals["deleted"] += report.deleted
        totals["bytes_deleted"] += report.bytes_deleted
        totals["orphans_deleted"] += sum(s.deleted for s in report.sweeps)
        totals["errors"] += len(report.errors)
        lag = sum(p.lag for t in report.topics for p in t.partitions)
        if json_:  # one line per pass (JSON lines), so that a reader can follow the service
            doc = {
                "pass": totals["passes"],
                "deleted": report.deleted,
                "bytes_deleted": report.bytes_deleted,
                "orphans_deleted": sum(s.deleted for s in report.sweeps),
                "evictor_lag": lag,
                "seconds": round(report.seconds, 3),
                "errors": report.errors,
            }
            sys.stdout.write(json.dumps(doc) + "\n")
            sys.stdout.flush()
            return
        if report.deleted or report.sweeps or report.errors:
            console.print(
                f"pass {totals['passes']}: deleted {report.deleted} object(s), {_size(report.bytes_deleted)}"
                + (f", {sum(s.deleted for s in report.sweeps)} orphan(s)" if report.sweeps else "")
                + f" in {report.seconds:.2f}s; evictor lag {lag}",
                highlight=False,
            )
        for line in report.errors:
            err_console.print(f"[bold red]error:[/] {line}", highlight=False, soft_wrap=True)

    with _stop_on_signals(stop), _evictor(settings, admin, group, batch_size, stop) as evictor:
        if topics:
            evictor.selected_policies(topics)  # a topic without a policy is an error now, not every pass
        if not json_:
            console.print(
                f"evictor serving {', '.join(topics) if topics else 'every topic with a policy'} every "
                f"{interval} (group {group}); Ctrl-C or SIGTERM stops it",
                highlight=False,
            )
        evictor.serve(every, topics=topics, orphan_interval_s=sweep_every, on_pass=on_pass)
    if json_:
        sys.stdout.write(json.dumps({"stopped": True, **totals}) + "\n")
        sys.stdout.flush()
    else:
        console.print(
            f"stopped after {totals['passes']} pass(es): {totals['deleted']} object(s), "
            f"{_size(totals['bytes_deleted'])} deleted, {totals['orphans_deleted']} orphan(s)",
            highlight=False,
        )


@app.command("serve")
def serve_cmd(
    topic: Topics = None,
    interval: Annotated[str, typer.Option(help="Time between passes: 500ms, 5s, 1m.")] = "5s",
    orphan_interval: Annotated[str, typer.Option(help="Time between orphan sweeps.")] = "5m",
    orphans: Annotated[bool, typer.Option("--orphans/--no-orphans", help="Sweep orphans.")] = True,
    batch_size: BatchSize = 500,
    group: CheckpointGroup = "freight-evictor",
    bootstrap: Bootstrap = None,
    command_config: CommandConfig = None,
    registry: RegistryUrl = None,
    registry_ca: RegistryCa = None,
    registry_cert: RegistryCert = None,
    registry_key: RegistryKey = None,
    json_: Json = False,
) -> None:
    """Run the evictor as a long-lived service (SIGTERM or Ctrl-C finish the batch and stop)."""
    _serve(
        *_connect(bootstrap, registry, command_config, (registry_ca, registry_cert, registry_key)),
        topic,
        interval,
        orphan_interval,
        orphans,
        group,
        batch_size,
        json_,
    )


# -- policies ----------------------------------------------------------------------------------------------


def _print_policies(policies: list[RetentionPolicy], title: str) -> None:
    print_table(
        title,
        [
            "topic",
            "groups",
            "all committed",
            "excluded",
            "min age",
            "delete records",
            "orphan grace",
            "updated",
        ],
        [
            (
                d["topic"],
                ", ".join(d["groups"]) or None,
                "yes" if d["all_committed_groups"] else "no",
                ", ".join(d["exclude_groups"]) or None,
                d["min_age"],
                "yes" if d["delete_records"] else "no",
                d["orphan_grace"],
                d["updated_at"],
            )
            for d in (p.describe() for p in policies)
        ],
    )


@policy_app.command("set")
def policy_set(
    topic: Annotated[str, typer.Argument(help="The stream topic.")],
    group: Annotated[
        list[str] | None, typer.Option("--group", "-g", help="A retaining group (repeatable).")
    ] = None,
    all_committed: Annotated[
        bool,
        typer.Option("--all-committed/--named-only", help="Also retain for every group that committed."),
    ] = True,
    exclude_group: Annotated[
        list[str] | None, typer.Option("--exclude-group", help="Never retain for this group (repeatable).")
    ] = None,
    min_age: Annotated[str, typer.Option(help="Minimum age before eviction: 0s, 10m, 1h, 7d.")] = "0s",
    delete_records: Annotated[
        bool, typer.Option("--delete-records/--keep-records", help="Also delete Kafka records evicted past.")
    ] = False,
    orphan_grace: Annotated[str, typer.Option(help="Age after which unreferenced objects go.")] = "15m",
    orphan_store: Annotated[
        list[str] | None, typer.Option("--orphan-store", help="Also sweep this store for orphans.")
    ] = None,
    allow_unknown_group: Annotated[
        bool, typer.Option(help="Accept groups the cluster does not know yet (they hold everything).")
    ] = False,
    bootstrap: Bootstrap = None,
    command_config: CommandConfig = None,
    registry: RegistryUrl = None,
    registry_ca: RegistryCa = None,
    registry_cert: RegistryCert = None,
    registry_key: RegistryKey = None,
    json_: Json = False,
) -> None:
    """Set (replace) the retention policy of a topic."""
    from freight.eviction import PolicyStore, RetentionPolicy, parse_duration
    from freight.eviction.policy import PRODUCER_DELIVERY_TIMEOUT_S

    grace = parse_duration(orphan_grace, "--orphan-grace")
    policy = RetentionPolicy.build(
        topic=topic,
        groups=tuple(group or ()),
        all_committed_groups=all_committed,
        exclude_groups=tuple(exclude_group or ()),
        min_age_s=parse_duration(min_age, "--min-age"),
        delete_records=delete_records,
        orphan_grace_s=grace,
        orphan_stores=tuple(orphan_store or ()),
    )
    settings, admin = _connect(
        bootstrap, registry, command_config, (registry_ca, registry_cert, registry_key)
    )
    if not admin.topic_exists(topic):
        raise ConfigError(
            f"topic {topic!r} does not exist on {settings.kafka_bootstrap}; create it first "
            f"(`freight topics create {topic}`, or let a producer create it)"
        )
    unknown = sorted(set(group or ()) - set(admin.list_groups()))
    if unknown and not allow_unknown_group:
        raise ConfigError(
            f"unknown consumer group(s) {', '.join(unknown)} (`freight groups list` shows the known ones); a "
            "named group that never committed holds every object of the topic. If it will start later, pass "
            "--allow-unknown-group"
        )
    if grace < PRODUCER_DELIVERY_TIMEOUT_S:
        note(
            f"orphan grace {orphan_grace} is below the producers' delivery timeout "
            f"({PRODUCER_DELIVERY_TIMEOUT_S:g}s): an object whose event is still being delivered could be "
            "taken for an orphan. Keep it above unless producers use a shorter delivery.timeout.ms"
        )
    with PolicyStore(settings, admin=admin) as store:
        store.put(policy)
    if json_:
        print_json(policy.describe())
    else:
        _print_policies([policy], "Retention policy set")


@policy_app.command("get")
def policy_get(
    topic: Annotated[str, typer.Argument(help="The stream topic.")],
    bootstrap: Bootstrap = None,
    command_config: CommandConfig = None,
    registry: RegistryUrl = None,
    registry_ca: RegistryCa = None,
    registry_cert: RegistryCert = None,
    registry_key: RegistryKey = None,
    json_: Json = False,
) -> None:
    """Show the retention policy of a topic."""
    from freight.eviction import PolicyStore

    settings, admin = _connect(
        bootstrap, registry, command_config, (registry_ca, registry_cert, registry_key)
    )
    with PolicyStore(settings, admin=admin) as store:
        policy = store.require(topic)
    if json_:
        print_json(policy.describe())
    else:
        print_kv(f"Retention policy of {topic}", policy.describe())


@policy_app.command("list")
def policy_list(
    bootstrap: Bootstrap = None,
    command_config: CommandConfig = None,
    registry: RegistryUrl = None,
    registry_ca: RegistryCa = None,
    registry_cert: RegistryCert = None,
    registry_key: RegistryKey = None,
    json_: Json = False,
) -> None:
    """Every retention policy."""
    from freight.eviction import PolicyStore

    settings, admin = _connect(
        bootstrap, registry, command_config, (registry_ca, registry_cert, registry_key)
    )
    with PolicyStore(settings, admin=admin) as store:
        policies = [p for _, p in sorted(store.refresh().items())]
    if json_:
        print_json([p.describe() for p in policies])
    else:
        _print_policies(policies, "Retention policies")


@policy_app.command("delete")
def policy_delete(
    topic: Annotated[str, typer.Argument(help="The stream topic.")],
    bootstrap: Bootstrap = None,
    command_config: CommandConfig = None,
    registry: RegistryUrl = None,
    registry_ca: RegistryCa = None,
    registry_cert: RegistryCert = None,
    registry_key: RegistryKey = None,
    json_: Json = False,
) -> None:
    """Remove the retention policy of a topic (the evictor then leaves the topic alone)."""
    from freight.eviction import PolicyStore

    settings, admin = _connect(
        bootstrap, registry, command_config, (registry_ca, registry_cert, registry_key)
    )
    with PolicyStore(settings, admin=admin) as store:
        if not store.delete(topic):
            raise ConfigError(f"topic {topic!r} has no retention policy (`freight evict policy list`)")
    if json_:
        print_json({"topic": topic, "deleted": True})
    else:
        console.print(f"retention policy of [bold]{topic}[/] deleted; the evictor leaves the topic alone now")
