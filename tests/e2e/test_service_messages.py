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
