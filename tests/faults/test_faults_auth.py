"""Connection failures told apart (issue 13 item 9): a wrong SASL password says authentication failed, a name
that does not resolve says so, and `freight dev up` is suggested only for a broker on this machine.

The SASL case runs against a second real broker from the same jars with a SASL_PLAINTEXT listener (PLAIN
mechanism, users defined in its JAAS configuration).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from freight.config import FreightSettings
from freight.dev import BrokerOptions, DevOptions, down, up
from freight.dev.procs import free_port
from freight.errors import BrokerUnavailableError
from freight.kafka import KafkaAdmin
from freight.kafka.errors import BrokerAuthenticationError

pytestmark = pytest.mark.timeout(180)

_JAAS = (
    "org.apache.kafka.common.security.plain.PlainLoginModule required "
    'username="admin" password="admin-pw" user_admin="admin-pw" user_alice="alice-pw";'
)


@pytest.fixture(scope="module")
def sasl_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A broker with a PLAINTEXT listener (for readiness) and a SASL_PLAINTEXT one (returned)."""
    state = tmp_path_factory.mktemp("sasl-broker")
    broker, controller, sasl = free_port(), free_port(), free_port()
    overrides = {
        "listeners": f"PLAINTEXT://127.0.0.1:{broker},CONTROLLER://127.0.0.1:{controller},"
        f"SASL_PLAINTEXT://127.0.0.1:{sasl}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{broker},SASL_PLAINTEXT://127.0.0.1:{sasl}",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,"
        "SASL_PLAINTEXT:SASL_PLAINTEXT",
        "sasl.enabled.mechanisms": "PLAIN",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": _JAAS,
    }
    opts = DevOptions(
        state_dir=state,
        services=["kafka"],
        kafka=BrokerOptions(port=broker, controller_port=controller, overrides=overrides),
    )
    try:
        up(opts)
        yield f"127.0.0.1:{sasl}"
    finally:
        down(state)


def _sasl(bootstrap: str, password: str) -> FreightSettings:
    props = {
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "PLAIN",
        "sasl.username": "alice",
        "sasl.password": password,
    }
    return FreightSettings(kafka_bootstrap=bootstrap, kafka_properties=props)


def test_the_right_password_works_and_a_wrong_one_says_authentication_failed(sasl_bootstrap: str) -> None:
    assert KafkaAdmin(_sasl(sasl_bootstrap, "alice-pw"), timeout=10).ping() >= 1
    with pytest.raises(BrokerAuthenticationError) as caught:
        KafkaAdmin(_sasl(sasl_bootstrap, "wrong-pw"), timeout=5, quiet=True).ping(5)
    text = str(caught.value)
    assert "refused authentication" in text and "sasl.password" in text
    assert "freight dev up" not in text and "wrong-pw" not in text


def test_the_cli_says_authentication_failed(sasl_bootstrap: str, tmp_path: Path) -> None:
    config = tmp_path / "client.properties"
    config.write_text(
        "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\nsasl.username=alice\n"
        "sasl.password wrong-pw\n"
    )
    env = {
        "FREIGHT_KAFKA_BOOTSTRAP": sasl_bootstrap,
        "FREIGHT_KAFKA_CONFIG_FILE": str(config),
        "PATH": "/usr/bin",
    }
    done = subprocess.run(
        [sys.executable, "-m", "freight.cli", "topics", "list", "--json"],
        capture_output=True, text=True, timeout=120, check=False, env=env,
    )  # fmt: skip
    assert done.returncode == 3, done.stdout + done.stderr
    assert "refused authentication" in done.stderr and "wrong-pw" not in done.stdout + done.stderr
    assert "freight dev up" not in done.stderr


def test_an_unresolvable_host_and_a_remote_cluster_get_their_own_advice() -> None:
    with pytest.raises(BrokerUnavailableError) as caught:
        KafkaAdmin(FreightSettings(kafka_bootstrap="no-such-host.invalid:9092"), timeout=3, quiet=True).ping(
            3
        )
    assert "does not resolve" in str(caught.value) and "freight dev up" not in str(caught.value)
    with pytest.raises(BrokerUnavailableError) as caught:
        KafkaAdmin(FreightSettings(kafka_bootstrap="127.0.0.1:1"), timeout=2, quiet=True).ping(2)
    assert "freight dev up" in str(caught.value)
    assert json.dumps(str(caught.value))
