"""Settings precedence (argument > environment > default) and client property pass-through."""

from __future__ import annotations

from pathlib import Path

import pytest

from freight.config import load_settings, read_properties_file
from freight.errors import ConfigError
from freight.kafka import consumer_config, producer_config


def test_default_then_env_then_argument(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FREIGHT_KAFKA_BOOTSTRAP", raising=False)
    assert load_settings().kafka_bootstrap == "127.0.0.1:9092"
    monkeypatch.setenv("FREIGHT_KAFKA_BOOTSTRAP", "env-host:1")
    assert load_settings().kafka_bootstrap == "env-host:1"
    assert load_settings(kafka_bootstrap="arg-host:2").kafka_bootstrap == "arg-host:2"
    assert load_settings(kafka_bootstrap=None).kafka_bootstrap == "env-host:1"


def test_client_properties_pass_through_untouched(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    props = tmp_path / "client.properties"
    props.write_text(
        "# a comment\nsecurity.protocol=SASL_SSL\nsasl.mechanism: PLAIN\nsasl.username=u\nlinger.ms=7\n"
    )
    monkeypatch.setenv("FREIGHT_KAFKA_CONFIG_FILE", str(props))
    monkeypatch.setenv("FREIGHT_KAFKA_PROPERTIES", '{"sasl.password": "s3cret", "linger.ms": 9}')
    settings = load_settings()
    conf = producer_config(settings)
    assert conf["security.protocol"] == "SASL_SSL"
    assert conf["sasl.mechanism"] == "PLAIN"
    assert conf["sasl.password"] == "s3cret"
    assert conf["linger.ms"] == "9"  # env JSON wins over the file, which wins over Freight's defaults
    assert consumer_config(settings, "g")["group.id"] == "g"
    assert consumer_config(settings, "g", {"group.id": "h"})["group.id"] == "h"


@pytest.mark.parametrize(
    ("env", "value", "needle"),
    [
        ("FREIGHT_KAFKA_PROPERTIES", "{not json", "FREIGHT_KAFKA_PROPERTIES must be a JSON object"),
        ("FREIGHT_KAFKA_BOOTSTRAP", "   ", "FREIGHT_KAFKA_BOOTSTRAP is empty"),
        ("FREIGHT_INLINE_THRESHOLD", "-1", "inline_threshold"),
    ],
)
def test_bad_settings_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, needle: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError, match=needle):
        load_settings()


def test_properties_file_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read Kafka client config file"):
        read_properties_file(tmp_path / "missing.properties")
    bad = tmp_path / "bad.properties"
    bad.write_text("ok=1\njust-a-word\n")
    with pytest.raises(ConfigError, match=r"bad.properties:2: expected key=value"):
        read_properties_file(bad)


def test_an_explicit_bootstrap_is_never_ignored_next_to_settings() -> None:
    from freight.config import FreightSettings, resolve_settings

    base = FreightSettings(kafka_bootstrap="a:1", schema_registry_url="http://r:1")
    assert resolve_settings(base) is base
    both = resolve_settings(base, bootstrap="b:2", registry_url="http://s:2")
    assert (both.kafka_bootstrap, both.schema_registry_url) == ("b:2", "http://s:2")
    assert base.kafka_bootstrap == "a:1"  # the caller's settings are not changed
