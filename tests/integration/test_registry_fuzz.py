"""Fuzz the registry API from its own OpenAPI description: no request may get a 5xx or stop the server.

The description is the one the server publishes at /openapi.json (built here from the same app, so tests are
collected per operation without a running server; a test checks both are equal). Schemathesis generates
valid and invalid requests for every operation (bounded examples, derandomized) against a private registry
process, so the writes it invents (READONLY mode, deletes) touch no other test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance
from tests.fixtures.registry import RegistryProcess, private_topic, start_registry_process

from freight.config import FreightSettings
from freight.registry.app import create_app
from freight.registry.options import RegistryOptions
from freight.registry.service import RegistryService

OPENAPI = create_app(RegistryService(RegistryOptions(), FreightSettings())).openapi()
schema = schemathesis.openapi.from_dict(OPENAPI)


@pytest.fixture(scope="module")
def fuzz_target(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryProcess]:
    log_dir: Path = tmp_path_factory.mktemp("fuzz-registry")
    handle = start_registry_process(kafka_bootstrap, private_topic(), log_dir)
    yield handle
    handle.stop()


def test_the_fuzzed_description_is_the_one_the_server_publishes(fuzz_target: RegistryProcess) -> None:
    assert httpx.get(f"{fuzz_target.url}/openapi.json").json() == OPENAPI


@schema.parametrize()
@settings(
    max_examples=10, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck)
)
def test_no_request_gets_a_server_error(case: Any, fuzz_target: RegistryProcess) -> None:
    response = case.call(base_url=fuzz_target.url, timeout=30)
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path}: {response.status_code} {response.text}"
    )
    if response.status_code >= 400:
        body = response.json()
        assert isinstance(body.get("error_code"), int) and body.get("message"), body


def test_the_server_still_serves_after_fuzzing(fuzz_target: RegistryProcess) -> None:
    assert fuzz_target.proc.poll() is None, fuzz_target.log_tail()
    assert httpx.get(f"{fuzz_target.url}/freight/health").status_code == 200
    assert httpx.get(f"{fuzz_target.url}/subjects", params={"deleted": "true"}).status_code == 200
    assert "Traceback" not in fuzz_target.log_file.read_text(), fuzz_target.log_tail()


@schema.parametrize()
@settings(
    max_examples=10, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck)
)
def test_responses_conform_to_the_published_description(case: Any, fuzz_target: RegistryProcess) -> None:
    """Status codes, content types, bodies and `Allow` headers are what /openapi.json says (issue 17).

    One check is left out: "positive data acceptance" calls a 422 for a request that fits the description a
    failure, but the description cannot say that a schema text must be a valid Avro or JSON Schema, so the
    registry rightly answers 42201 to random text (as Confluent's does).
    """
    response = case.call(base_url=fuzz_target.url, timeout=30)
    case.validate_response(response, excluded_checks=[positive_data_acceptance])
