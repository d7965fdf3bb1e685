"""Paths other clients send (issue 17): a trailing slash is served, not redirected (httpx and other clients do
not follow a 307 by default); a subject holding '/' sent URL-encoded (confluent's Protobuf serializer and
Karapace's tests do) is served; `GET /schemas` lists schemas. Real registry, plain HTTP without redirects.
"""

from __future__ import annotations

import json
import uuid

import httpx

SCHEMA = json.dumps({"type": "record", "name": "P", "fields": [{"name": "a", "type": "int"}]})


def test_paths_with_a_trailing_slash_are_served(registry_url: str) -> None:
    with httpx.Client(base_url=registry_url, follow_redirects=False, timeout=10) as http:
        for path in ("/subjects/", "/config/", "/mode/", "/schemas/types/", "/contexts/"):
            response = http.get(path)
            assert response.status_code == 200, (path, response.status_code, response.text)
            assert response.json() is not None


def test_a_subject_with_a_slash_is_served_when_url_encoded(registry_url: str) -> None:
    subject = f"dir/{uuid.uuid4().hex[:8]}/file.proto"
    encoded = subject.replace("/", "%2F")
    with httpx.Client(base_url=registry_url, follow_redirects=False, timeout=10) as http:
        registered = http.post(f"/subjects/{encoded}/versions", json={"schema": SCHEMA})
        assert registered.status_code == 200, registered.text
        schema_id = registered.json()["id"]
        assert http.get(f"/subjects/{encoded}/versions").json() == [1]
        latest = http.get(f"/subjects/{encoded}/versions/latest").json()
        assert latest["subject"] == subject and latest["id"] == schema_id
        assert subject in http.get("/subjects").json()
        assert http.get(f"/config/{encoded}", params={"defaultToGlobal": "true"}).status_code == 200
        assert http.delete(f"/subjects/{encoded}").json() == [1]


def test_get_schemas_lists_them(registry_url: str) -> None:
    subject = f"list-{uuid.uuid4().hex[:8]}-value"
    with httpx.Client(base_url=registry_url, follow_redirects=False, timeout=10) as http:
        http.post(f"/subjects/{subject}/versions", json={"schema": SCHEMA}).raise_for_status()
        every = http.get("/schemas", params={"subjectPrefix": subject})
        assert every.status_code == 200
        (entry,) = every.json()
        assert entry["subject"] == subject and entry["version"] == 1 and "schema" in entry
        assert http.get("/schemas/", params={"subjectPrefix": subject, "latestOnly": "true"}).json() == [
            entry
        ]
