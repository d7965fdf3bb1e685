"""What the evictor does with each event below the watermark (modes, minimum age), which stored objects the
orphan sweep may consider, what status says blocks eviction, and the checkpoint's metadata."""

from __future__ import annotations

import pytest

from freight.connectors.protocol import ObjectInfo
from freight.eviction import Action, decide, is_producer_key, orphan_candidates, partition_watermark
from freight.eviction.orphans import sibling_topics
from freight.eviction.report import blocking_reasons
from freight.kafka.checkpoint import checkpoint_metadata, parse_checkpoint
from freight.schemas.events import EventKind, EvictionMode, InlinePayload, ObjectEvent, ObjectRef

NOW = 1_000_000_000


def _event(mode: EvictionMode | None, age_ms: int = 60_000, *, end: bool = False) -> ObjectEvent:
    if end:
        return ObjectEvent("s", 3, "p", kind=EventKind.END_OF_STREAM, created_at=NOW - age_ms)
    if mode is None:
        return ObjectEvent("s", 0, "p", inline=InlinePayload(b"x", "bytes"), created_at=NOW - age_ms)
    ref = ObjectRef("store", "t/p/000000000001", 10, "bytes", eviction=mode)
    return ObjectEvent("s", 0, "p", object=ref, created_at=NOW - age_ms)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        (EvictionMode.WATERMARK, Action.DELETE),
        (EvictionMode.ON_RESOLVE, Action.DELETE),  # never resolved: the evictor deletes it
        (EvictionMode.RETENTION, Action.SKIP),  # goes once Kafka retention drops its event
        (EvictionMode.NEVER, Action.KEEP),
    ],
)
def test_modes_below_the_watermark(mode: EvictionMode, expected: Action) -> None:
    assert decide(_event(mode), NOW, min_age_ms=0) is expected


def test_min_age_makes_young_objects_wait_but_not_kept_ones() -> None:
    assert decide(_event(EvictionMode.WATERMARK, age_ms=5_000), NOW, min_age_ms=10_000) is Action.WAIT
    assert decide(_event(EvictionMode.WATERMARK, age_ms=10_000), NOW, min_age_ms=10_000) is Action.DELETE
    assert decide(_event(EvictionMode.ON_RESOLVE, age_ms=1), NOW, min_age_ms=10_000) is Action.WAIT
    assert decide(_event(EvictionMode.NEVER, age_ms=1), NOW, min_age_ms=10_000) is Action.KEEP
    assert decide(_event(EvictionMode.RETENTION, age_ms=1), NOW, min_age_ms=10_000) is Action.SKIP


def test_nothing_to_delete_for_inline_end_of_stream_and_foreign_records() -> None:
    assert decide(_event(None), NOW, 0) is Action.SKIP
    assert decide(_event(None, end=True), NOW, 0) is Action.SKIP
    assert decide(None, NOW, 0) is Action.SKIP


def test_orphan_candidates_are_old_producer_keys_under_the_prefix() -> None:
    assert is_producer_key("frames/abc123/000000000007", "frames")
    assert is_producer_key("frames/id/with/slash/000000000007", "frames")
    assert not is_producer_key("frames/abc123/7", "frames")  # not a 12-digit counter
    assert not is_producer_key("frames/000000000007", "frames")  # no producer id
    assert not is_producer_key("frames2/abc/000000000007", "frames")
    assert not is_producer_key("frames/manual-upload.bin", "frames")
    listed = [
        ObjectInfo("frames/p/000000000001", 10, 100.0),
        ObjectInfo("frames/p/000000000002", 10, 200.0),
        ObjectInfo("frames/notes.txt", 10, 1.0),
    ]
    old, young = orphan_candidates(listed, "frames", cutoff_s=150.0)
    assert [o.key for o in old] == ["frames/p/000000000001"] and young == 1


def test_topics_sharing_a_key_prefix_are_scanned_together() -> None:
    long = "x" * 130
    assert sibling_topics(long + "a", [long + "b", "other"]) == [long + "a", long + "b"]
    assert sibling_topics("frames", ["frames", "frames2"]) == ["frames"]


def test_blocking_reasons_most_immediate_first() -> None:
    wm = partition_watermark("t", 0, 0, 100, ["slow"], {"slow": {("t", 0): 40}})
    assert blocking_reasons(wm, checkpoint=40, waiting=None, min_age_s=0) == [
        "group slow at offset 40 (lag 60)"
    ]
    behind = blocking_reasons(wm, checkpoint=10, waiting=None, min_age_s=0)
    assert behind[0].startswith("evictor behind: 30 offset(s)") and len(behind) == 2
    young = blocking_reasons(wm, checkpoint=10, waiting=(10, 4.0), min_age_s=600)
    assert young[0] == "min age: the object at offset 10 is 4s old, the policy keeps objects 10m"


def test_checkpoint_metadata_round_trip() -> None:
    ck = parse_checkpoint(42, checkpoint_metadata(40, ["s3-a", "files"]))
    assert (ck.offset, ck.watermark, ck.stores) == (42, 40, ("files", "s3-a"))
    assert ck.at_ms is not None
    assert parse_checkpoint(7, "not ours") == parse_checkpoint(7, None)
    many = checkpoint_metadata(1, [f"store-{i:04d}-{'x' * 40}" for i in range(200)])
    assert len(many) < 4096  # fits the broker's default offset.metadata.max.bytes


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, EvictionMode.ON_RESOLVE),  # ProxyStore's evict=True: one-time use
        (False, EvictionMode.NEVER),  # ProxyStore's evict=False: kept
        ("on-resolve", EvictionMode.ON_RESOLVE),
        ("Watermark", EvictionMode.WATERMARK),
        (EvictionMode.RETENTION, EvictionMode.RETENTION),
    ],
)
def test_eviction_mode_parse_accepts_names_and_proxystore_booleans(
    value: str | bool | EvictionMode, expected: EvictionMode
) -> None:
    assert EvictionMode.parse(value) is expected


@pytest.mark.parametrize("value", ["sometimes", 1, None])
def test_a_bad_eviction_mode_names_the_valid_ones(value: object) -> None:
    with pytest.raises(ValueError, match=r"use one of: watermark, on-resolve, retention, never.*True"):
        EvictionMode.parse(value)  # type: ignore[arg-type]
