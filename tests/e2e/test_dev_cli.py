"""`freight dev up | down | status` as a user runs it: idempotent, leaves nothing behind, clear errors."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from freight.dev.procs import free_port, pid_alive
from freight.dev.state import STATE_FILE


def freight(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "freight.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    d = tmp_path / "state"
    yield d
    freight("dev", "down", "--state-dir", str(d))  # never leave a broker behind, even on failure


def _ports() -> list[str]:
    return ["--port", str(free_port()), "--controller-port", str(free_port()), "--service", "kafka"]


def test_up_is_idempotent_and_down_leaves_no_process(state_dir: Path) -> None:
    ports = _ports()
    first = freight("dev", "up", "--state-dir", str(state_dir), *ports, "--json")
    assert first.returncode == 0, first.stderr
    started = json.loads(first.stdout)
    (kafka,) = started["services"]
    assert kafka["state"] == "started"
    assert started["env"]["FREIGHT_KAFKA_BOOTSTRAP"] == kafka["address"]

    second = freight("dev", "up", "--state-dir", str(state_dir), *ports, "--json")
    assert second.returncode == 0, second.stderr
    (again,) = json.loads(second.stdout)["services"]
    assert again["state"] == "running" and again["pid"] == kafka["pid"]

    human = freight("dev", "status", "--state-dir", str(state_dir))
    assert human.returncode == 0 and "running" in human.stdout

    stopped = freight("dev", "down", "--state-dir", str(state_dir), "--json")
    assert stopped.returncode == 0, stopped.stderr
    assert json.loads(stopped.stdout)["services"][0]["state"] in {"terminated", "killed"}
    assert not pid_alive(kafka["pid"])
    leftover = subprocess.run(["pgrep", "-f", str(state_dir)], capture_output=True, text=True, check=False)
    assert leftover.stdout.strip() == "", f"processes left behind: {leftover.stdout}"
    assert json.loads(freight("dev", "status", "--state-dir", str(state_dir), "--json").stdout) == {
        "services": []
    }


def test_stale_state_file_is_reported_and_replaced(state_dir: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    state_dir.mkdir(parents=True)
    (state_dir / STATE_FILE).write_text(
        json.dumps(
            {
                "services": {
                    "kafka": {
                        "name": "kafka",
                        "pid": dead.pid,
                        "marker": "server.properties",
                        "address": "127.0.0.1:1",
                        "log_file": "/nonexistent",
                    }
                }
            }
        )
    )
    status = freight("dev", "status", "--state-dir", str(state_dir), "--json")
    assert status.returncode == 3
    assert json.loads(status.stdout)["services"][0]["state"] == "stale"

    up = freight("dev", "up", "--state-dir", str(state_dir), *_ports(), "--json")
    assert up.returncode == 0, up.stderr
    (kafka,) = json.loads(up.stdout)["services"]
    assert kafka["state"] == "started" and "stale" in kafka["detail"]


def test_corrupt_state_file_says_what_to_do(state_dir: Path) -> None:
    state_dir.mkdir(parents=True)
    (state_dir / STATE_FILE).write_text("{not json")
    result = freight("dev", "status", "--state-dir", str(state_dir))
    assert result.returncode == 4
    assert "is corrupt" in result.stderr and "delete" in result.stderr


def test_state_dir_that_is_a_file_is_a_clear_error(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    result = freight("dev", "up", "--state-dir", str(not_a_dir), "--service", "kafka")
    assert result.returncode == 4
    assert (
        f"cannot use {not_a_dir} as the state directory" in result.stderr and "--state-dir" in result.stderr
    )


def test_explicit_port_in_use_is_a_clear_error(state_dir: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = freight(
            "dev", "up", "--state-dir", str(state_dir), "--service", "kafka", "--port", str(port)
        )
    assert result.returncode == 4
    assert f"broker port {port} is already in use" in result.stderr


def test_broker_dying_during_start_shows_its_log(state_dir: Path) -> None:
    # A data directory that belongs to another node: formatting is skipped, and the broker exits at start.
    data = state_dir / "kafka" / "data"
    data.mkdir(parents=True)
    (data / "meta.properties").write_text("version=1\ncluster.id=AAAAAAAAAAAAAAAAAAAAAA\nnode.id=7\n")
    result = freight("dev", "up", "--state-dir", str(state_dir), *_ports())
    assert result.returncode == 4, result.stdout + result.stderr
    assert "exited with code" in result.stderr
    assert "Stored node id 7 doesn't match" in result.stderr  # the log tail names the cause


def _path_without(tool: str, tmp_path: Path, keep: tuple[str, ...] = ()) -> dict[str, str]:
    """An environment whose PATH has no `tool` (but still has the programs in `keep`)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name in keep:
        found = shutil.which(name)
        assert found, name
        (bin_dir / name).symlink_to(Path(found).resolve())
    env = {k: v for k, v in os.environ.items() if k not in {"JAVA_HOME", "FREIGHT_KAFKA_BOOTSTRAP"}}
    env["PATH"] = str(bin_dir)
    return env


def test_missing_java_says_what_to_install(state_dir: Path, tmp_path: Path) -> None:
    result = freight(
        "dev", "up", "--state-dir", str(state_dir), *_ports(), env=_path_without("java", tmp_path)
    )
    assert result.returncode == 4
    assert "`java` was not found" in result.stderr
    assert "FREIGHT_KAFKA_BOOTSTRAP" in result.stderr


def test_missing_maven_with_no_jars_says_what_to_install(state_dir: Path, tmp_path: Path) -> None:
    env = _path_without("mvn", tmp_path, keep=("java",))
    env["FREIGHT_KAFKA_LIBS"] = str(tmp_path / "no-jars-here")
    result = freight("dev", "up", "--state-dir", str(state_dir), *_ports(), env=env)
    assert result.returncode == 4
    assert "`mvn` was not found" in result.stderr and "apt-get install maven" in result.stderr
