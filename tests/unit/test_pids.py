"""freight.pids.pid_alive: the one liveness check of the dev service manager and the connectors."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from freight.pids import pid_alive


def test_this_process_is_alive() -> None:
    assert pid_alive(os.getpid())


def test_an_exited_unreaped_child_is_not_alive() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 30
        while pid_alive(child.pid) and time.monotonic() < deadline:  # a zombie until reaped below
            time.sleep(0.05)
        assert not pid_alive(child.pid)
    finally:
        child.wait()
    assert not pid_alive(child.pid)
