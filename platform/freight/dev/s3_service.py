"""The local S3 endpoint of `freight dev`: moto's server mode (`python -m moto.server`) on 127.0.0.1.

Objects live in the server's memory (they are gone when it stops). Clients find it through the recorded
environment: FREIGHT_S3_ENDPOINT_URL, plus dummy AWS credentials and region, which moto accepts and which
are meant for this local endpoint only (real credentials come from each process's own environment).
"""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
from pathlib import Path

from freight.dev import procs
from freight.dev.services import DevOptions, register_service
from freight.dev.state import ServiceRecord
from freight.errors import DevServiceError, MissingToolError, PortInUseError

DEFAULT_PORT = 9000
#: Credentials for the local endpoint only; moto accepts any.
DEV_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "freight-dev",
    "AWS_SECRET_ACCESS_KEY": "freight-dev-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def _answers(port: int, timeout: float = 2.0) -> tuple[bool, str]:
    """(True, detail) if an HTTP server answers on 127.0.0.1:port (any status: an endpoint that checks
    credentials refuses this anonymous request, and still answers)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/")
        response = conn.getresponse()
        response.read()
    except OSError as exc:
        return False, f"no answer on port {port}: {exc}"
    finally:
        conn.close()
    return True, f"S3 endpoint answering on port {port} (HTTP {response.status})"


class MotoS3Service:
    """Starts and checks a moto S3 server."""

    name = "s3"

    def __init__(
        self,
        state_dir: Path,
        port: int | None = None,
        *,
        extra_env: dict[str, str] | None = None,
        start_timeout_s: float = 30.0,
    ) -> None:
        self.state_dir = state_dir.resolve()
        self.port = port
        self.extra_env = dict(extra_env or {})
        self.start_timeout_s = start_timeout_s
        self.log_file = self.state_dir / "s3" / "moto.log"

    def start(self) -> ServiceRecord:
        """Start the server and block until it answers; return its record for the state file."""
        try:
            import moto.server  # noqa: F401
        except ModuleNotFoundError as exc:
            raise MissingToolError(
                "the local S3 endpoint needs moto's server mode: pip install 'moto[server]' (it is in the "
                "dev extra), or point Freight at an existing endpoint with FREIGHT_S3_ENDPOINT_URL"
            ) from exc
        if self.port is not None and procs.port_in_use(self.port):
            raise PortInUseError(
                f"S3 port {self.port} is already in use by another process; choose another with "
                "`freight dev up --s3-port N`, or omit it to let Freight pick a free one."
            )
        for _attempt in range(1 if self.port is not None else 3):
            record = self._start_once(procs.choose_port(self.port, DEFAULT_PORT))
            if record is not None:
                return record
        raise DevServiceError("the S3 endpoint lost the race for a free port three times; try again")

    def _start_once(self, port: int) -> ServiceRecord | None:
        """One start on `port`; None if another process took the port first (and it was not asked for)."""
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self.log_file.write_bytes(b"")  # this start's log only
        marker = f"moto.server -H 127.0.0.1 -p {port}"
        cmd = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
        env = {**os.environ, **self.extra_env} if self.extra_env else None
        proc = procs.spawn(cmd, log_file=self.log_file, env=env)
        endpoint = f"http://127.0.0.1:{port}"
        record = ServiceRecord(
            name=self.name,
            pid=proc.pid,
            marker=marker,
            address=endpoint,
            ports={"s3": port},
            data_dir=None,
            log_file=str(self.log_file),
            env={"FREIGHT_S3_ENDPOINT_URL": endpoint, **DEV_CREDENTIALS},
        )
        return record if self._wait_ready(proc, port) else None

    def _wait_ready(self, proc: subprocess.Popen[bytes], port: int) -> bool:
        """True once our server answers; False if it lost its (auto-chosen) port to another process."""
        return procs.wait_serving(
            proc,
            port,
            what="S3 endpoint (moto)",
            log_file=self.log_file,
            timeout_s=self.start_timeout_s,
            probe=lambda: _answers(port, timeout=1.0),
            chosen=self.port is None,
            log_lines=15,
        )

    @staticmethod
    def health(record: ServiceRecord) -> tuple[bool, str]:
        """(healthy, detail) as seen by a client of the recorded port."""
        if not procs.pid_matches(record.pid, record.marker):
            return False, f"process {record.pid} is not running"
        return _answers(record.ports["s3"])


def _factory(options: DevOptions, _started: dict[str, ServiceRecord]) -> MotoS3Service:
    return MotoS3Service(options.state_dir, options.s3_port)


register_service("s3", _factory, MotoS3Service.health)
