"""Whether a process is still running: one answer for the dev service manager and the connectors.

A bottom-layer module (standard library only), so that connectors may import it; the connectors use it to
tell temporary files and shared-memory segments of exited producers from those of running ones.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def pid_alive(pid: int) -> bool:
    """True if a process with this pid exists and is not a zombie.

    Args:
        pid: The process id on this host.

    Returns:
        False if no such process exists or it has exited and awaits reaping (a zombie); True otherwise,
        including a process of another user (signalling it is refused, but it exists).
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError):
        # Field 3 is the state; 'Z' is a zombie (exited, not yet reaped).
        if stat.read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True
