"""Freight: stream large objects through Kafka.

Small Avro events travel through Kafka topics; the bulk bytes they describe live in a store (filesystem, S3,
memory, GPU). Consumers in consumer groups receive lazy proxies, and the bytes move only between the store
and the process that resolves the proxy.
"""

import logging

logging.getLogger("freight").addHandler(logging.NullHandler())

__version__ = "0.1.0"
