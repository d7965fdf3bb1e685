"""`freight bench --background-load N`: N busy processes exist for the block and are gone after it."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from freight.bench._load import background_load


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="reads /proc")
def test_load_processes_burn_cpu_and_stop_with_the_block() -> None:
    with background_load(2) as pids:
        assert len(pids) == 2
        deadline = time.monotonic() + 20
        while min(_cpu_ticks(p) for p in pids) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert min(_cpu_ticks(p) for p in pids) >= 5  # each one spins (5 ticks = 50 ms of CPU)
    assert all(_gone(p) for p in pids)


def test_no_load_starts_nothing_and_a_negative_one_is_refused() -> None:
    with background_load(0) as pids:
        assert pids == []
    with pytest.raises(ValueError, match="0 or more"), background_load(-1):
        pass
