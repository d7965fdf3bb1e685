"""Avro evolution cases through the REST API: the registry's verdict at BACKWARD, FORWARD and FULL, and what
a registration does at each level, equal to Confluent's (tests/registry_avro_cases.py)."""

from __future__ import annotations

import uuid

import httpx
import pytest
from tests.registry_avro_cases import AVRO_CASES


@pytest.mark.parametrize(
    ("case", "previous", "new", "backward", "forward"), AVRO_CASES, ids=[c[0] for c in AVRO_CASES]
)
def test_verdicts_through_rest(
    registry_url: str, case: str, previous: str, new: str, backward: bool, forward: bool
) -> None:
    subject = f"avro-case-{uuid.uuid4().hex[:10]}-value"
    with httpx.Client(base_url=registry_url, timeout=30) as http:
        assert http.post(f"/subjects/{subject}/versions", json={"schema": previous}).status_code == 200
        expected = {"BACKWARD": backward, "FORWARD": forward, "FULL": backward and forward, "NONE": True}
        for level, ok in expected.items():
            assert http.put(f"/config/{subject}", json={"compatibility": level}).status_code == 200
            verdict = http.post(f"/compatibility/subjects/{subject}/versions/latest", json={"schema": new})
            assert verdict.json()["is_compatible"] is ok, (level, verdict.json())
        # Registration follows the verdict: under FULL only a fully compatible schema gets a version.
        http.put(f"/config/{subject}", json={"compatibility": "FULL"})
        registered = http.post(f"/subjects/{subject}/versions", json={"schema": new})
        assert registered.status_code == (200 if backward and forward else 409), registered.text
