"""Data contracts (`metadata`, `ruleSet`) and `normalize` on the real registry, as Confluent serves them.

Through confluent-kafka's own client where it has the call (register with metadata and rules, the latest
version with given metadata), through REST for the rest: contracts are part of what an id stands for, a
registration without them inherits the latest version's, a wrong shape is a 42201 naming the field, and
`normalize` is stored and returned by `/config`.
"""

from __future__ import annotations

import json

import httpx
from confluent_kafka.schema_registry import (
    Metadata,
    MetadataProperties,
    MetadataTags,
    Rule,
    RuleKind,
    RuleMode,
    RuleSet,
    Schema,
    SchemaRegistryClient,
)

USER = json.dumps(
    {"type": "record", "name": "User", "fields": [{"name": "name", "type": "string"}]}, separators=(",", ":")
)
USER_V2 = json.dumps(
    {
        "type": "record",
        "name": "User",
        "fields": [{"name": "name", "type": "string"}, {"name": "age", "type": "int", "default": 0}],
    },
    separators=(",", ":"),
)


def _metadata(owner: str) -> Metadata:
    return Metadata(
        tags=MetadataTags({"User.name": ["PII"]}),
        properties=MetadataProperties({"owner": owner, "team": "freight"}),
        sensitive=["owner"],
    )


def _rules() -> RuleSet:
    rule = Rule(
        name="nameNotEmpty",
        doc=None,
        kind=RuleKind.CONDITION,
        mode=RuleMode.WRITE,
        type="CEL",
        tags=None,
        params=None,
        expr="size(message.name) > 0",
        on_success=None,
        on_failure="ERROR",
        disabled=False,
    )
    return RuleSet(migration_rules=None, domain_rules=[rule])


def test_metadata_and_rules_are_stored_returned_and_part_of_the_id(
    registry_client: SchemaRegistryClient, registry_url: str, subject: str
) -> None:
    client = registry_client
    first = client.register_schema_full_response(
        subject, Schema(USER, "AVRO", metadata=_metadata("alice"), rule_set=_rules())
    )
    got = httpx.get(f"{registry_url}/subjects/{subject}/versions/latest").json()
    assert got["metadata"] == {
        "tags": {"User.name": ["PII"]},
        "properties": {"owner": "alice", "team": "freight"},
        "sensitive": ["owner"],
    }
    assert got["ruleSet"]["domainRules"][0]["expr"] == "size(message.name) > 0"
    by_id = httpx.get(f"{registry_url}/schemas/ids/{first.schema_id}").json()
    assert by_id["metadata"]["properties"]["owner"] == "alice"
    assert by_id["ruleSet"]["domainRules"][0]["name"] == "nameNotEmpty"

    # The same text with other metadata is another schema: a new version under a new id.
    second = client.register_schema_full_response(subject, Schema(USER, "AVRO", metadata=_metadata("bob")))
    assert second.schema_id != first.schema_id
    assert httpx.get(f"{registry_url}/subjects/{subject}/versions").json() == [1, 2]

    # Registering it again without a contract inherits the latest version's: nothing new.
    again = httpx.post(f"{registry_url}/subjects/{subject}/versions", json={"schema": USER})
    assert again.json()["id"] == second.schema_id

    # The newest version with given metadata, through the client's own call.
    alice = client.get_latest_with_metadata(subject, {"owner": "alice"})
    assert (alice.version, alice.schema_id) == (1, first.schema_id)
    bob = client.get_latest_with_metadata(subject, {"owner": "bob", "team": "freight"})
    assert bob.version == 2

    # A lookup without a contract matches the text; with one, only that contract.
    found = httpx.post(f"{registry_url}/subjects/{subject}", json={"schema": USER}).json()
    assert found["version"] == 2
    found = httpx.post(
        f"{registry_url}/subjects/{subject}",
        json={"schema": USER, "metadata": got["metadata"], "ruleSet": got["ruleSet"]},
    ).json()
    assert found["version"] == 1


