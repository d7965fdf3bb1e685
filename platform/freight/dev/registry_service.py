"""The schema registry as a `freight dev` service: started after Kafka, on port 8081 or a free one.

The process is `python -m freight.cli registry serve` against the broker `freight dev up` just started (or
FREIGHT_KAFKA_BOOTSTRAP); it is ready once `GET /freight/health` answers. Its record exports
FREIGHT_SCHEMA_REGISTRY_URL. The registry keeps no files: its state is the `_schemas` topic.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import httpx

from freight.config import load_settings
from freight.dev import procs
from freight.dev.services import DevOptions, register_service
from freight.dev.state import ServiceRecord
from freight.errors import DevServiceError, PortInUseError

DEFAULT_PORT = 8081
START_TIMEOUT_S = 60.0


class RegistryDevService:
    """Starts `freight registry serve` detached and waits until it answers."""

    name = "registry"

    def __init__(self, state_dir: Path, bootstrap: str, port: int | None) -> None:
        self.state_dir = state_dir.resolve()
        self.bootstrap = bootstrap
        self.port = port

    def start(self) -> ServiceRecord:
        """Start the registry and wait until it answers; a port it chose itself is chosen again if another
        process takes it before the registry binds it (3 tries)."""
        if self.port is not None and procs.port_in_use(self.port):
            raise PortInUseError(
                f"registry port {self.port} is already in use by another process; choose another with "
                "`freight dev up --registry-port N`, or omit it to let Freight pick a free one."
            )
        for _attempt in range(1 if self.port is not None else 3):
            record = self._start_once(procs.choose_port(self.port, DEFAULT_PORT))
            if record is not None:
                return record
        raise DevServiceError("the schema registry lost the race for a free port three times; try again")

    def _start_once(self, port: int) -> ServiceRecord | None:
        url = f"http://127.0.0.1:{port}"
        log_file = self.state_dir / "registry" / "registry.log"
        log_file.parent.mkdir(parents=True, exist_ok=True)
        log_file.write_bytes(b"")  # this start's log only, so an old bind error is not mistaken for a new one
        marker = f"registry serve --bootstrap {self.bootstrap} --port {port}"
        cmd = [sys.executable, "-m", "freight.cli", *marker.split(), "--host", "127.0.0.1"]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        proc = procs.spawn(cmd, log_file=log_file, env=env)
        record = ServiceRecord(
            name=self.name,
            pid=proc.pid,
            marker=marker,
            address=url,
            ports={"http": port},
            data_dir=None,
            log_file=str(log_file),
            env={"FREIGHT_SCHEMA_REGISTRY_URL": url},
        )
        serving = procs.wait_serving(
            proc,
            port,
            what="schema registry",
            log_file=log_file,
            timeout_s=START_TIMEOUT_S,
            probe=lambda: (_answers(url), f"no answer from {url}/freight/health"),
            chosen=self.port is None,
        )
        return record if serving else None

    @staticmethod
    def health(record: ServiceRecord) -> tuple[bool, str]:
        if not procs.pid_matches(record.pid, record.marker):
            return False, f"process {record.pid} is not running"
        if not _answers(record.address):
            return False, f"no answer from {record.address}/freight/health"
        return True, f"answering on {record.address}"


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/freight/health", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def _factory(opts: DevOptions, started: dict[str, ServiceRecord]) -> RegistryDevService:
    kafka = started.get("kafka")
    bootstrap = kafka.address if kafka is not None else load_settings().kafka_bootstrap
    return RegistryDevService(opts.state_dir, bootstrap, opts.registry_port)


register_service("registry", _factory, RegistryDevService.health)
