"""Translate confluent-kafka errors into Freight errors with actionable messages."""

from __future__ import annotations

from confluent_kafka import KafkaError, KafkaException

from freight.errors import BrokerUnavailableError, FreightError

_LOCAL_HOSTS = ("127.", "localhost", "[::1]", "::1")

_UNREACHABLE = {
    KafkaError._TRANSPORT,
    KafkaError._TIMED_OUT,
    KafkaError._ALL_BROKERS_DOWN,
    KafkaError._RESOLVE,
    KafkaError._MSG_TIMED_OUT,
}


def is_local(bootstrap: str) -> bool:
    """True if every bootstrap address is on this machine (then `freight dev up` is the likely fix)."""
    hosts = [h.strip().lower().removeprefix("plaintext://") for h in bootstrap.split(",") if h.strip()]
    return bool(hosts) and all(h.startswith(_LOCAL_HOSTS) for h in hosts)


def broker_unavailable(
    bootstrap: str, detail: str = "", cause: KafkaError | None = None
) -> BrokerUnavailableError:
    """The error for a bootstrap address where no broker answers, told apart by what librdkafka saw.

    Args:
        bootstrap: The configured bootstrap servers.
        detail: What was being done, for the message.
        cause: The last connection error librdkafka reported (error_cb), if any: an authentication or TLS
            failure, a name that does not resolve, and a refused connection each get their own advice.
    """
    extra = f" ({detail})" if detail else ""
    code = cause.code() if cause is not None else None
    if code == KafkaError._AUTHENTICATION:
        return BrokerAuthenticationError(
            f"the Kafka broker at {bootstrap} refused authentication{extra}: {cause.str() if cause else ''}. "
            "Check sasl.mechanism, sasl.username and sasl.password (FREIGHT_KAFKA_PROPERTIES, "
            "FREIGHT_KAFKA_CONFIG_FILE or --command-config)."
        )
    if code == KafkaError._SSL:
        return BrokerAuthenticationError(
            f"the TLS handshake with the Kafka broker at {bootstrap} failed{extra}: "
            f"{cause.str() if cause else ''}. Check security.protocol and the ssl.* properties (CA, "
            "certificate, key) in FREIGHT_KAFKA_PROPERTIES or the properties file."
        )
    if code == KafkaError._RESOLVE:
        return BrokerUnavailableError(
            f"the Kafka bootstrap host in {bootstrap} does not resolve{extra}: check the host name in "
            "FREIGHT_KAFKA_BOOTSTRAP (or --bootstrap)."
        )
    if is_local(bootstrap):
        return BrokerUnavailableError(
            f"no Kafka broker answered at {bootstrap}{extra}. Start the local one with `freight dev up` "
            "(or `make dev-up`), or set FREIGHT_KAFKA_BOOTSTRAP to a running cluster."
        )
    return BrokerUnavailableError(
        f"no Kafka broker answered at {bootstrap}{extra}: check the host and port in FREIGHT_KAFKA_BOOTSTRAP "
        "(or --bootstrap), that the cluster is up, and that this machine may reach it (firewall, VPN)."
    )


class BrokerAuthenticationError(BrokerUnavailableError):
    """The broker answered but refused this client's credentials or TLS handshake."""


class ConnectionErrors:
    """An `error_cb` for librdkafka clients that keeps the last connection-level error it reported.

    librdkafka reports authentication, TLS and resolution failures only through this callback; the call
    that then times out knows nothing of them. Clients keep one and pass `last` to `broker_unavailable`.
    """

    _RELEVANT = frozenset(
        {KafkaError._AUTHENTICATION, KafkaError._SSL, KafkaError._RESOLVE, KafkaError._TRANSPORT}
    )

    def __init__(self) -> None:
        self.last: KafkaError | None = None

    def __call__(self, err: KafkaError) -> None:
        if err.code() in self._RELEVANT and (
            self.last is None or self.last.code() not in (KafkaError._AUTHENTICATION, KafkaError._SSL)
        ):
            self.last = err  # an auth/TLS failure is the root cause; later transport errors follow from it


def translate_kafka_error(
    exc: BaseException, bootstrap: str, action: str, cause: KafkaError | None = None
) -> FreightError:
    """Map a KafkaException raised while doing `action` to a FreightError (`cause`: broker_unavailable's)."""
    err = exc.args[0] if isinstance(exc, KafkaException) and exc.args else None
    if isinstance(err, KafkaError):
        if err.code() in (KafkaError._AUTHENTICATION, KafkaError._SSL):
            return broker_unavailable(bootstrap, f"while trying to {action}", err)
        if err.code() in _UNREACHABLE:
            return broker_unavailable(bootstrap, f"while trying to {action}: {err.str()}", cause)
        return FreightError(f"Kafka refused to {action}: {err.name()}: {err.str()}")
    return FreightError(f"Kafka failed to {action}: {exc}")
