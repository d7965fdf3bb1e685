"""`freight dev up | down | status`: start, stop and report the local services from one state directory.

Each service (Kafka broker, schema registry, S3 endpoint) implements `DevService`; `up` starts the missing
ones in dependency order and records them in the state file, `down` stops them in reverse order by recorded
pid (gracefully, then forcibly), `status` asks each one for its health. `up` is idempotent: a healthy
service is left alone, a stale record (its process is gone) is replaced.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, Field

from freight.dev import procs
from freight.dev.kafka_broker import BrokerOptions, KafkaBroker, KafkaCluster
from freight.dev.state import ServiceRecord, load_state, locked, save_state
from freight.errors import DevServiceError, MissingToolError


class DevService(Protocol):
    """A local service that `freight dev` can start and health-check."""

    name: str

    def start(self) -> ServiceRecord: ...

    @staticmethod
    def health(record: ServiceRecord) -> tuple[bool, str]: ...


class DevOptions(BaseModel):
    """Options of `freight dev up`."""

    state_dir: Path = Path(".freight")
    services: list[str] | None = Field(None, description="Services to start; default all known ones.")
    kafka: BrokerOptions = Field(default_factory=BrokerOptions)
    brokers: int = Field(1, ge=1, le=5, description="Kafka nodes: 1, or a replicated KRaft cluster (3).")
    registry_port: int | None = None
    s3_port: int | None = None


ServiceFactory = Callable[[DevOptions, dict[str, ServiceRecord]], DevService]
# name -> factory, in start order; a factory sees the records of the services started before it.
SERVICES: dict[str, ServiceFactory] = {
    "kafka": lambda opts, _started: (
        KafkaBroker(opts.state_dir, opts.kafka)
        if opts.brokers == 1
        else KafkaCluster(opts.state_dir, opts.kafka, opts.brokers)
    ),
}
HEALTH: dict[str, Callable[[ServiceRecord], tuple[bool, str]]] = {"kafka": KafkaBroker.health}


def register_service(
    name: str, factory: ServiceFactory, health: Callable[[ServiceRecord], tuple[bool, str]]
) -> None:
    """Add a service to `freight dev` (start order is registration order)."""
    SERVICES[name] = factory
    HEALTH[name] = health


def _load_optional_services() -> None:
    """Import the modules that register the registry and S3 services (they need optional packages)."""
    import importlib

    for module in ("freight.dev.registry_service", "freight.dev.s3_service"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name and module.startswith(exc.name):
                continue  # that service is not part of this installation
            raise


@dataclass
class ServiceStatus:
    """The outcome of up/status for one service."""

    name: str
    state: str  # started | running | skipped | stopped | stale | unhealthy | terminated | killed | gone
    detail: str = ""
    record: ServiceRecord | None = None
    env: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"name": self.name, "state": self.state, "detail": self.detail}
        if self.record is not None:
            out.update(
                pid=self.record.pid,
                address=self.record.address,
                ports=self.record.ports,
                data_dir=self.record.data_dir,
                log_file=self.record.log_file,
            )
        return out


def _selected(names: list[str] | None) -> list[str]:
    _load_optional_services()
    if not names:
        return list(SERVICES)
    unknown = [n for n in names if n not in SERVICES]
    if unknown:
        raise DevServiceError(f"unknown service(s) {unknown}; known: {', '.join(SERVICES)}")
    return [n for n in SERVICES if n in names]


def up(options: DevOptions) -> list[ServiceStatus]:
    """Start every selected service that is not already running; return what happened to each."""
    names = _selected(options.services)
    results: list[ServiceStatus] = []
    with locked(options.state_dir):
        state = load_state(options.state_dir)
        for name in names:
            record = state.services.get(name)
            note = ""
            if record is not None:
                healthy, detail = HEALTH[name](record)
                if healthy:
                    results.append(ServiceStatus(name, "running", detail, record, record.env))
                    continue
                if procs.pid_matches(record.pid, record.marker):
                    raise DevServiceError(
                        f"{name} (pid {record.pid}) is running but unhealthy: {detail}. "
                        f"Run `freight dev down` and then `freight dev up`."
                    )
                note = f"replaced a stale record (pid {record.pid} was not running). "
                del state.services[name]
                save_state(options.state_dir, state)
            service = SERVICES[name](options, dict(state.services))
            try:
                record = service.start()
            except MissingToolError as exc:
                if options.services:  # asked for by name: its absence is an error
                    raise
                # A core install (no dev extra) still gets Kafka and the registry; say what is missing.
                results.append(ServiceStatus(name, "skipped", str(exc)))
                continue
            state.services[name] = record
            state.services.update(getattr(service, "extra_records", {}))  # a cluster's other nodes
            save_state(options.state_dir, state)
            results.append(ServiceStatus(name, "started", f"{note}pid {record.pid}", record, record.env))
    return results


def down(state_dir: Path, *, purge: bool = False, grace_s: float = 20.0) -> list[ServiceStatus]:
    """Stop every recorded service (reverse start order); with `purge`, delete their data too."""
    _load_optional_services()
    results: list[ServiceStatus] = []
    with locked(state_dir):
        state = load_state(state_dir)
        order = [n for n in SERVICES if n in state.services] + [
            n for n in state.services if n not in SERVICES
        ]
        for name in reversed(order):
            record = state.services[name]
            if procs.pid_matches(record.pid, record.marker):
                outcome = procs.stop_process(record.pid, grace_s=grace_s)
            else:
                outcome = "gone"
            results.append(ServiceStatus(name, outcome, f"pid {record.pid}", record))
            del state.services[name]
            save_state(state_dir, state)
            if purge and record.data_dir:
                shutil.rmtree(record.data_dir, ignore_errors=True)
    return results


def status(state_dir: Path) -> list[ServiceStatus]:
    """Health of every recorded service."""
    _load_optional_services()
    state = load_state(state_dir)
    results: list[ServiceStatus] = []
    for name, record in state.services.items():
        health = HEALTH.get(name)
        if not procs.pid_matches(record.pid, record.marker):
            results.append(ServiceStatus(name, "stale", f"pid {record.pid} is not running", record))
        elif health is None:
            results.append(ServiceStatus(name, "running", "no health check known", record, record.env))
        else:
            healthy, detail = health(record)
            results.append(
                ServiceStatus(name, "running" if healthy else "unhealthy", detail, record, record.env)
            )
    return results
