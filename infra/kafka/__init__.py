"""Local Apache Kafka infrastructure (pom, KRaft config template, log config), shipped as package data."""
