"""Confluent-compatible Schema Registry server whose state is the compacted `_schemas` Kafka topic."""
