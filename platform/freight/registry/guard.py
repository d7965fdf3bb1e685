"""The registry under hostile clients: bounded reads, bounded connections, bounded logs (issue 13 item 5).

uvicorn holds a half-sent request forever: a client that opens a socket and sends half a header line keeps
a file descriptor until it goes away. A thousand such sockets exhaust a 1024-fd limit, after which every
`accept()` fails and asyncio logs one identical line per attempt (1.47 M lines in 2 minutes were seen). Here:

- `GuardedH11Protocol` closes a connection that has not completed its request (headers and body) within
  `read_timeout_s` of its last byte, and answers 503 and closes at once when `max_connections` are open,
  so the process never runs out of descriptors;
- `RepeatFilter` lets a repeated log line through a few times per window, then counts it and says how many
  were dropped; `--log-file` rotates (`logging.handlers.RotatingFileHandler`).
"""

from __future__ import annotations

import asyncio
import logging
import resource
import threading
import time
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nconnection: close\r\n"
    b"retry-after: 1\r\ncontent-length: 80\r\n\r\n"
)
_BUSY_BODY = b'{"error_code":50300,"message":"the registry has too many open connections; retry"}'
_BUSY_RESPONSE = _BUSY.replace(b"80", str(len(_BUSY_BODY)).encode()) + _BUSY_BODY


def default_max_connections() -> int:
    """Connections kept below the soft fd limit (room for Kafka clients, logs and the listener)."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 4096
    return max(16, min(4096, soft - 128))


def guarded_protocol(read_timeout_s: float, max_connections: int) -> type[H11Protocol]:
    """An H11Protocol class enforcing `read_timeout_s` and `max_connections` (see the module docstring)."""

    class GuardedH11Protocol(H11Protocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            if len(self.server_state.connections) >= max_connections:
                transport.write(_BUSY_RESPONSE)
                transport.close()
                self.transport = transport
                self._guard: asyncio.TimerHandle | None = None
                self._refused = True
                return
            self._refused = False
            super().connection_made(transport)
            self._last_data = time.monotonic()
            self._guard = self.loop.call_later(read_timeout_s, self._check_progress)

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return
            self._last_data = time.monotonic()
            super().data_received(data)

        def _reading_request(self) -> bool:
            """True while a request is partly received (headers or body not complete)."""
            cycle = self.cycle
            if cycle is None or cycle.response_complete:
                # Between requests: partial bytes of the next request are in h11's buffer.
                return bool(self.conn.trailing_data[0])
            return bool(cycle.more_body)

        def _check_progress(self) -> None:
            if self.transport.is_closing():
                return
            idle = time.monotonic() - self._last_data
            if self._reading_request() and idle >= read_timeout_s:
                self.transport.close()  # a half-sent request: give the descriptor back
                return
            if self.cycle is None and idle >= read_timeout_s:
                self.transport.close()  # connected, never sent a byte
                return
            self._guard = self.loop.call_later(max(read_timeout_s - idle, 0.5), self._check_progress)

        def connection_lost(self, exc: Exception | None) -> None:
            if self._guard is not None:
                self._guard.cancel()
            if self._refused:
                return
            super().connection_lost(exc)

    return GuardedH11Protocol


class RepeatFilter(logging.Filter):
    """Pass a log line at most `burst` times per `window_s` seconds; then count it and report the count.

    Lines are compared by logger, level and message template (not arguments), so "Too many open files" from
    a failing accept loop is one line, not millions.
    """

    def __init__(self, burst: int = 5, window_s: float = 60.0) -> None:
        super().__init__()
        self.burst = burst
        self.window_s = window_s
        self._seen: dict[tuple[str, int, Any], list[float]] = {}  # key -> [window start, count]
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, record.msg if isinstance(record.msg, str) else str(record.msg))
        now = time.monotonic()
        with self._lock:
            state = self._seen.get(key)
            if state is None or now - state[0] >= self.window_s:
                dropped = int(state[1]) - self.burst if state is not None and state[1] > self.burst else 0
                self._seen[key] = [now, 1]
                if len(self._seen) > 10_000:  # bound memory: forget the oldest windows
                    for old in sorted(self._seen, key=lambda k: self._seen[k][0])[:5_000]:
                        del self._seen[old]
                if dropped:
                    record.msg = f"{record.msg} (and {dropped} more like it in the last {self.window_s:g}s)"
                return True
            state[1] += 1
            return state[1] <= self.burst
