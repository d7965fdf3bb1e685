"""The registry under hostile clients (issue 13 item 5): half-sent requests are dropped after a read timeout,
connections beyond the cap get 503 instead of exhausting file descriptors, and a flood of identical log lines
is cut to a few with a count. Real sockets on 127.0.0.1 against a real `freight registry serve` process.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.fixtures.registry import private_topic

from freight.dev.procs import free_port, stop_process
from freight.registry.guard import RepeatFilter, default_max_connections

pytestmark = pytest.mark.timeout(180)


@contextlib.contextmanager
def _registry(kafka_bootstrap: str, log: Path, *args: str, nofile: int | None = None) -> Iterator[str]:
    port = free_port()
    limit = f"resource.setrlimit(resource.RLIMIT_NOFILE, ({nofile}, {nofile}))" if nofile else "pass"
    code = (
        f"import resource, sys\n{limit}\nfrom freight.cli import _console_main\n"
        "sys.argv = ['freight', *sys.argv[1:]]\n_console_main()\n"
    )
    cmd = [
        sys.executable, "-c", code, "registry", "serve", "--bootstrap", kafka_bootstrap, "--port", str(port),
        "--topic", private_topic(), "--log-file", str(log), *args,
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text() if log.exists() else "no log"
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/freight/health", timeout=1).status_code == 200:
                    break
            assert time.monotonic() < deadline
            time.sleep(0.1)
        yield url
    finally:
        stop_process(proc.pid, grace_s=10)


def _half_sent(port: int, count: int) -> list[socket.socket]:
    socks = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"POST /subjects/x/versions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le")
        socks.append(s)
    return socks


def _closed_by_server(s: socket.socket) -> bool:
    s.settimeout(0.2)
    try:
        return s.recv(1024) == b""
    except TimeoutError:
        return False
    except OSError:
        return True


def test_half_sent_requests_are_closed_after_the_read_timeout(kafka_bootstrap: str, tmp_path: Path) -> None:
    with _registry(kafka_bootstrap, tmp_path / "r.log", "--read-timeout", "1") as url:
        port = int(url.rsplit(":", 1)[1])
        socks = _half_sent(port, 50)
        stalled_body = socket.create_connection(("127.0.0.1", port), timeout=5)
        stalled_body.sendall(b"POST /subjects/x/versions HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n{")
        time.sleep(3)
        assert all(_closed_by_server(s) for s in socks)
        assert _closed_by_server(stalled_body)
        assert httpx.get(f"{url}/subjects", timeout=5).status_code == 200
        for s in socks:
            s.close()


def test_with_few_descriptors_the_registry_sheds_load_and_keeps_serving(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    log = tmp_path / "r.log"
    with _registry(kafka_bootstrap, log, "--read-timeout", "4", nofile=256) as url:
        port = int(url.rsplit(":", 1)[1])
        socks = _half_sent(port, 300)  # more than the process may open
        busy = httpx.get(f"{url}/subjects", timeout=5)  # answered at once: 503, never a hang
        assert busy.status_code == 503 and busy.json()["error_code"] == 50300
        time.sleep(6)  # the held sockets time out and give their descriptors back
        assert httpx.get(f"{url}/subjects", timeout=5).status_code == 200
        for s in socks:
            s.close()
    assert log.stat().st_size < 200_000, log.read_text()[-2000:]


def test_the_connection_cap_stays_below_the_descriptor_limit() -> None:
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert default_max_connections() < soft


def test_repeated_log_lines_are_cut_and_counted() -> None:
    records = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    handler.addFilter(RepeatFilter(burst=3, window_s=0.5))
    logger = logging.getLogger("freight.test.repeat")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        for _ in range(10_000):
            logger.error("socket.accept() out of system resource: %s", "Too many open files")
        logger.error("another line")
        time.sleep(0.6)
        logger.error("socket.accept() out of system resource: %s", "Too many open files")
    finally:
        logger.removeHandler(handler)
    messages = [r.getMessage() for r in records]
    assert len(messages) == 5
    assert "and 9997 more like it" in messages[-1]
