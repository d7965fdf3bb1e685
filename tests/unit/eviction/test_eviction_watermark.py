"""The per-partition eviction watermark: min committed offset over the retaining groups, groups that never
committed hold everything, no retaining group evicts nothing, and the reasons shown for what blocks."""

from __future__ import annotations

from freight.eviction import RetentionPolicy, partition_watermark, retaining_groups, topic_watermarks
from freight.eviction.watermark import is_internal_group
from freight.kafka.checkpoint import EVICTOR_GROUP

T = "frames"


def test_watermark_is_the_slowest_group_and_names_it() -> None:
    offsets = {"fast": {(T, 0): 90}, "slow": {(T, 0): 40}}
    wm = partition_watermark(T, 0, low=0, high=100, groups=["fast", "slow"], offsets=offsets)
    assert wm.watermark == 40 and wm.retained == 60
    assert [(g.group, g.committed, g.lag, g.holds_watermark) for g in wm.groups] == [
        ("fast", 90, 10, False),
        ("slow", 40, 60, True),
    ]
    assert wm.blocking() == ["group slow at offset 40 (lag 60)"]


def test_a_group_that_never_committed_holds_everything() -> None:
    offsets = {"fast": {(T, 0): 90}}
    wm = partition_watermark(T, 0, low=10, high=100, groups=["fast", "new"], offsets=offsets)
    assert wm.watermark == 10  # the log start: nothing below it can be read anyway
    assert wm.blocking() == ["group new never committed here: it holds everything"]
    # Committed on another partition only: this one is still held whole.
    offsets = {"half": {(T, 1): 50}}
    assert partition_watermark(T, 0, 0, 100, ["half"], offsets).watermark == 0
    assert partition_watermark(T, 1, 0, 100, ["half"], offsets).watermark == 50


def test_no_retaining_group_evicts_nothing() -> None:
    wm = partition_watermark(T, 0, low=5, high=100, groups=[], offsets={})
    assert wm.watermark == 5
    assert "no retaining group" in wm.blocking()[0]


def test_committed_offsets_are_clamped_to_the_log() -> None:
    # Below the log start (Kafka retention dropped records the group never read) and past the end (a stale
    # commit on a recreated topic): neither moves the watermark outside [low, high].
    offsets = {"old": {(T, 0): 3}, "odd": {(T, 0): 500}}
    assert partition_watermark(T, 0, 20, 100, ["old"], offsets).watermark == 20
    assert partition_watermark(T, 0, 20, 100, ["odd"], offsets).watermark == 100
    caught_up = partition_watermark(T, 0, 20, 100, ["odd"], offsets)
    assert caught_up.blocking() == [] and caught_up.retained == 0


def test_retaining_groups_named_committed_excluded_and_internal() -> None:
    offsets = {
        "a": {(T, 0): 1},
        "b": {("other", 0): 1},  # committed on another topic only
        "c": {(T, 1): 1},
        EVICTOR_GROUP: {(T, 0): 1},  # the evictor's own checkpoint never holds itself back
        "freight-replay-1234": {(T, 0): 1},
    }
    both = RetentionPolicy(topic=T, groups=("named",), exclude_groups=("c",))
    assert retaining_groups(both, offsets) == ["named", "a"]
    named_only = RetentionPolicy(topic=T, groups=("named", "b"), all_committed_groups=False)
    assert retaining_groups(named_only, offsets) == ["named", "b"]
    assert retaining_groups(RetentionPolicy(topic=T), offsets) == ["a", "c"]
    # A Freight-internal group named explicitly is honoured.
    explicit = RetentionPolicy(topic=T, groups=(EVICTOR_GROUP,), all_committed_groups=False)
    assert retaining_groups(explicit, offsets) == [EVICTOR_GROUP]
    assert is_internal_group("freight-evictor-2") and not is_internal_group("ingest")
    assert is_internal_group("custom-evictor", evictor_group="custom-evictor")


def test_topic_watermarks_per_partition() -> None:
    offsets = {"a": {(T, 0): 7, (T, 1): 3}, "b": {(T, 0): 5}}
    marks = topic_watermarks(RetentionPolicy(topic=T), {0: (0, 10), 1: (2, 4)}, offsets)
    assert [(m.partition, m.watermark) for m in marks] == [(0, 5), (1, 2)]  # b never committed on 1
