"""Services for benchmarks: the configured cluster if it answers, else local ones started (and stopped)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from freight.config import FreightSettings
from freight.dev import DevOptions, down, up
from freight.dev.procs import free_port
from freight.errors import BrokerUnavailableError
from freight.kafka import KafkaAdmin


@contextmanager
def bench_services(settings: FreightSettings) -> Iterator[FreightSettings]:
    """Settings of a running broker and registry: the configured ones, or fresh local ones."""
    try:
        KafkaAdmin(settings, timeout=3, quiet=True).ping(3)
        yield settings
        return
    except BrokerUnavailableError:
        pass
    with tempfile.TemporaryDirectory(prefix="freight-bench-services-") as tmp:
        opts = DevOptions(state_dir=Path(tmp), services=["kafka", "registry"], registry_port=free_port())
        results = up(opts)
        env = {k: v for r in results for k, v in r.env.items()}
        try:
            yield FreightSettings(
                kafka_bootstrap=env["FREIGHT_KAFKA_BOOTSTRAP"],
                schema_registry_url=env.get("FREIGHT_SCHEMA_REGISTRY_URL", settings.schema_registry_url),
            )
        finally:
            down(Path(tmp))
