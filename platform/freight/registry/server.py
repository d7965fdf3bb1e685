"""Run one registry instance: replay the log, then serve HTTP with uvicorn until SIGTERM/SIGINT.

`serve` blocks (the CLI and `freight dev up` use it); `RegistryServer` runs an instance in a background
thread of the current process, for tests and embedding.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time

import uvicorn

from freight.config import FreightSettings
from freight.errors import PortInUseError, ServiceUnavailableError
from freight.net import port_in_use
from freight.registry.app import gated
from freight.registry.errors import StoreUnavailableError
from freight.registry.guard import default_max_connections, guarded_protocol
from freight.registry.options import RegistryOptions
from freight.registry.service import RegistryService

log = logging.getLogger(__name__)


def _uvicorn_config(service: RegistryService) -> uvicorn.Config:
    opts = service.options
    protocol = guarded_protocol(opts.read_timeout_s, opts.max_connections or default_max_connections())
    return uvicorn.Config(
        gated(service),
        http=protocol,
        host=service.options.host,
        port=service.options.port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=5,
        # The registry answers small JSON documents; keep-alive lets clients reuse connections.
        timeout_keep_alive=30,
    )


def _start_service(options: RegistryOptions, settings: FreightSettings) -> RegistryService:
    if options.port and port_in_use(options.port, options.host):
        raise PortInUseError(
            f"port {options.port} on {options.host} is already in use; choose another with --port, "
            "or stop the process that holds it"
        )
    service = RegistryService(options, settings)
    try:
        service.start()
    except StoreUnavailableError as exc:
        service.stop()
        raise ServiceUnavailableError(
            f"the schema registry cannot use Kafka at {settings.kafka_bootstrap}: {exc}. Start the broker "
            "(`freight dev up`) or point --bootstrap / FREIGHT_KAFKA_BOOTSTRAP at a running cluster."
        ) from exc
    except Exception:
        service.stop()
        raise
    return service


def serve(options: RegistryOptions, settings: FreightSettings) -> None:
    """Replay the log and serve until interrupted."""
    service = _start_service(options, settings)
    server = uvicorn.Server(_uvicorn_config(service))
    log.info("schema registry %s serving %s", service.instance, options.url)
    try:
        server.run()
    finally:
        service.stop()
    if not server.started:
        raise PortInUseError(f"the registry could not listen on {options.host}:{options.port}")


class RegistryServer:
    """A registry instance served from a background thread (tests, embedding)."""

    def __init__(self, options: RegistryOptions, settings: FreightSettings) -> None:
        self.options = options
        self.settings = settings
        self.service: RegistryService | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return self.options.url

    def start(self, timeout: float = 30.0) -> RegistryServer:
        self.service = _start_service(self.options, self.settings)
        self._server = uvicorn.Server(_uvicorn_config(self.service))
        self._thread = threading.Thread(target=self._run, name=f"registry-{self.options.port}", daemon=True)
        self._thread.start()
        end = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > end:
                self.stop()
                raise PortInUseError(f"the registry did not start listening on {self.options.url}")
            time.sleep(0.02)
        return self

    def _run(self) -> None:
        assert self._server is not None
        asyncio.run(self._server.serve())

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=15)
        if self.service is not None:
            with contextlib.suppress(Exception):
                self.service.stop()

    def __enter__(self) -> RegistryServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
