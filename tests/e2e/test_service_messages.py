"""A service that is not running: the CLI exits 3 and says which command starts it (no traceback)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from freight.dev.procs import free_port


def freight(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "freight.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **(env or {})},
    )


def assert_unavailable(done: subprocess.CompletedProcess[str], *commands: str) -> None:
    assert done.returncode == 3, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr
    for command in commands:
        assert command in done.stderr, done.stderr


def test_broker_commands_say_freight_dev_up() -> None:
    done = freight("topics", "list", "--bootstrap", f"127.0.0.1:{free_port()}")
    assert_unavailable(done, "freight dev up", "FREIGHT_KAFKA_BOOTSTRAP")


def test_registry_commands_say_freight_dev_up_or_registry_serve() -> None:
    done = freight("schemas", "list", "--url", f"http://127.0.0.1:{free_port()}")
    assert_unavailable(done, "freight dev up", "freight registry serve")


def test_produce_without_a_registry_exits_3(kafka_bootstrap: str, tmp_path: Path) -> None:
    source = tmp_path / "a.txt"
    source.write_text("hello")
    done = freight(
        "produce", f"no-registry-{free_port()}", str(source), "--store-dir", str(tmp_path / "store"),
        "--bootstrap", kafka_bootstrap, "--registry", f"http://127.0.0.1:{free_port()}",
    )  # fmt: skip
    assert_unavailable(done, "freight dev up")


def test_s3_store_without_an_endpoint_says_freight_dev_up() -> None:
    dummy = {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y", "AWS_DEFAULT_REGION": "us-east-1"}
    done = freight(
        "stores", "ls", "s3", "-o", "bucket=freight-nowhere", "-o", f"endpoint_url=http://127.0.0.1:{free_port()}",
        "-o", "retries=1", "-o", "connect_timeout=1",
        env=dummy,
    )  # fmt: skip
    assert_unavailable(done, "freight dev up")


def test_status_names_the_command_for_every_service_that_is_down() -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    done = freight(
        "status", "--json", "--timeout", "1", "--bootstrap", f"127.0.0.1:{free_port()}",
        "--registry", f"http://127.0.0.1:{free_port()}",
        env={"FREIGHT_S3_ENDPOINT_URL": endpoint},
    )  # fmt: skip
    assert_unavailable(done, "freight dev up", "freight registry serve")
    doc = json.loads(done.stdout)
    assert [doc[s]["ok"] for s in ("broker", "registry", "s3")] == [False, False, False]
    assert doc["s3"]["address"] == endpoint


def test_stores_show_prints_json(tmp_path: Path) -> None:
    from freight.connectors.file import FileConnector
    from freight.stores import Store

    ref = Store("cli", FileConnector(tmp_path)).put(bytes(100))
    done = freight("stores", "show", "file", ref.key, "-o", f"root={tmp_path}", "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["payload_bytes"] == 100 and doc["verified"] is True and doc["serializer"] == "bytes"


def test_version_and_configuration_errors_end_without_a_traceback(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        full = dict(os.environ, **env)
        cmd = [sys.executable, "-m", "freight.cli", *args]
        return subprocess.run(cmd, capture_output=True, text=True, env=full, timeout=60, check=False)

    version = run("--version")
    assert version.returncode == 0 and version.stdout.startswith("freight ")
    no_scheme = run("schemas", "list", FREIGHT_SCHEMA_REGISTRY_URL="127.0.0.1:8081")
    assert no_scheme.returncode == 2 and "must start with http:// or https://" in no_scheme.stderr
    props = tmp_path / "client.properties"
    props.write_text("sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required;\n")
    jaas = run("topics", "list", FREIGHT_KAFKA_CONFIG_FILE=str(props), FREIGHT_KAFKA_BOOTSTRAP="127.0.0.1:1")
    assert jaas.returncode == 2 and "sasl.username / sasl.password" in jaas.stderr
    for done in (no_scheme, jaas):
        assert "Traceback" not in done.stderr
