"""Compatibility levels decide which reader/writer pairs the Apache avro checker must accept."""

from __future__ import annotations

import avro.schema
import pytest
from tests.registry_cases import CANDIDATES, HISTORY, LEVELS, REJECTED

from freight.registry.compat import CompatibilityLevel, PreviousSchema, check

PREVIOUS = [PreviousSchema(i + 1, avro.schema.parse(text)) for i, text in enumerate(HISTORY)]


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("candidate", sorted(CANDIDATES))
def test_each_level_rejects_exactly_its_breaking_changes(level: str, candidate: str) -> None:
    messages = check(CompatibilityLevel.parse(level), avro.schema.parse(CANDIDATES[candidate]), PREVIOUS)
    assert bool(messages) == (candidate in REJECTED[level]), messages


def test_history_is_compatible_under_every_level() -> None:
    for level in LEVELS:
        assert check(CompatibilityLevel.parse(level), PREVIOUS[1].schema, PREVIOUS[:1]) == []


def test_reasons_name_the_version_the_rule_and_the_field() -> None:
    messages = check(CompatibilityLevel.BACKWARD, avro.schema.parse(CANDIDATES["ADD_NO_DEFAULT"]), PREVIOUS)
    assert "version 2" in messages[0]
    assert "READER_FIELD_MISSING_DEFAULT_VALUE" in messages[0]
    assert "/fields/2" in messages[0] and ": c" in messages[0]
    assert messages[-1] == "compatibility level: BACKWARD"


def test_forward_reasons_say_which_side_reads() -> None:
    messages = check(CompatibilityLevel.FORWARD, avro.schema.parse(CANDIDATES["A_TO_LONG"]), PREVIOUS)
    assert messages[0].startswith("version 2 cannot read data written by the new schema")
    assert "TYPE_MISMATCH" in messages[0]


def test_nothing_to_check_against_means_compatible() -> None:
    assert check(CompatibilityLevel.FULL_TRANSITIVE, PREVIOUS[0].schema, []) == []


@pytest.mark.parametrize("raw", ["full", " Backward_Transitive ", "NONE"])
def test_level_names_are_case_insensitive(raw: str) -> None:
    assert CompatibilityLevel.parse(raw).value == raw.strip().upper()


@pytest.mark.parametrize("raw", ["SIDEWAYS", "", None, 3, "BACKWARDS"])
def test_unknown_levels_are_refused_with_the_valid_names(raw: object) -> None:
    with pytest.raises(ValueError, match="FULL_TRANSITIVE"):
        CompatibilityLevel.parse(raw)
