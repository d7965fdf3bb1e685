"""Data contracts in the registry's state: validated shapes, identity, and hostile `_schemas` records."""

from __future__ import annotations

import json

import pytest

from freight.registry.avro_schema import parse_avro
from freight.registry.contracts import NO_CONTRACT, Contract, validate_contract
from freight.registry.records import KeyType, Record, RecordKey, SchemaValue
from freight.registry.state import RegistryState

USER = '{"type":"record","name":"User","fields":[{"name":"name","type":"string"}]}'


def test_a_schema_without_contract_keeps_its_fingerprint() -> None:
    parsed = parse_avro(USER)
    assert NO_CONTRACT.identity(parsed.fingerprint) == parsed.fingerprint
    with_meta = Contract({"properties": {"owner": "a"}}, None)
    assert with_meta.identity(parsed.fingerprint) != parsed.fingerprint
    # Key order inside the contract does not change the identity.
    swapped = Contract({"properties": {"b": "2", "a": "1"}}, None)
    same = Contract({"properties": {"a": "1", "b": "2"}}, None)
    assert swapped.identity("x") == same.identity("x")


@pytest.mark.parametrize(
    ("metadata", "rule_set", "where"),
    [
        ({"properties": {"k": 1}}, None, "metadata is not valid at properties.k"),
        ({"tags": {"f": "PII"}}, None, "metadata is not valid at tags.f"),
        ("owner=a", None, "metadata is not valid at (top level)"),
        (None, {"domainRules": [{"kind": "CONDITION"}]}, "ruleSet is not valid at domainRules.0.name"),
        (None, {"migrationRules": [{"name": "m", "mode": "SIDEWAYS"}]}, "migrationRules.0.mode"),
    ],
)
def test_wrong_shapes_name_the_field(metadata: object, rule_set: object, where: str) -> None:
    with pytest.raises(ValueError, match=where.replace("(", r"\(").replace(")", r"\)")):
        validate_contract(metadata, rule_set)


def test_unknown_fields_are_kept_and_nulls_dropped() -> None:
    contract = validate_contract(
        {"properties": {"a": "1"}, "sensitive": None, "future": {"x": 1}},
        {"domainRules": [{"name": "r", "type": "CEL", "expr": "true", "newField": 2}], "enableAt": "x"},
    )
    assert contract.metadata == {"properties": {"a": "1"}, "future": {"x": 1}}
    assert contract.rule_set == {
        "domainRules": [{"name": "r", "type": "CEL", "expr": "true", "newField": 2}],
        "enableAt": "x",
    }


def _record(version: int, schema_id: int, metadata: object) -> Record:
    parsed = parse_avro(USER)
    value = SchemaValue.model_validate(
        {
            "subject": "s",
            "version": version,
            "id": schema_id,
            "schema": parsed.text,
            "metadata": metadata,
            "fingerprint": parsed.fingerprint + str(version),
        }
    )
    return Record(RecordKey(KeyType.SCHEMA, "s", version), value)


def test_a_schemas_record_with_a_malformed_contract_is_skipped_not_fatal() -> None:
    state = RegistryState()
    state.apply(_record(1, 1, {"properties": {"owner": {"nested": "object"}}}))
    state.apply(_record(2, 2, {"properties": {"owner": "ok"}}))
    assert state.skipped == 1
    assert [e.version for e in state.subject_versions("s")] == [2]
    content = state.content(2)
    assert content is not None
    assert content.contract.properties_match({"owner": "ok"})
    assert json.loads(content.text)["name"] == "User"
