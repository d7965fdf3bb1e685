"""Resolving a proxy of a trusted cluster does not read the environment (issue 19: it cost ~2 ms a proxy).

`StoreResolver.settings_for` used to build the process's settings from the environment (pydantic-settings)
on every call, before looking at the clusters it already trusts; at 1 MiB objects that was most of the
consumer's time. A trusted cluster's settings are now returned first; the environment is read only for an
unknown cluster (where it decides whether the cluster is allowed at all).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from freight.config import FreightSettings
from freight.connectors.file import FileConnector
from freight.errors import StoreTrustError
from freight.stores import Store, resolver
from freight.stores.resolver import StoreResolver


def test_trusted_cluster_resolves_without_reading_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls: list[int] = []
    real = resolver.load_settings

    def counting() -> FreightSettings:
        calls.append(1)
        return real()

    monkeypatch.setattr(resolver, "load_settings", counting)
    settings = FreightSettings(kafka_bootstrap="broker-a:9092")
    res = StoreResolver()
    store = Store("s", FileConnector(str(tmp_path)))
    res.register(store, settings=settings)
    for _ in range(100):
        assert res.settings_for("broker-a:9092") is settings
        assert res.store("s", bootstrap="broker-a:9092") is store
    assert calls == []


def test_unknown_cluster_is_still_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FREIGHT_KAFKA_BOOTSTRAP", "broker-a:9092")
    monkeypatch.delenv("FREIGHT_ALLOWED_CLUSTERS", raising=False)
    res = StoreResolver()
    res.trust(FreightSettings(kafka_bootstrap="broker-a:9092"))
    with pytest.raises(StoreTrustError, match="broker-b:9092"):
        res.settings_for("broker-b:9092")


def test_a_worker_configured_by_its_environment_reads_it_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = resolver.load_settings

    def counting() -> FreightSettings:
        calls.append(1)
        return real()

    monkeypatch.setenv("FREIGHT_KAFKA_BOOTSTRAP", "broker-a:9092")
    monkeypatch.setenv("FREIGHT_ALLOWED_CLUSTERS", "broker-c:9092")
    monkeypatch.setattr(resolver, "load_settings", counting)
    res = StoreResolver()
    for _ in range(50):
        assert res.settings_for("broker-a:9092").kafka_bootstrap == "broker-a:9092"
        assert res.settings_for("broker-c:9092").kafka_bootstrap == "broker-c:9092"
    assert len(calls) == 2  # once per cluster, not once per proxy
    with pytest.raises(StoreTrustError, match="broker-b:9092"):
        res.settings_for("broker-b:9092")
