"""A wheel built from the repository, installed alone: the core without torch, dask or the dev tools.

Builds the wheel, installs it (pinned by constraints.txt, no extras) into a fresh virtual environment, checks
that torch, dask and the dev/bench tools are absent, then runs the installed `freight` as a user would:
`freight dev up` (Kafka and the registry; the S3 endpoint is skipped, moto being a dev tool), a produce and
a consume through a file store, `freight dev down`. About a minute: `make test-wheel` (CI runs it).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(
    not os.environ.get("FREIGHT_TEST_WHEEL"), reason="builds and installs a wheel: make test-wheel"
)


def run(
    *cmd: str | Path, env: dict[str, str] | None = None, stdin: str | None = None, timeout: float = 300
) -> str:
    done = subprocess.run(
        [str(c) for c in cmd],
        capture_output=True,
        text=True,
        env=env,
        input=stdin,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"{cmd}: {done.stderr[-3000:]}"
    return done.stdout


def test_the_core_wheel_installs_without_torch_and_streams(tmp_path: Path) -> None:
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or "uv"
    run(uv, "build", "--wheel", "--out-dir", tmp_path / "dist", REPO, timeout=600)
    (wheel,) = (tmp_path / "dist").glob("freight-*.whl")
    venv = tmp_path / "venv"
    run(uv, "venv", "--python", sys.executable, venv)
    python = venv / "bin" / "python"
    run(uv, "pip", "install", "--python", python, "-c", REPO / "constraints.txt", wheel, timeout=600)

    probe = "import importlib.util as u, json; print(json.dumps([m for m in MODULES if u.find_spec(m)]))"
    absent = [
        "torch",
        "dask",
        "pytest",
        "moto",
        "proxystore",
        "matplotlib",
        "mypy",
        "nixl",
        "opentelemetry.sdk",
    ]
    found = json.loads(run(python, "-c", f"MODULES = {absent!r}\n{probe}"))
    assert found == [], f"the core install pulled in {found}"
    run(python, "-c", "import freight.stream, freight.registry.app, freight.connectors.file, freight.tracing")

    freight = venv / "bin" / "freight"
    assert run(freight, "--version").startswith("freight ")
    env = {**os.environ, "FREIGHT_KAFKA_LIBS": str(REPO / "infra" / "kafka" / "libs")}
    env.pop("FREIGHT_KAFKA_BOOTSTRAP", None)
    env.pop("FREIGHT_SCHEMA_REGISTRY_URL", None)
    state = tmp_path / "state"
    up = json.loads(run(freight, "dev", "up", "--state-dir", state, "--json", env=env, timeout=300))
    try:
        states = {s["name"]: s["state"] for s in up["services"]}
        assert states["kafka"] == "started" and states["registry"] == "started", up
        s3 = next(s for s in up["services"] if s["name"] == "s3")
        assert s3["state"] == "skipped" and "moto" in s3["detail"], s3
        env |= up["env"]
        env["FREIGHT_STORE_DIR"] = str(tmp_path / "store")
        env["FREIGHT_ALLOWED_STORE_ROOTS"] = str(tmp_path)
        big = tmp_path / "big.bin"
        big.write_bytes(os.urandom(3 << 20))
        run(freight, "produce", "wheel-topic", big, "--json", env=env)
        out = tmp_path / "out"
        run(freight, "consume", "wheel-topic", "--group", "g", "--out", out, "--max", "1", env=env)
        assert (out / "big.bin").read_bytes() == big.read_bytes()
    finally:
        run(freight, "dev", "down", "--state-dir", state, env=env)
