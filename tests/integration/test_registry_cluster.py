"""Registry instances as processes: restart and crash recovery, two instances, forwarding, auth, topic checks.

Each test starts its own `freight registry serve` processes on a private `_schemas` topic of the session
broker, so global settings (compatibility, mode) can change without touching other tests.
"""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from tests.fixtures.registry import RegistryProcess, SpawnRegistry
from tests.registry_cases import CANDIDATES, HISTORY, object_event_v1, object_event_v2, record

from freight.kafka import KafkaAdmin


def client(url: str, **extra: Any) -> SchemaRegistryClient:
    return SchemaRegistryClient({"url": url, "max.retries": 0, **extra})


def register(url: str, subject: str, schema: str) -> dict[str, Any]:
    response = httpx.post(f"{url}/subjects/{subject}/versions", json={"schema": schema}, timeout=60)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def status(url: str) -> dict[str, Any]:
    result: dict[str, Any] = httpx.get(f"{url}/freight/status", timeout=10).json()
    return result


def dump(url: str) -> dict[str, Any]:
    """Everything a client can read, through the public API (soft-deleted entries included)."""
    with httpx.Client(base_url=url, timeout=30) as http:
        out: dict[str, Any] = {
            "config": http.get("/config").json(),
            "mode": http.get("/mode").json(),
            "subjects": {},
            "schemas": {},
        }
        ids: set[int] = set()
        for subject in http.get("/subjects", params={"deleted": "true"}).json():
            versions = http.get(f"/subjects/{subject}/versions", params={"deleted": "true"}).json()
            bodies = [
                http.get(f"/subjects/{subject}/versions/{v}", params={"deleted": "true"}).json()
                for v in versions
            ]
            ids |= {b["id"] for b in bodies}
            out["subjects"][subject] = {
                "versions": bodies,
                "live": http.get(f"/subjects/{subject}/versions").json(),
                "config": http.get(f"/config/{subject}").json(),
                "mode": http.get(f"/mode/{subject}").json(),
            }
        for schema_id in sorted(ids):
            out["schemas"][schema_id] = {
                "schema": http.get(f"/schemas/ids/{schema_id}").json(),
                "versions": http.get(f"/schemas/ids/{schema_id}/versions", params={"deleted": "true"}).json(),
            }
    return out


