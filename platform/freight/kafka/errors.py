"""Translate confluent-kafka errors into Freight errors with actionable messages."""

from __future__ import annotations

from confluent_kafka import KafkaError, KafkaException

from freight.errors import BrokerUnavailableError, FreightError

_UNREACHABLE = {
    KafkaError._TRANSPORT,
    KafkaError._TIMED_OUT,
    KafkaError._ALL_BROKERS_DOWN,
    KafkaError._RESOLVE,
    KafkaError._MSG_TIMED_OUT,
}


def broker_unavailable(bootstrap: str, detail: str = "") -> BrokerUnavailableError:
    """The error for a bootstrap address where no broker answers."""
    extra = f" ({detail})" if detail else ""
    return BrokerUnavailableError(
        f"no Kafka broker answered at {bootstrap}{extra}. Start the local one with `freight dev up` "
        "(or `make dev-up`), or set FREIGHT_KAFKA_BOOTSTRAP to a running cluster."
    )


def translate_kafka_error(exc: BaseException, bootstrap: str, action: str) -> FreightError:
    """Map a KafkaException raised while doing `action` to a FreightError."""
    err = exc.args[0] if isinstance(exc, KafkaException) and exc.args else None
    if isinstance(err, KafkaError):
        if err.code() in _UNREACHABLE:
            return broker_unavailable(bootstrap, f"while trying to {action}: {err.str()}")
        return FreightError(f"Kafka refused to {action}: {err.name()}: {err.str()}")
    return FreightError(f"Kafka failed to {action}: {exc}")
