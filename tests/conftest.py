"""Session-wide fixtures: one real Kafka broker (and, where asked for, the registry and S3 endpoint).

Broker selection, in order: FREIGHT_KAFKA_BOOTSTRAP when set; a testcontainers Kafka when a Docker engine
answers; otherwise the local broker from `freight.dev`, started once per session on free ports and stopped at
the end. Topics are unique per test (`topic` / `make_topic`). Tests are marked by directory: unit,
integration, e2e, faults.
"""

from __future__ import annotations

import os
import re
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from freight.config import FreightSettings
from freight.dev import BrokerOptions, DevOptions, down, up
from freight.kafka import KafkaAdmin

# Fixture modules for the other services (registry, S3, ...): each file in tests/fixtures is a plugin.
pytest_plugins = sorted(
    f"tests.fixtures.{p.stem}"
    for p in (Path(__file__).parent / "fixtures").glob("*.py")
    if p.stem != "__init__"
)

# Test stores live in pytest's temporary directories (and /dev/shm): allow them as store roots for every
# process a test starts, as a deployment would list its own store directories (docs/security.md). Tests of
# the allow-list itself pass explicit settings.
os.environ.setdefault("FREIGHT_ALLOWED_STORE_ROOTS", ",".join([tempfile.gettempdir(), "/dev/shm"]))

_DIR_MARKERS = {
    "unit": "unit",
    "integration": "integration",
    "compat": "integration",  # tests/compat: the seed guides on real services
    "e2e": "e2e",
    "faults": "faults",
    "conformance": "conformance",  # tests/conformance: other projects' suites, `make test-conformance`
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).parts
        for directory, marker in _DIR_MARKERS.items():
            if directory in parts:
                item.add_marker(getattr(pytest.mark, marker))


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()
    except Exception:
        return False
    return True


@pytest.fixture(scope="session")
def dev_state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The state directory of the services this test session starts itself."""
    return tmp_path_factory.mktemp("freight-dev")


@pytest.fixture(scope="session")
def kafka_bootstrap(dev_state_dir: Path) -> Iterator[str]:
    """Bootstrap address of a real Kafka broker for the whole session."""
    env = os.environ.get("FREIGHT_KAFKA_BOOTSTRAP")
    if env:
        yield env
        return
    if os.environ.get("FREIGHT_TEST_DOCKER", "1") == "1" and _docker_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as container:
            yield container.get_bootstrap_server()
        return
    opts = DevOptions(
        state_dir=dev_state_dir,
        services=["kafka"],
        kafka=BrokerOptions(prefer_default_ports=False),  # free ports, chosen again if another process wins
    )
    try:
        (result,) = up(opts)
        assert result.record is not None
        yield result.record.address
    finally:
        down(dev_state_dir)


@pytest.fixture(scope="session")
def settings(kafka_bootstrap: str) -> FreightSettings:
    """Settings pointing at the session broker (registry / S3 fixtures refine them)."""
    return FreightSettings(kafka_bootstrap=kafka_bootstrap)


@pytest.fixture(scope="session")
def admin(settings: FreightSettings) -> KafkaAdmin:
    return KafkaAdmin(settings)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text)[:80].strip("-")


@pytest.fixture
def make_topic(admin: KafkaAdmin, request: pytest.FixtureRequest) -> Callable[..., str]:
    """Create a uniquely named topic for this test: make_topic(partitions=1, config=None, suffix='')."""

    def _make(partitions: int = 1, config: dict[str, str] | None = None, suffix: str = "") -> str:
        name = f"t-{_slug(request.node.name)}{suffix}-{uuid.uuid4().hex[:8]}"
        admin.create_topic(name, partitions, config=config)
        return name

    return _make


@pytest.fixture
def topic(make_topic: Callable[..., str]) -> str:
    """A fresh single-partition topic."""
    return make_topic()


@pytest.fixture
def group_id(request: pytest.FixtureRequest) -> str:
    """A unique consumer group id for this test."""
    return f"g-{_slug(request.node.name)}-{uuid.uuid4().hex[:8]}"
