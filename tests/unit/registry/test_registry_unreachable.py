"""A registry that does not answer: `freight dev up` is advised only for a local registry (issue 16)."""

from __future__ import annotations

import socket

import pytest

from freight.errors import ServiceUnavailableError
from freight.registry.client import RegistryClient


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_local_registry_that_does_not_answer_suggests_dev_up() -> None:
    with (
        RegistryClient(f"http://127.0.0.1:{_closed_port()}", timeout=5) as client,
        pytest.raises(ServiceUnavailableError, match="freight dev up"),
    ):
        client.request("GET", "/subjects")


def test_remote_registry_that_does_not_answer_is_not_told_to_start_a_local_one() -> None:
    with (
        RegistryClient("http://registry.invalid:8081", timeout=5) as client,
        pytest.raises(ServiceUnavailableError) as info,
    ):
        client.request("GET", "/subjects")
    message = str(info.value)
    assert "freight dev up" not in message
    assert "FREIGHT_SCHEMA_REGISTRY_URL" in message and "registry.invalid" in message
