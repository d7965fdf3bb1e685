"""What a consumer knows about each item besides the object: Kafka coordinates and stream position."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from freight.schemas.events import ArrayDescriptor


@dataclass(frozen=True, slots=True)
class ItemMetadata:
    """Coordinates and metadata of one stream item, available without resolving its object."""

    topic: str
    partition: int
    offset: int
    timestamp: int  # Kafka record timestamp, epoch ms
    stream: str
    sequence: int
    producer_id: str
    created_at: int  # when the producer created the event, epoch ms
    metadata: dict[str, str] = field(default_factory=dict)
    store: str | None = None
    key: str | None = None
    size: int | None = None  # bytes in the store (None for inline objects)
    inline: bool = False
    descriptor: ArrayDescriptor | None = None
    end_of_stream: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
