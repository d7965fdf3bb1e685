"""Replaying the log rebuilds the state exactly, compacted or not, and ids never change meaning.

Random sequences of registry writes are planned by the real planner against the state, their records are
applied (through their byte encoding, as the reader sees them) and kept as a log. The full log, the log as
compaction leaves it (latest record per key, tombstones kept) and the log after tombstones expire must all
rebuild the same state.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.registry_cases import CANDIDATES, HISTORY, LEVELS

from freight.registry.api.http import STATUS
from freight.registry.compat import CompatibilityLevel
from freight.registry.errors import RegistryError
from freight.registry.models import RegisterSchemaRequest
from freight.registry.planner import Planner
from freight.registry.records import Record, decode_record
from freight.registry.state import Mode, RegistryState

SCHEMAS = [*HISTORY, *CANDIDATES.values()]
SUBJECTS = ["a-value", "b-value", "c-value"]

subjects = st.sampled_from(SUBJECTS)
register = st.tuples(st.just("register"), subjects, st.integers(0, len(SCHEMAS) - 1))
operations = st.one_of(
    register,
    register,
    register,
    st.tuples(st.just("delete_version"), subjects, st.sampled_from(["1", "2", "3", "latest"]), st.booleans()),
    st.tuples(st.just("delete_subject"), subjects, st.booleans()),
    st.tuples(st.just("set_config"), st.sampled_from([None, *SUBJECTS]), st.sampled_from(LEVELS)),
    st.tuples(st.just("delete_config"), st.sampled_from([None, *SUBJECTS])),
    st.tuples(st.just("set_mode"), subjects, st.sampled_from(["READWRITE", "READONLY"])),
)


def plan(planner: Planner, state: RegistryState, op: tuple[Any, ...]) -> list[Record]:
    kind, *args = op
    if kind == "register":
        body = RegisterSchemaRequest.model_validate({"schema": SCHEMAS[args[1]]})
        return planner.register(state, args[0], body).records
    if kind == "delete_version":
        return planner.delete_version(state, args[0], args[1], permanent=args[2]).records
    if kind == "delete_subject":
        return planner.delete_subject(state, args[0], permanent=args[1]).records
    if kind == "set_config":
        return planner.set_config(state, args[0], CompatibilityLevel.parse(args[1])).records
    if kind == "delete_config":
        return planner.delete_config(state, args[0]).records
    return planner.set_mode(state, args[0], Mode.parse(args[1]), force=False).records


def replay(log: list[tuple[bytes, bytes | None]]) -> RegistryState:
    state = RegistryState()
    for key, value in log:
        state.apply(decode_record(key, value))
    return state


def compacted(
    log: list[tuple[bytes, bytes | None]], *, expire_tombstones: bool
) -> list[tuple[bytes, bytes | None]]:
    last = {key: i for i, (key, _) in enumerate(log)}
    return [
        (key, value)
        for i, (key, value) in enumerate(log)
        if last[key] == i and not (expire_tombstones and value is None)
    ]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
@given(st.booleans(), st.lists(operations, min_size=15, max_size=60))
def test_any_history_replays_to_the_same_state_compacted_or_not(
    lenient: bool, ops: list[tuple[Any, ...]]
) -> None:
    if lenient:  # half of the histories allow any change, so that they grow long
        ops = [("set_config", None, "NONE"), *ops]
    planner = Planner(max_schema_bytes=1 << 20)
    state = RegistryState()
    log: list[tuple[bytes, bytes | None]] = []
    meaning: dict[int, str] = {}
    for op in ops:
        try:
            records = plan(planner, state, op)
        except RegistryError as exc:
            assert 400 <= STATUS[exc.problem][0] < 500, exc.message
            continue
        for record in records:
            state.apply(record)
            log.append(record.encode())
        for schema_id, content in state.contents.items():
            assert meaning.setdefault(schema_id, content.fingerprint) == content.fingerprint, (
                "an id was reused"
            )
    expected = state.digest()
    assert replay(log).digest() == expected
    assert replay(compacted(log, expire_tombstones=False)).digest() == expected
    assert replay(compacted(log, expire_tombstones=True)).digest() == expected


def test_a_garbage_record_is_refused_by_the_decoder() -> None:
    for key, value in [
        (b"not json", b"{}"),
        (b'{"keytype":"NOPE"}', b"{}"),
        (b'{"keytype":"SCHEMA"}', b"{}"),
    ]:
        try:
            decode_record(key, value)
        except ValueError:
            continue
        raise AssertionError(f"{key!r} was accepted")
    assert json.loads(SCHEMAS[0])  # the strategies above draw from valid schemas
