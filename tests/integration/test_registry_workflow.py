"""The schema-registry workflow through confluent-kafka's own SchemaRegistryClient, against the real server.

Register the event schema, look it up, fetch it by id, evolve it (BACKWARD), get 409 for breaking changes
under each of the seven compatibility levels, soft- and hard-delete with Confluent's error codes, and use
schema references and IMPORT mode. Raw HTTP checks pin the status, error code and content type.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from confluent_kafka.schema_registry import Schema, SchemaReference, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from tests.registry_cases import (
    CANDIDATES,
    HISTORY,
    LEVELS,
    REJECTED,
    object_event_v1,
    object_event_v2,
    record,
    reformatted,
)

MEDIA = "application/vnd.schemaregistry.v1+json"


def avro(text: str, refs: list[SchemaReference] | None = None) -> Schema:
    return Schema(text, "AVRO", refs or [])


def expect_error(http_status: int, code: int, call: Any, *args: Any, **kwargs: Any) -> SchemaRegistryError:
    with pytest.raises(SchemaRegistryError) as info:
        call(*args, **kwargs)
    assert (info.value.http_status_code, info.value.error_code) == (http_status, code), (
        info.value.error_message
    )
    return info.value


def raw(method: str, url: str, **kwargs: Any) -> httpx.Response:
    response = httpx.request(method, url, timeout=30, **kwargs)
    assert response.headers["content-type"].startswith(MEDIA), response.headers
    return response


def test_full_workflow_register_evolve_reject_delete(
    registry_client: SchemaRegistryClient, subject: str
) -> None:
    client = registry_client
    v1 = avro(object_event_v1())
    id1 = client.register_schema(subject, v1)
    assert client.register_schema(subject, v1) == id1
    # Equivalent text (layout, key order, qualified names) is the same schema: same id, no new version.
    fresh = SchemaRegistryClient({"url": client.config()["url"]})  # bypasses the first client's cache
    assert fresh.register_schema(subject, avro(reformatted(object_event_v1()))) == id1
    assert client.get_versions(subject) == [1]

    found = client.lookup_schema(subject, v1)
    assert (found.schema_id, found.version, found.subject) == (id1, 1, subject)
    assert json.loads(fresh.get_schema(id1).schema_str) == json.loads(object_event_v1())
    assert client.get_latest_version(subject).version == 1

    v2 = avro(object_event_v2())
    assert client.test_compatibility(subject, v2) is True
    id2 = client.register_schema(subject, v2)
    assert id2 != id1
    assert client.get_version(subject, 2).schema_id == id2
    assert client.get_versions(subject) == [1, 2]
    assert subject in client.get_subjects()
    assert subject in client.get_subjects_by_schema_id(id2)
    # The registry is shared by the session: other tests may hold the same schema under their own
    # subjects, so check that ours is listed and that every listed version really carries id2.
    listed = [(v.subject, v.version) for v in client.get_schema_versions(id2)]
    assert (subject, 2) in listed
    assert all(client.get_version(s, v, deleted=True).schema_id == id2 for s, v in listed)

    # A breaking change (a new field without a default) is refused with 409 and a reason.
    broken = json.loads(object_event_v2())
    broken["fields"].append({"name": "tenant", "type": "string"})
    err = expect_error(409, 409, client.register_schema, subject, avro(json.dumps(broken)))
    assert "tenant" in err.error_message and "version 2" in err.error_message
    assert client.get_versions(subject) == [1, 2]

    # Soft delete keeps the id resolvable; a second soft delete and a hard delete of a live version fail.
    assert client.delete_version(subject, 2) == 2
    assert client.get_versions(subject) == [1]
    assert client.get_versions(subject, deleted=True) == [1, 2]
    expect_error(404, 40406, client.delete_version, subject, 2)
    expect_error(404, 40407, client.delete_version, subject, 1, permanent=True)
    assert json.loads(fresh.get_schema(id2).schema_str) == json.loads(object_event_v2())

    expect_error(404, 40405, client.delete_subject, subject, permanent=True)
    assert client.delete_subject(subject) == [1]
    assert subject not in client.get_subjects()
    assert subject in client.get_subjects(deleted=True)
    expect_error(404, 40404, client.delete_subject, subject)
    expect_error(404, 40401, client.get_versions, subject)
    assert sorted(client.delete_subject(subject, permanent=True)) == [1, 2]
    expect_error(404, 40401, client.delete_subject, subject, permanent=True)
    assert subject not in client.get_subjects(deleted=True)


@pytest.mark.parametrize("level", LEVELS)
def test_each_level_rejects_exactly_its_breaking_changes(
    registry_client: SchemaRegistryClient, registry_url: str, subject: str, level: str
) -> None:
    client = registry_client
    assert client.set_compatibility(subject, level) == {"compatibility": level}
    assert client.get_compatibility(subject) == level
    for text in HISTORY:
        client.register_schema(subject, avro(text))
    for name, text in CANDIDATES.items():
        verdict = raw(
            "POST",
            f"{registry_url}/compatibility/subjects/{subject}/versions?verbose=true",
            json={"schema": text},
        ).json()
        assert verdict["is_compatible"] is (name not in REJECTED[level]), (name, verdict)
        assert bool(verdict["messages"]) is (name in REJECTED[level])
    for name in sorted(REJECTED[level]):
        expect_error(409, 409, client.register_schema, subject, avro(CANDIDATES[name]))
    assert client.get_versions(subject) == [1, 2]
    accepted = sorted(set(CANDIDATES) - REJECTED[level])
    if accepted:
        assert client.register_schema(subject, avro(CANDIDATES[accepted[0]])) > 0
        assert client.get_versions(subject) == [1, 2, 3]


def test_check_against_one_version(
    registry_url: str, registry_client: SchemaRegistryClient, subject: str
) -> None:
    for text in HISTORY:
        registry_client.register_schema(subject, avro(text))
    registry_client.set_compatibility(subject, "BACKWARD")
    base = f"{registry_url}/compatibility/subjects/{subject}/versions"
    candidate = {"schema": CANDIDATES["B_NO_DEFAULT"]}
    assert raw("POST", f"{base}/latest", json=candidate).json() == {"is_compatible": True}
    assert raw("POST", f"{base}/1?verbose=true", json=candidate).json()["is_compatible"] is False
    assert raw("POST", f"{base}/9", json=candidate).json()["error_code"] == 40402
    assert raw("POST", f"{base}/x", json=candidate).json()["error_code"] == 42202
    bad = raw("POST", f"{base}/latest?verbose=true", json={"schema": "{nope"}).json()
    assert bad["is_compatible"] is False and "JSON" in bad["messages"][0]
    assert raw("POST", f"{base}/latest", json={"schema": "{nope"}).json()["error_code"] == 42201
    unknown = f"{registry_url}/compatibility/subjects/{subject}-unknown/versions"
    assert raw("POST", unknown, json=candidate).json() == {"is_compatible": True}
    assert raw("POST", f"{unknown}/1", json=candidate).json()["error_code"] == 40401


def test_error_codes_and_content_type(
    registry_url: str, registry_client: SchemaRegistryClient, subject: str
) -> None:
    registry_client.register_schema(subject, avro(HISTORY[0]))
    cases = [
        ("GET", f"/subjects/{subject}-nope/versions", None, 404, 40401),
        ("GET", f"/subjects/{subject}/versions/7", None, 404, 40402),
        ("GET", f"/subjects/{subject}/versions/0", None, 422, 42202),
        ("GET", f"/subjects/{subject}/versions/abc", None, 422, 42202),
        ("GET", "/schemas/ids/987654321", None, 404, 40403),
        ("GET", "/schemas/ids/abc", None, 404, 40403),
        ("POST", f"/subjects/{subject}", {"schema": HISTORY[1]}, 404, 40403),
        ("POST", f"/subjects/{subject}-nope", {"schema": HISTORY[1]}, 404, 40401),
        ("POST", f"/subjects/{subject}/versions", {"schema": '{"type": "recrod"}'}, 422, 42201),
        ("POST", f"/subjects/{subject}/versions", {"schema": "{}"}, 422, 42201),
        ("POST", f"/subjects/{subject}/versions", {}, 422, 42201),
        ("POST", f"/subjects/{subject}/versions", {"schema": 5}, 422, 42201),
        ("POST", f"/subjects/{subject}/versions", {"schema": '"int"', "schemaType": "JSON"}, 422, 42201),
        ("POST", f"/subjects/{subject}/versions", {"schema": '"int"', "id": 5}, 422, 42205),
        ("PUT", f"/config/{subject}", {"compatibility": "SIDEWAYS"}, 422, 42203),
        ("PUT", f"/config/{subject}", {"compatibility": 7}, 422, 42203),
        ("PUT", f"/mode/{subject}", {"mode": "WRITEONLY"}, 422, 42204),
        ("GET", f"/config/{subject}", None, 404, 40408),
        ("GET", f"/mode/{subject}", None, 404, 40409),
        ("DELETE", f"/config/{subject}", None, 404, 40401),
        ("GET", "/no/such/path", None, 404, 404),
    ]
    for method, path, body, status, code in cases:
        response = raw(method, registry_url + path, json=body)
        doc = response.json()
        assert (response.status_code, doc.get("error_code")) == (status, code), (method, path, doc)
        assert isinstance(doc["message"], str) and doc["message"]
    malformed = raw("POST", f"{registry_url}/subjects/{subject}/versions", content=b"{not json")
    assert (malformed.status_code, malformed.json()["error_code"]) == (400, 400)
    # Confluent clients send their own media type; any body is read as JSON whatever its content type.
    typed = raw(
        "POST",
        f"{registry_url}/subjects/{subject}",
        content=json.dumps({"schema": HISTORY[0]}),
        headers={"Content-Type": MEDIA},
    )
    assert typed.json()["version"] == 1
    assert raw("GET", f"{registry_url}/config/{subject}?defaultToGlobal=true").json()["compatibilityLevel"]
    assert raw("GET", f"{registry_url}/mode/{subject}?defaultToGlobal=true").json() == {"mode": "READWRITE"}
    assert raw("GET", f"{registry_url}/schemas/types").json() == ["AVRO", "JSON", "PROTOBUF"]


def test_size_limits(registry_url: str, subject: str) -> None:
    big = record([{"name": "a", "type": "int", "doc": "x" * (600 * 1024)}])
    response = raw("POST", f"{registry_url}/subjects/{subject}/versions", json={"schema": big})
    assert (response.status_code, response.json()["error_code"]) == (422, 42209)
    huge = raw("POST", f"{registry_url}/subjects/{subject}/versions", content=b"x" * (3 * 1024 * 1024))
    assert (huge.status_code, huge.json()["error_code"]) == (413, 413)
    assert raw("GET", f"{registry_url}/subjects").status_code == 200


def test_read_only_subject_refuses_writes(registry_client: SchemaRegistryClient, subject: str) -> None:
    registry_client.register_schema(subject, avro(HISTORY[0]))
    assert registry_client.update_mode(subject, "READONLY") == "READONLY"
    assert registry_client.get_mode(subject) == "READONLY"
    expect_error(422, 42205, registry_client.register_schema, subject, avro(HISTORY[1]))
    expect_error(422, 42205, registry_client.delete_subject, subject)
    assert registry_client.delete_mode(subject) == "READONLY"
    expect_error(404, 40409, registry_client.get_mode, subject)
    assert registry_client.register_schema(subject, avro(HISTORY[1])) > 0


def test_schema_references(registry_client: SchemaRegistryClient, registry_url: str, subject: str) -> None:
    client = registry_client
    ref_subject = f"{subject}-ref"
    ref_schema = record([{"name": "q", "type": "long"}], name="Ref")
    ref_id = client.register_schema(ref_subject, avro(ref_schema))
    main = record([{"name": "r", "type": "freight.test.Ref"}], name="Main")
    refs = [SchemaReference("freight.test.Ref", ref_subject, 1)]
    main_id = client.register_schema(subject, avro(main, refs))
    got = raw("GET", f"{registry_url}/schemas/ids/{main_id}").json()
    assert got["references"] == [{"name": "freight.test.Ref", "subject": ref_subject, "version": 1}]
    assert client.get_referenced_by(ref_subject, 1) == [main_id]
    assert client.get_version(subject, 1).schema.references[0].subject == ref_subject
    expect_error(422, 42206, client.delete_version, ref_subject, 1)  # in use by a live schema
    expect_error(422, 42201, client.register_schema, f"{subject}-x", avro(main))  # no ref: unknown type
    client.delete_subject(subject)
    assert client.delete_version(ref_subject, 1) == 1  # soft: only a soft-deleted schema uses it now
    expect_error(422, 42206, client.delete_version, ref_subject, 1, permanent=True)
    client.delete_subject(subject, permanent=True)
    assert client.delete_version(ref_subject, 1, permanent=True) == 1
    assert raw("GET", f"{registry_url}/schemas/ids/{ref_id}").json()["error_code"] == 40403


def test_import_mode_keeps_given_ids(
    registry_client: SchemaRegistryClient, registry_url: str, subject: str
) -> None:
    client = registry_client
    client.register_schema(subject, avro(HISTORY[0]))
    expect_error(422, 42205, client.update_mode, subject, "IMPORT")
    target = f"{subject}-imported"
    assert client.update_mode(target, "IMPORT") == "IMPORT"
    imported_id = 1_000_000 + int(subject.rsplit("-", 2)[-2], 16) % 1_000_000
    body = {"schema": HISTORY[1], "id": imported_id, "version": 7}
    assert raw("POST", f"{registry_url}/subjects/{target}/versions", json=body).json() == {
        "id": imported_id,
        "version": 7,
    }
    assert raw("GET", f"{registry_url}/subjects/{target}/versions").json() == [7]
    assert json.loads(raw("GET", f"{registry_url}/schemas/ids/{imported_id}/schema").text) == json.loads(
        HISTORY[1]
    )
    clash = raw(
        "POST", f"{registry_url}/subjects/{target}/versions", json={"schema": HISTORY[0], "id": imported_id}
    )
    assert clash.json()["error_code"] == 42207
    no_id = raw("POST", f"{registry_url}/subjects/{target}/versions", json={"schema": HISTORY[0]})
    assert no_id.json()["error_code"] == 42205
    client.update_mode(target, "READWRITE")
    new_id = client.register_schema(target, avro(CANDIDATES["DROP_A"]))
    assert new_id > imported_id  # ids keep counting above imported ones
