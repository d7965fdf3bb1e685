"""Drop-in layers for users coming from ProxyStore, Conveyor and mstar (see docs/migrating.md).

- `freight.compat.proxystore`: ProxyStore's streaming interface (`StreamProducer`, `StreamConsumer`, ...)
  over Freight's Kafka streams;
- `freight.compat.conveyor`: Conveyor's `single_task`, `batch_task`, `|`, `PipelineContext` over Freight's
  pipelines;
- `freight.compat.mstar`: mstar's `StreamBuffer` / `StreamChunk` over Freight's stream buffers.

Each module changes only what the user imports (and the broker or store construction where the concept does
not exist in Freight); the rest of their code keeps working. The semantic differences that remain are
listed in each module's docstring and in docs/migrating.md.
"""
