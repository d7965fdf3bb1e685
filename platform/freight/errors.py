"""Freight's exception hierarchy.

Every error a user can hit says what was wrong and what to do about it. Callers catch `FreightError` for
anything raised by the platform; the subclasses let programs react to one kind (a missing object, a broker
that is down) without parsing messages. The CLI maps them to documented exit codes (see `exit_code`).
"""

from __future__ import annotations


class FreightError(Exception):
    """Base class of every error raised by Freight."""

    exit_code = 1


class ConfigError(FreightError, ValueError):
    """A setting or argument is invalid; the message names it and the accepted values."""

    exit_code = 2


class StoreTrustError(ConfigError):
    """A store config or proxy from Kafka asks for more than this process's configuration allows.

    Raised for a store root, S3 endpoint, bucket or owner host outside the local allow-lists, and for a
    pickled proxy that names another cluster (docs/security.md). The message names the setting that allows it.
    """


class ServiceUnavailableError(FreightError, ConnectionError):
    """A service (Kafka broker, schema registry, S3 endpoint) cannot be reached."""

    exit_code = 3


class BrokerUnavailableError(ServiceUnavailableError):
    """No Kafka broker answered at the configured bootstrap address."""


class DevServiceError(FreightError):
    """A local development service (`freight dev`) failed to start, stop or report."""

    exit_code = 4


class MissingToolError(DevServiceError):
    """A program the local services need (java, mvn) is not installed."""


class PortInUseError(DevServiceError):
    """A port that was asked for explicitly is already taken by another process."""


class StoreError(FreightError):
    """Base class of errors raised by stores and connectors."""

    exit_code = 5


class InvalidKeyError(StoreError, ValueError):
    """A store key is malformed or would escape the store (path traversal, absolute path, too long)."""


class ObjectNotFoundError(StoreError, KeyError):
    """The object is not in the store (never written, or deleted)."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable.
        return str(self.args[0]) if self.args else "object not found"


class ObjectEvictedError(ObjectNotFoundError):
    """The object was evicted; its event is still in Kafka, but the bytes are gone."""


class IntegrityError(StoreError):
    """The bytes read back do not match the checksum recorded when they were written."""


class SerializationError(FreightError, TypeError):
    """An object cannot be serialized or deserialized with the chosen serializer."""

    exit_code = 6


class PickleDisabledError(SerializationError):
    """Pickle was needed but is disabled: it runs arbitrary code on load."""


class SchemaError(FreightError):
    """A schema is invalid, incompatible, or unknown to the registry."""

    exit_code = 7


class EventDecodeError(FreightError, ValueError):
    """A Kafka record is not a valid Freight event (wrong magic byte, unknown schema id, garbage)."""

    exit_code = 8


class DeliveryError(FreightError):
    """Kafka did not acknowledge a produced event before the delivery deadline."""

    exit_code = 9


class StreamBufferError(FreightError, RuntimeError):
    """A stream buffer was used in a way its state does not allow (see `freight.buffer`)."""


class ChunkNotReadyError(StreamBufferError):
    """`pop_chunk()` was called while no chunk is ready; check `has_chunk_ready()` first."""


class ResumeStateError(StreamBufferError):
    """Persisted chunk-resume state is malformed, too large for commit metadata, or from another policy."""


class PipelineError(FreightError):
    """A processing pipeline stopped: a stage failed under the `fail` policy, or its source, dead-letter sink
    or offset commit failed. `freight.pipeline.StageError` (a subclass) carries the failed item's report."""


class StoreAccessError(StoreError, PermissionError):
    """The store refused this process's credentials or permissions (S3 access denied, unknown keys)."""


class BucketNotFoundError(StoreError):
    """The S3 bucket named in the store options does not exist at the endpoint."""


class StoreReadOnlyError(StoreError):
    """This process may read the store but not write it (a tensor store is written by its owner only)."""
