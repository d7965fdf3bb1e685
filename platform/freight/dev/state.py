"""The state file of the local services: what `freight dev up` started, so `down` and `status` find it."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from freight.errors import DevServiceError

STATE_FILE = "dev-state.json"


class ServiceRecord(BaseModel):
    """One running service: its process, ports, address and files."""

    name: str
    pid: int
    marker: str = Field(
        description="A string in the process command line, to tell our process from pid reuse."
    )
    address: str = Field(description="What clients connect to: host:port or a URL.")
    ports: dict[str, int] = Field(default_factory=dict)
    data_dir: str | None = None
    log_file: str
    env: dict[str, str] = Field(default_factory=dict, description="Variables clients should export.")
    started_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


class DevState(BaseModel):
    """All services started from one state directory."""

    services: dict[str, ServiceRecord] = Field(default_factory=dict)


def state_path(state_dir: Path) -> Path:
    return state_dir / STATE_FILE


def load_state(state_dir: Path) -> DevState:
    """Read the state file; a missing file is an empty state, a corrupt one is a clear error."""
    path = state_path(state_dir)
    try:
        raw = path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return DevState()
    try:
        return DevState.model_validate(json.loads(raw))
    except (json.JSONDecodeError, ValidationError) as exc:
        raise DevServiceError(
            f"the state file {path} is corrupt ({exc.__class__.__name__}). Stop any broker you started by "
            f"hand, then delete {path} and run `freight dev up` again."
        ) from exc


def save_state(state_dir: Path, state: DevState) -> None:
    """Write the state file atomically (temporary file + rename)."""
    ensure_state_dir(state_dir)
    path = state_path(state_dir)
    tmp = path.with_suffix(f".tmp.{os.getpid()}")
    tmp.write_text(state.model_dump_json(indent=2), encoding="utf-8")
    tmp.replace(path)


def ensure_state_dir(state_dir: Path) -> None:
    """Create the state directory, or explain why it cannot be used."""
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        if not os.access(state_dir, os.W_OK):
            raise PermissionError(13, "not writable")
    except OSError as exc:
        raise DevServiceError(
            f"cannot use {state_dir} as the state directory ({exc.strerror or exc}); choose another with "
            "--state-dir or FREIGHT_STATE_DIR"
        ) from exc


@contextlib.contextmanager
def locked(state_dir: Path) -> Iterator[None]:
    """Serialise `up`/`down` on one state directory across processes."""
    ensure_state_dir(state_dir)
    with open(state_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
