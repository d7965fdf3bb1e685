"""What the evictor does with one event below the watermark, by the eviction mode chosen when it was sent.

- `watermark` (default): DELETE once the event is at least `min_age` old, else WAIT (the checkpoint stops
  there until the next pass);
- `on-resolve`: the first resolve deleted it; the evictor deletes what was never resolved, like `watermark`;
- `retention`: SKIP: it stays while its event is in Kafka; the orphan sweep deletes it once the event is gone;
- `never`: KEEP: recorded in the keep ledger (so it outlives its event), never deleted.

Inline objects, END_OF_STREAM and records that are not Freight events SKIP: they own nothing in a store.
"""

from __future__ import annotations

import enum

from freight.schemas.events import EventKind, EvictionMode, ObjectEvent


class Action(enum.StrEnum):
    DELETE = "delete"
    KEEP = "keep"
    SKIP = "skip"
    WAIT = "wait"


def decide(event: ObjectEvent | None, now_ms: int, min_age_ms: int) -> Action:
    """The action for `event` (None: not a Freight event), which lies below the watermark."""
    if event is None or event.kind is EventKind.END_OF_STREAM or event.object is None:
        return Action.SKIP
    mode = event.object.eviction
    if mode is EvictionMode.NEVER:
        return Action.KEEP
    if mode is EvictionMode.RETENTION:
        return Action.SKIP
    if now_ms - event.created_at < min_age_ms:
        return Action.WAIT
    return Action.DELETE
