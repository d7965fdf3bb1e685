"""Port selection: the default when free, a free one when the default is taken."""

from __future__ import annotations

import socket

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
