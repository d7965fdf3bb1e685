"""A manual-commit session: one owner at a time takes over a `StreamConsumer`'s rebalance events.

The chunk driver (`stream/chunks.py`) and the pipeline's consumer source (`pipeline/consumer_source.py`)
both commit their own low watermarks and must hear about partitions gained and lost before the
consumer's other listeners do. `CommitSession` is the one way they do it: it installs itself as the consumer's
`rebalance_listener`, passes every event on to the listener it replaced, refuses a second live owner, and
puts the old listener back when released.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from freight.errors import ConfigError

if TYPE_CHECKING:
    from freight.stream.consumer import RebalanceListener, StreamConsumer

TP = tuple[str, int]


class PartitionOwner(Protocol):
    """What a session's owner is told (after the consumer's own bookkeeping, before chained listeners)."""

    def partitions_assigned(self, partitions: list[TP]) -> None: ...

    def partitions_revoked(self, partitions: list[TP]) -> None: ...


class _HasListener(Protocol):
    rebalance_listener: RebalanceListener | None


class CommitSession:
    """The consumer's rebalance listener while `owner` reads from it (see the module docstring).

    Args:
        consumer: The consumer taken over (anything with a `rebalance_listener` attribute).
        owner: Told about assignments and revocations first.
        what: What the owner is, for the error when another session is live (e.g. "a chunks() iterator").

    Raises:
        ConfigError: another session on this consumer is live.
    """

    live: bool
    what: str

    def __init__(self, consumer: _HasListener, owner: PartitionOwner, what: str) -> None:
        current = consumer.rebalance_listener
        if isinstance(current, CommitSession) and current.live:
            raise ConfigError(
                f"this StreamConsumer already feeds {current.what}; close that one first "
                "(one owner of a consumer's commits at a time)"
            )
        self.consumer = consumer
        self.owner = owner
        self.what = what
        self.chained = current
        self.live = True
        consumer.rebalance_listener = self

    def on_assign(self, consumer: StreamConsumer, partitions: list[TP]) -> None:
        """Tell the owner, then the listener this session replaced."""
        self.owner.partitions_assigned(partitions)
        if self.chained is not None:
            self.chained.on_assign(consumer, partitions)

    def on_revoke(self, consumer: StreamConsumer, partitions: list[TP]) -> None:
        """Tell the owner (the place to commit what is finished), then the listener this session replaced."""
        self.owner.partitions_revoked(partitions)
        if self.chained is not None:
            self.chained.on_revoke(consumer, partitions)

    def release(self) -> None:
        """End the session: the consumer gets its previous listener back (if this one is still installed)."""
        self.live = False
        if self.consumer.rebalance_listener is self:
            self.consumer.rebalance_listener = self.chained
