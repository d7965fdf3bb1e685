"""Process and port helpers for the local services: spawn detached, check identity, stop gracefully."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from freight.errors import DevServiceError
from freight.net import port_in_use as port_in_use  # re-exported: the dev services use it
from freight.pids import pid_alive


def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel says is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def choose_port(requested: int | None, default: int, taken: set[int] | None = None) -> int:
    """`requested` if given (caller checks it is free); else `default` if free (and > 0); else a free port."""
    taken = taken or set()
    if requested is not None:
        return requested
    if default > 0 and default not in taken and not port_in_use(default):
        return default
    while True:
        port = free_port()
        if port not in taken:
            return port


def spawn(
    cmd: Sequence[str], *, log_file: Path, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start a detached process (own session, survives the CLI) with stdout/stderr appended to log_file."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as out:
        return subprocess.Popen(
            list(cmd),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )


def pid_matches(pid: int, marker: str) -> bool:
    """True if `pid` is alive and its command line contains `marker` (guards against pid reuse)."""
    if not pid_alive(pid):
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")
    try:
        return marker in cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return True  # no /proc (macOS): trust the pid


def stop_process(pid: int, *, grace_s: float = 20.0) -> str:
    """SIGTERM the process group, wait up to grace_s, then SIGKILL.

    Returns 'terminated', 'killed' or 'gone' (it had already exited).
    """
    if not pid_alive(pid):
        return "gone"
    _signal_group(pid, signal.SIGTERM)
    if wait_exit(pid, grace_s):
        return "terminated"
    _signal_group(pid, signal.SIGKILL)
    wait_exit(pid, 10.0)
    return "killed"


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(os.getpgid(pid), sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def wait_exit(pid: int, timeout_s: float) -> bool:
    """Wait until pid has exited (reaping it if it is our child); True if it did within the timeout."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    return not pid_alive(pid)


def tail(path: Path, lines: int = 30) -> str:
    """The last lines of a log file, or a note that it is missing."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(size - 64 * 1024, 0))
            text = f.read().decode(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def owns_port(pid: int, port: int) -> bool | None:
    """True if process `pid` holds the socket listening on `port`; None where /proc cannot tell.

    A service started on a port that another process took meanwhile must not mistake that process's answers
    for its own readiness.
    """
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            # local_address is HEXIP:HEXPORT; state 0A is LISTEN; field 9 is the socket inode.
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    if not inodes:
        return False if Path("/proc/net/tcp").exists() else None
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return None
    wanted = {f"socket:[{inode}]" for inode in inodes}
    for fd in fds:
        try:
            if str(fd.readlink()) in wanted:
                return True
        except OSError:  # closed meanwhile (the listing's own descriptor, for one)
            continue
    return False


def lost_port_race(log_file: Path) -> bool:
    """True if a service's log says it could not bind its port (another process took it first)."""
    return "address already in use" in tail(log_file, 40).lower()


def wait_serving(
    proc: subprocess.Popen[bytes],
    port: int,
    *,
    what: str,
    log_file: Path,
    timeout_s: float,
    probe: Callable[[], tuple[bool, str]],
    chosen: bool,
    log_lines: int = 30,
) -> bool:
    """Wait until the service `proc` started answers on `port` (as `probe` sees it, and from its own process).

    False if it exited because another process took a port Freight `chosen` for it (the caller picks another);
    a `DevServiceError` naming `what` and quoting its log if it exited otherwise or stayed silent.
    """
    deadline = time.monotonic() + timeout_s
    detail = ""
    while time.monotonic() < deadline:
        code = proc.poll()
        if code is not None:
            if chosen and lost_port_race(log_file):
                return False
            raise DevServiceError(
                f"the {what} exited with code {code} during start. Last lines of its log "
                f"({log_file}):\n{tail(log_file, log_lines)}"
            )
        ok, detail = probe()
        if ok and owns_port(proc.pid, port) is not False:
            return True
        time.sleep(0.1)
    stop_process(proc.pid, grace_s=5)
    raise DevServiceError(
        f"the {what} did not answer within {timeout_s:g}s ({detail}). Last lines of its "
        f"log:\n{tail(log_file, log_lines)}"
    )
