"""Port selection: the default when free, a free one when the default is taken."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from freight.dev.procs import choose_port, free_port, port_in_use


def test_default_port_taken_picks_another() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        assert port_in_use(taken)
        chosen = choose_port(None, taken)
        assert chosen != taken and not port_in_use(chosen)


def test_default_port_free_is_used_and_explicit_port_wins() -> None:
    port = free_port()
    assert choose_port(None, port) == port
    assert choose_port(1234, port) == 1234
    assert choose_port(None, port, taken={port}) != port


def test_owns_port_tells_our_listener_from_another_process() -> None:
    import os
    import subprocess
    import sys

    from freight.dev.procs import owns_port

    with socket.socket() as mine:
        mine.bind(("127.0.0.1", 0))
        mine.listen()
        port = mine.getsockname()[1]
        assert owns_port(os.getpid(), port) is True
        other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
        try:
            assert owns_port(other.pid, port) is False  # alive, but not the listener
        finally:
            other.kill()
            other.wait()
    assert owns_port(os.getpid(), port) is False  # nobody listens any more


def test_lost_port_race_reads_the_bind_error(tmp_path: Path) -> None:
    from freight.dev.procs import lost_port_race

    log = tmp_path / "service.log"
    log.write_text("INFO starting\nERROR [Errno 98] error while attempting to bind: address already in use\n")
    assert lost_port_race(log)
    log.write_text("INFO started\n")
    assert not lost_port_race(log)


def test_cluster_ids_never_start_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    """Kafka's tools would read such an id as an option; like Kafka's `Uuid.randomUuid`, draw again."""
    import uuid

    from freight.dev import kafka_broker

    draws = iter([uuid.UUID(bytes=b"\xf8" + bytes(15)), uuid.UUID(bytes=b"\x01" * 16)])
    monkeypatch.setattr(kafka_broker.uuid, "uuid4", lambda: next(draws))
    assert kafka_broker.cluster_id() == "AQEBAQEBAQEBAQEBAQEBAQ"
