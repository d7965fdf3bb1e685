"""The dead-letter header convention, shared by the consumer's bad-record policy and pipeline sinks.

A record written to a dead-letter topic carries `freight.error` (what went wrong) and
`freight.source.topic/partition/offset` (where the original record sits), so any reader of a dead-letter
topic, whoever wrote it, finds the reason and the source the same way.
"""

from __future__ import annotations

Headers = list[tuple[str, str | bytes | None]]


def source_headers(reason: str, topic: str, partition: int | None, offset: int | None) -> Headers:
    """The headers every dead-lettered record carries.

    Args:
        reason: What went wrong, e.g. ``"ValueError: bad magic byte"``.
        topic: The topic of the original record.
        partition: Its partition.
        offset: Its offset.

    Returns:
        Kafka headers, values encoded as UTF-8.
    """
    return [
        ("freight.error", reason.encode()),
        ("freight.source.topic", topic.encode()),
        ("freight.source.partition", str(partition).encode()),
        ("freight.source.offset", str(offset).encode()),
    ]
