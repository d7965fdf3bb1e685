"""The local broker survives losing a port race: ports it chose itself are chosen again."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from freight.dev import procs
from freight.dev.kafka_broker import BrokerOptions, KafkaBroker
from freight.errors import DevServiceError


def test_a_port_taken_after_it_was_chosen_is_chosen_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as thief:
        thief.bind(("127.0.0.1", 0))
        thief.listen()
        stolen = thief.getsockname()[1]
        picks = iter([stolen])
        real_choose = procs.choose_port

        def choose(requested: int | None, default: int, taken: set[int] | None = None) -> int:
            # The first broker port "was free when chosen" but another process bound it before the broker.
            return next(picks, None) or real_choose(requested, default, taken)

        monkeypatch.setattr(procs, "choose_port", choose)
        broker = KafkaBroker(tmp_path, BrokerOptions(prefer_default_ports=False))
        record = broker.start()
        try:
            assert record.ports["broker"] != stolen
            assert KafkaBroker.health(record)[0]
        finally:
            procs.stop_process(record.pid)


def test_an_explicit_port_that_is_taken_is_not_silently_replaced(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(DevServiceError, match=f"broker port {port} is already in use"):
            KafkaBroker(tmp_path, BrokerOptions(port=port)).start()


def test_storage_formats_with_a_cluster_id_that_looks_like_an_option(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One random id in 64 starts with "-"; `format` must still take it as the id (it once failed CI)."""
    from freight.dev import kafka_broker
    from freight.dev.kafka_broker import ensure_jars, java_path

    monkeypatch.setattr(kafka_broker, "cluster_id", lambda: "-" + "A" * 21)
    broker = KafkaBroker(tmp_path, BrokerOptions(prefer_default_ports=False))
    broker._write_config(procs.free_port(), procs.free_port())
    broker._format(java_path(), ensure_jars())
    assert "cluster.id=-AAAAAAAAAAAAAAAAAAAAA" in (broker.data_dir / "meta.properties").read_text()