def wait_same_position(*urls: str, timeout: float = 30.0) -> None:
    """Wait until every instance has read the log to the same offset."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        positions = {status(u)["log_position"] for u in urls}
        if len(positions) == 1:
            return
        time.sleep(0.05)
    raise AssertionError(f"instances did not converge: {[status(u) for u in urls]}")


def build_history(url: str) -> int:
    """Registrations, evolution, references, soft and hard deletes, settings; return the hard-deleted id."""
    c = client(url)
    c.register_schema("events-value", Schema(object_event_v1(), "AVRO"))
    c.register_schema("events-value", Schema(object_event_v2(), "AVRO"))
    c.register_schema("mirror-value", Schema(object_event_v1(), "AVRO"))  # same id, another subject
    for text in HISTORY:
        c.register_schema("probe-value", Schema(text, "AVRO"))
    c.set_compatibility("probe-value", "FULL_TRANSITIVE")
    c.update_mode("mirror-value", "READONLY")
    c.delete_version("events-value", 1)
    gone = c.register_schema("gone-value", Schema(CANDIDATES["DROP_A"], "AVRO"))
    c.delete_subject("gone-value")
    c.delete_subject("gone-value", permanent=True)
    c.set_compatibility(level="FORWARD")
    return gone


def test_restart_and_crash_replay_identical_state(spawn_registry: SpawnRegistry) -> None:
    first = spawn_registry()
    gone = build_history(first.url)
    before = dump(first.url)
    digest = status(first.url)["digest"]
    assert httpx.get(f"{first.url}/schemas/ids/{gone}").json()["error_code"] == 40403
    first.stop()

    second = spawn_registry(topic=first.topic)
    assert dump(second.url) == before
    assert status(second.url)["digest"] == digest
    second.kill()  # a crash: no shutdown at all

    third = spawn_registry(topic=first.topic)
    assert dump(third.url) == before
    assert status(third.url)["digest"] == digest
    # A hard-deleted id is never given again, even to the same schema.
    again = register(third.url, "gone-value", CANDIDATES["DROP_A"])["id"]
    assert again > max(gone, *(int(i) for i in before["schemas"]))


def test_two_instances_agree_and_never_give_one_id_to_two_schemas(spawn_registry: SpawnRegistry) -> None:
    a = spawn_registry()
    b = spawn_registry(topic=a.topic)
    schemas = [record([{"name": f"f{i}", "type": "int"}], name=f"Concurrent{i}") for i in range(16)]
    jobs = []
    for i in range(len(schemas)):
        jobs += [(a.url, f"c{i}-value", i), (b.url, f"c{i}-value", i), (b.url, f"d{i}-value", i)]
        jobs += [(a.url, f"d{i}-value", i)]
    with ThreadPoolExecutor(8) as pool:
        results = list(
            pool.map(lambda job: (job[1], job[2], register(job[0], job[1], schemas[job[2]])), jobs)
        )

    ids_of_schema: dict[int, set[int]] = {}
    for _subject, index, answer in results:
        ids_of_schema.setdefault(index, set()).add(answer["id"])
        assert answer["version"] == 1
    assert all(len(ids) == 1 for ids in ids_of_schema.values()), ids_of_schema
    all_ids = [next(iter(ids)) for ids in ids_of_schema.values()]
    assert len(set(all_ids)) == len(schemas), "two schemas share an id"

    wait_same_position(a.url, b.url)
    assert dump(a.url) == dump(b.url)
    assert status(a.url)["digest"] == status(b.url)["digest"]
    for i, schema_id in enumerate(all_ids):
        for url in (a.url, b.url):
            assert (
                httpx.get(f"{url}/schemas/ids/{schema_id}")
                .json()["schema"]
                .startswith('{"type":"record","name":"Concurrent')
            ), (i, url)


def test_writes_through_a_follower_go_to_the_writer_until_it_dies(spawn_registry: SpawnRegistry) -> None:
    a = spawn_registry()
    b = spawn_registry(topic=a.topic)
    register(a.url, "lead-value", HISTORY[0])
    writer = status(a.url)["instance"]
    wait_same_position(a.url, b.url)
    assert status(b.url)["writer"]["instance"] == writer

    relayed = register(b.url, "follow-value", HISTORY[1])
    # Read-your-writes on the follower: it waited for the writer's record before answering.
    assert httpx.get(f"{b.url}/schemas/ids/{relayed['id']}").status_code == 200
    assert status(b.url)["writing"] is False
    assert status(a.url)["writer"]["instance"] == writer

    a.kill()
    taken = register(b.url, "after-value", CANDIDATES["DROP_A"])
    assert taken["id"] > relayed["id"]
    assert status(b.url)["writing"] is True
    assert status(b.url)["writer"]["instance"] == status(b.url)["instance"]


def test_basic_auth_guards_every_endpoint_but_health(spawn_registry: SpawnRegistry, tmp_path: Path) -> None:
    secret_file = tmp_path / "registry-auth"
    secret_file.write_text("alice:s3cret\n")
    guarded = spawn_registry(extra=["--auth-file", str(secret_file)])
    anonymous = httpx.get(f"{guarded.url}/subjects")
    assert (anonymous.status_code, anonymous.json()["error_code"]) == (401, 401)
    assert anonymous.headers["www-authenticate"].startswith("Basic")
    assert httpx.get(f"{guarded.url}/subjects", auth=("alice", "wrong")).status_code == 401
    assert httpx.get(f"{guarded.url}/freight/health").status_code == 200

    c = client(guarded.url, **{"basic.auth.user.info": "alice:s3cret"})
    schema_id = c.register_schema("auth-value", Schema(HISTORY[0], "AVRO"))
    assert c.get_subjects() == ["auth-value"]
    with pytest.raises(SchemaRegistryError) as info:
        client(guarded.url).get_schema(schema_id)
    assert info.value.http_status_code == 401


def test_global_compatibility_and_mode(spawn_registry: SpawnRegistry) -> None:
    r = spawn_registry()
    c = client(r.url)
    assert c.get_compatibility() == "BACKWARD"
    assert c.set_compatibility(level="FULL") == {"compatibility": "FULL"}
    assert c.get_compatibility() == "FULL"
    assert httpx.delete(f"{r.url}/config").json() == {"compatibilityLevel": "FULL"}
    assert c.get_compatibility() == "BACKWARD"
    bad = httpx.put(f"{r.url}/config", json={"compatibility": "nah"})
    assert (bad.status_code, bad.json()["error_code"]) == (422, 42203)

    c.register_schema("m-value", Schema(HISTORY[0], "AVRO"))
    refused = httpx.put(f"{r.url}/mode", json={"mode": "IMPORT"})
    assert (refused.status_code, refused.json()["error_code"]) == (422, 42205)
    assert c.update_global_mode("IMPORT", force=True) == "IMPORT"
    assert c.get_global_mode() == "IMPORT"
    no_id = httpx.post(f"{r.url}/subjects/n-value/versions", json={"schema": HISTORY[1]})
    assert no_id.json()["error_code"] == 42205
    assert httpx.delete(f"{r.url}/mode").json() == {"mode": "IMPORT"}
    assert c.get_global_mode() == "READWRITE"
    assert c.update_global_mode("READONLY") == "READONLY"
    read_only = httpx.post(f"{r.url}/subjects/n-value/versions", json={"schema": HISTORY[1]})
    assert (read_only.status_code, read_only.json()["error_code"]) == (422, 42205)
    assert httpx.get(f"{r.url}/subjects").json() == ["m-value"]  # reads still work
    c.update_global_mode("READWRITE")
    assert register(r.url, "n-value", HISTORY[1])["version"] == 1


def test_state_topic_is_created_compacted_with_one_partition(
    spawn_registry: SpawnRegistry, admin: KafkaAdmin
) -> None:
    r: RegistryProcess = spawn_registry()
    info = admin.describe_topic(r.topic)
    assert info.partitions == 1
    assert info.config["cleanup.policy"] == "compact"


@pytest.mark.parametrize(("partitions", "config", "why"), [(3, None, "exactly 1"), (1, None, "compact")])
def test_a_topic_that_would_break_replay_is_refused(
    kafka_bootstrap: str, make_topic: Any, partitions: int, config: dict[str, str] | None, why: str
) -> None:
    topic = make_topic(partitions=partitions, config=config)
    cmd = [sys.executable, "-m", "freight.cli", "registry", "serve", "--bootstrap", kafka_bootstrap]
    cmd += ["--port", "0", "--topic", topic, "--log-level", "warning"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stderr
    assert why in done.stderr and topic in done.stderr
