"""Thin typed layer over confluent-kafka: client configuration, admin helpers, error translation."""

from freight.kafka.admin import KafkaAdmin, PartitionOffsets, TopicInfo
from freight.kafka.clients import consumer_config, produce_when_room, producer_config
from freight.kafka.errors import translate_kafka_error

__all__ = [
    "KafkaAdmin",
    "PartitionOffsets",
    "TopicInfo",
    "consumer_config",
    "produce_when_room",
    "producer_config",
    "translate_kafka_error",
]