def test_new_version_without_contract_inherits_the_latest(registry_url: str, subject: str) -> None:
    meta = {"properties": {"owner": "carol"}}
    httpx.post(f"{registry_url}/subjects/{subject}/versions", json={"schema": USER, "metadata": meta})
    v2 = httpx.post(f"{registry_url}/subjects/{subject}/versions", json={"schema": USER_V2})
    assert v2.status_code == 200, v2.text
    latest = httpx.get(f"{registry_url}/subjects/{subject}/versions/latest").json()
    assert latest["version"] == 2
    assert latest["metadata"] == meta


def test_metadata_query_misses_and_bad_parameters_are_clear(registry_url: str, subject: str) -> None:
    httpx.post(f"{registry_url}/subjects/{subject}/versions", json={"schema": USER})
    miss = httpx.get(f"{registry_url}/subjects/{subject}/metadata", params={"key": "owner", "value": "x"})
    assert miss.status_code == 404
    assert miss.json()["error_code"] == 40402
    assert "owner=x" in miss.json()["message"]
    url = f"{registry_url}/subjects/{subject}/metadata"
    uneven = httpx.get(url, params={"key": ["a", "b"], "value": "1"})
    assert uneven.status_code == 400
    assert "one value per key" in uneven.json()["message"]
    nobody = httpx.get(url.replace("/metadata", "-nobody/metadata"), params={"key": "a", "value": "1"})
    assert nobody.json()["error_code"] == 40401


def test_malformed_contract_is_an_invalid_schema_naming_the_field(registry_url: str, subject: str) -> None:
    bad_meta = httpx.post(
        f"{registry_url}/subjects/{subject}/versions",
        json={"schema": USER, "metadata": {"properties": {"owner": ["not", "a", "string"]}}},
    )
    assert bad_meta.status_code == 422
    assert bad_meta.json()["error_code"] == 42201
    assert "metadata is not valid at properties.owner" in bad_meta.json()["message"]
    bad_rule = httpx.post(
        f"{registry_url}/subjects/{subject}/versions",
        json={"schema": USER, "ruleSet": {"domainRules": [{"name": "r", "kind": "EXPLODE"}]}},
    )
    assert bad_rule.status_code == 422
    assert "ruleSet is not valid at domainRules.0.kind" in bad_rule.json()["message"]
    assert httpx.get(f"{registry_url}/subjects/{subject}/versions").status_code == 404


def test_config_keeps_normalize_beside_the_level(registry_url: str, subject: str) -> None:
    httpx.post(f"{registry_url}/subjects/{subject}/versions", json={"schema": USER})
    put = httpx.put(f"{registry_url}/config/{subject}", json={"compatibility": "FULL", "normalize": True})
    assert put.json() == {"compatibility": "FULL", "normalize": True}
    assert httpx.get(f"{registry_url}/config/{subject}").json() == {
        "compatibilityLevel": "FULL",
        "normalize": True,
    }
    # normalize alone keeps the level; the level alone keeps normalize.
    httpx.put(f"{registry_url}/config/{subject}", json={"normalize": False})
    httpx.put(f"{registry_url}/config/{subject}", json={"compatibility": "BACKWARD"})
    assert httpx.get(f"{registry_url}/config/{subject}").json() == {
        "compatibilityLevel": "BACKWARD",
        "normalize": False,
    }
    neither = httpx.put(f"{registry_url}/config/{subject}", json={})
    assert neither.status_code == 422
    assert neither.json()["error_code"] == 42203
    # Config-level contracts are not kept: refused with the reason, never silently dropped.
    refused = httpx.put(f"{registry_url}/config/{subject}", json={"defaultMetadata": {"properties": {}}})
    assert refused.status_code == 422
    assert refused.json()["error_code"] == 42205
    assert "defaultMetadata in /config are not supported" in refused.json()["message"]
    assert httpx.delete(f"{registry_url}/config/{subject}").status_code == 200
    assert httpx.get(f"{registry_url}/config/{subject}").json()["error_code"] == 40408


def test_avro_text_is_served_in_javas_attribute_order(registry_url: str, subject: str) -> None:
    shuffled = {"fields": [{"type": "string", "name": "name"}], "name": "User", "type": "record"}
    reply = httpx.post(f"{registry_url}/subjects/{subject}/versions", json={"schema": json.dumps(shuffled)})
    assert reply.status_code == 200, reply.text
    served = httpx.get(f"{registry_url}/subjects/{subject}/versions/latest").json()["schema"]
    assert served == USER
