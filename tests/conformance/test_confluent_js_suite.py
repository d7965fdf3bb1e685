"""Confluent's own end-to-end schema-registry suite, run unchanged against Freight's registry and broker.

`@confluentinc/schemaregistry` (Confluent's Node.js registry client, from the npm registry) publishes its
end-to-end tests in its package (`dist/e2e/*.spec.js`): the client API (register, look up, versions,
metadata, compatibility, configs) and the Avro and JSON Schema serializers producing and consuming through
a real broker with `@confluentinc/kafka-javascript`. They talk to `http://localhost:8081` and
`localhost:9092`, the addresses the suite itself names, so this adapter starts Freight's registry and a local
broker (with topic auto-creation, which the suite relies on) on exactly those ports and runs jest over the
published files. Nothing of the suite is copied into this repository or edited: `package.json` and
`package-lock.json` pin the versions, `jest.config.js` points jest at the installed files.

`make test-conformance` runs it (CI does too). Installing takes a minute or two the first time
(`npm ci`; `CKJS_LINKING=dynamic` builds the Kafka client's native part against the system's OpenSSL and
zlib, since its prebuilt binaries and static dependencies come from download sites this machine cannot
reach); later runs reuse `build/conformance/node_modules`.
"""

from __future__ import annotations

import filecmp
import json
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from freight.dev import BrokerOptions, DevOptions, down, up

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
WORK = ROOT / "build" / "conformance"
ADAPTER_FILES = ("package.json", "package-lock.json", "jest.config.js")
# The addresses the published suite connects to (test-constants.js and the e2e specs).
REGISTRY_PORT = 8081
KAFKA_PORT = 9092
# The suite as published has 23 tests; fewer would mean jest found less than the whole suite.
MIN_TESTS = 23
# Tests of the suite that are expected to fail against Freight, with the reason (none today).
KNOWN_DIFFERENCES: dict[str, str] = {}


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def _need(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        pytest.fail(f"`{tool}` is not on PATH: the conformance suite runs under Node.js 20+ with npm")
    return found


def _install() -> None:
    """`npm ci` into build/conformance when the pinned adapter files changed (or nothing is installed)."""
    WORK.mkdir(parents=True, exist_ok=True)
    fresh = (WORK / "node_modules" / ".package-lock.json").exists() and all(
        (WORK / name).exists() and filecmp.cmp(HERE / name, WORK / name, shallow=False)
        for name in ADAPTER_FILES
    )
    if fresh:
        return
    for name in ADAPTER_FILES:
        shutil.copyfile(HERE / name, WORK / name)
    env = {**os.environ, "CKJS_LINKING": "dynamic"}
    done = subprocess.run(
        [_need("npm"), "ci", "--no-audit", "--no-fund"],
        cwd=WORK,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    if done.returncode != 0:
        tail = done.stdout[-3000:] + done.stderr[-3000:]
        pytest.fail(f"npm ci failed in {WORK} (exit {done.returncode}):\n{tail}")


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Freight's registry on 8081 and a broker on 9092 (auto-created topics), as the suite expects."""
    busy = [p for p in (KAFKA_PORT, REGISTRY_PORT) if not _port_free(p)]
    if busy:
        pytest.fail(
            f"port(s) {busy} on 127.0.0.1 are in use, but Confluent's suite connects to localhost:9092 and "
            "localhost:8081 as published: stop what listens there (e.g. `make dev-down`) and run again"
        )
    opts = DevOptions(
        state_dir=tmp_path_factory.mktemp("conformance-services"),
        services=["kafka", "registry"],
        kafka=BrokerOptions(
            port=KAFKA_PORT, overrides={"auto.create.topics.enable": "true", "num.partitions": "1"}
        ),
        registry_port=REGISTRY_PORT,
    )
    up(opts)
    try:
        yield
    finally:
        down(opts.state_dir)


def _results(report: dict[str, Any]) -> tuple[dict[str, tuple[int, int]], list[str]]:
    per_file: dict[str, tuple[int, int]] = {}
    failed: list[str] = []
    for suite in report["testResults"]:
        name = Path(suite["name"]).name
        results = suite["assertionResults"]
        passed = sum(1 for r in results if r["status"] == "passed")
        per_file[name] = (passed, len(results))
        failed += [f"{name}: {r['fullName']}" for r in results if r["status"] != "passed"]
        if not results and suite.get("message"):
            failed.append(f"{name}: could not run: {suite['message'][:500]}")
    return per_file, failed


@pytest.mark.conformance
def test_confluent_schemaregistry_e2e_suite_passes_against_freight(services: None) -> None:
    _need("node")
    _install()
    out = WORK / "jest-report.json"
    out.unlink(missing_ok=True)
    done = subprocess.run(
        [_need("npx"), "jest", "--ci", "--json", f"--outputFile={out}"],
        cwd=WORK,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert out.exists(), f"jest wrote no report (exit {done.returncode}):\n{done.stderr[-4000:]}"
    report = json.loads(out.read_text())
    per_file, failed = _results(report)
    print("\nConfluent @confluentinc/schemaregistry e2e suite against Freight:")
    for name, (passed, total) in sorted(per_file.items()):
        print(f"  {name}: {passed}/{total} passed")
    print(f"  total: {report['numPassedTests']}/{report['numTotalTests']} passed")
    unexpected = [f for f in failed if f.split(": ", 1)[-1] not in KNOWN_DIFFERENCES]
    assert not unexpected, (
        "tests of Confluent's suite failed against Freight:\n"
        + "\n".join(unexpected)
        + ("\n\n" + done.stderr[-6000:])
    )
    assert report["numTotalTests"] >= MIN_TESTS, (
        f"jest ran {report['numTotalTests']} tests, fewer than the {MIN_TESTS} the suite publishes"
    )
