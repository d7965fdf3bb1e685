"""A tiny TCP proxy on 127.0.0.1 that injects network faults between a client and a real service.

Modes (switchable while running, `set_mode`):

* ``pass``: forward both ways (optionally delaying every chunk the service sends back by ``delay_s``);
* ``refuse``: accept and reset at once, as an endpoint that is down;
* ``blackhole``: accept and read, never answer (a hung endpoint);
* ``stall``: accept, never read nor answer (a dropped route: the sender's writes block once the socket
  buffers are full);
* ``drop_responses``: forward what the client sends, discard what the service answers (the request is
  executed, the client never hears about it).

Switching to ``refuse``, ``blackhole`` or ``stall`` also cuts the connections already open, so clients see
the fault at once; ``drop_responses`` keeps them, so requests on connections already set up still arrive.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from typing import Literal

Mode = Literal["pass", "refuse", "blackhole", "stall", "drop_responses"]


def _reset(sock: socket.socket) -> None:
    """Close with a TCP reset (SO_LINGER 0), as a crashed peer would."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


class TcpProxy:
    """Forward 127.0.0.1:`port` to `upstream`, with injectable faults (see the module docstring)."""

    def __init__(self, upstream: tuple[str, int], port: int = 0) -> None:
        self.upstream = upstream
        self.mode: Mode = "pass"
        self.delay_s = 0.0
        self._listener = socket.create_server(("127.0.0.1", port))
        self.port: int = self._listener.getsockname()[1]
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False
        self.accepted = 0
        self._thread = threading.Thread(target=self._accept_loop, name=f"tcpproxy-{self.port}", daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def set_mode(self, mode: Mode, *, delay_s: float = 0.0) -> None:
        """Switch the fault. `refuse`, `blackhole` and `stall` cut every open connection; `drop_responses`
        keeps them (requests on connections already set up still reach the service)."""
        self.mode, self.delay_s = mode, delay_s
        if mode in ("refuse", "blackhole", "stall"):
            self.cut()

    def cut(self) -> None:
        """Reset every open connection (both sides)."""
        with self._lock:
            conns, self._conns = self._conns, set()
        for conn in conns:
            _reset(conn)

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() of the accepting thread
        with contextlib.suppress(OSError):
            self._listener.close()
        self.cut()
        self._thread.join(5)

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _track(self, *socks: socket.socket) -> None:
        with self._lock:
            self._conns.update(socks)

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.accepted += 1
            mode = self.mode
            if mode == "refuse":
                _reset(client)
                continue
            if mode in ("blackhole", "stall"):
                self._track(client)
                if mode == "blackhole":
                    threading.Thread(target=self._drain, args=(client,), daemon=True).start()
                continue
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
                upstream.settimeout(None)
            except OSError:
                _reset(client)  # the service behind is down: the client sees a reset connection
                continue
            self._track(client, upstream)
            threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, True), daemon=True).start()

    @staticmethod
    def _drain(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while sock.recv(65536):
                pass

    def _pump(self, src: socket.socket, dst: socket.socket, response: bool) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if response:
                    if self.mode == "drop_responses":
                        continue
                    if self.delay_s:
                        time.sleep(self.delay_s)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    sock.close()
            with self._lock:
                self._conns.difference_update((src, dst))
