"""Secrets never leak (issue 13 item 6): passwords in URLs, in properties files and in settings are masked in
every message, status output and pickle, and the registry never takes its password on the command line.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from freight.config import FreightSettings, load_settings, read_properties_file
from freight.errors import ConfigError, FreightError
from freight.redact import redact_properties, redact_text, redact_url
from freight.stream.proxy import Proxy, ProxyRef

SECRET = "S3CRET-pw-1234"


def test_redaction_helpers_mask_every_password_form() -> None:
    assert redact_url(f"http://alice:{SECRET}@registry:8081/x") == "http://alice:***@registry:8081/x"
    assert redact_url("http://registry:8081") == "http://registry:8081"
    text = f"failed at https://bob:{SECRET}@s3.local:9000 and at http://c:{SECRET}@h"
    assert SECRET not in redact_text(text) and "bob:***@s3.local" in redact_text(text)
    props = redact_properties(
        {"sasl.password": SECRET, "sasl.jaas.config": f'password="{SECRET}"', "acks": "1"}
    )
    assert SECRET not in json.dumps(props) and props["acks"] == "1"


def test_a_java_properties_file_with_a_space_separator_is_read_and_never_echoed(tmp_path: Path) -> None:
    path = tmp_path / "client.properties"
    path.write_text(
        f"# Kafka's own syntax\nsasl.password {SECRET}\nsasl.jaas.config=org.apache.kafka.common.security."
        'plain.PlainLoginModule required \\\n    username="u" \\\n    password="p";\n'
        "security.protocol : SASL_SSL\n"
    )
    props = read_properties_file(path)
    assert props["sasl.password"] == SECRET
    assert props["security.protocol"] == "SASL_SSL"
    assert props["sasl.jaas.config"].endswith('username="u" password="p";')


def test_malformed_kafka_properties_are_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FREIGHT_KAFKA_PROPERTIES", f'{{"sasl.password": "{SECRET}",')
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "FREIGHT_KAFKA_PROPERTIES" in str(caught.value) and SECRET not in str(caught.value)
    monkeypatch.setenv("FREIGHT_KAFKA_PROPERTIES", json.dumps(["sasl.password", SECRET]))
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert SECRET not in str(caught.value)


def test_a_pickled_proxy_carries_no_registry_url_and_no_credentials() -> None:
    ref = ProxyRef(
        topic="t", partition=0, offset=1, stream="s", sequence=0, serializer="bytes", store="x", key="k"
    )
    ref.bootstrap = "127.0.0.1:9092"
    blob = pickle.dumps(Proxy(ref))
    assert not hasattr(ref, "registry_url")
    assert b"http" not in blob and len(blob) < 1024


def test_status_json_masks_a_password_in_the_registry_url() -> None:
    env = {
        "FREIGHT_SCHEMA_REGISTRY_URL": f"http://alice:{SECRET}@127.0.0.1:1",
        "FREIGHT_KAFKA_BOOTSTRAP": "127.0.0.1:1",
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(
        [sys.executable, "-m", "freight.cli", "status", "--json", "--timeout", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert SECRET not in done.stdout + done.stderr
    assert "alice:***@127.0.0.1:1" in done.stdout, done.stdout + done.stderr


def test_an_s3_endpoint_password_is_masked_in_store_errors() -> None:
    pytest.importorskip("s3fs")
    from freight.connectors.s3 import S3Connector

    with pytest.raises(FreightError) as caught:
        S3Connector(
            "bucket-x", endpoint_url=f"http://bob:{SECRET}@127.0.0.1:1", connect_timeout=0.5, retries=1,
            request_timeout=3,
        )  # fmt: skip
    assert SECRET not in str(caught.value) and "bob:***@127.0.0.1:1" in str(caught.value)


def test_registry_serve_refuses_a_password_on_the_command_line(stream_settings: FreightSettings) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "freight.cli", "registry", "serve", "--auth", f"alice:{SECRET}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"FREIGHT_KAFKA_BOOTSTRAP": stream_settings.kafka_bootstrap, "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 2, done.stderr
    assert "--auth-file" in done.stderr + done.stdout
    assert SECRET not in done.stderr + done.stdout
