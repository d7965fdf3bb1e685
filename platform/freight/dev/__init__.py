"""Local development services: a real Kafka broker from jars, the schema registry, an S3 endpoint."""

from freight.dev.kafka_broker import BrokerOptions, KafkaBroker
from freight.dev.services import DevOptions, ServiceStatus, down, register_service, status, up

__all__ = [
    "BrokerOptions",
    "DevOptions",
    "KafkaBroker",
    "ServiceStatus",
    "down",
    "register_service",
    "status",
    "up",
]
