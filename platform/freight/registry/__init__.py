"""Confluent-compatible Schema Registry server whose state is the compacted `_schemas` Kafka topic.

Run it with `freight registry serve --bootstrap host:port --port 8081` (`freight dev up` starts one). Clients
are confluent-kafka's own `SchemaRegistryClient`, `AvroSerializer` and `AvroDeserializer`, unchanged.

Modules, one job each:

| module         | job                                                                          |
|----------------|------------------------------------------------------------------------------|
| `avro_schema`  | parse/validate Avro (apache `avro` and `fastavro`), references, normalization  |
| `compat`       | the seven compatibility levels over avro's reader/writer checker              |
| `records`      | the JSON keys and values of the `_schemas` topic                              |
| `state`        | the in-memory state, rebuilt by applying records in log order                 |
| `planner`      | Confluent's rules: from state + request to the records to write (or an error) |
| `log`          | topic setup, the reader thread, the fenced transactional writer              |
| `service`      | operations: reads from state, writes through the log, writer takeover        |
| `forward`      | relaying writes to the instance that holds the writer role                    |
| `app`          | the HTTP API (FastAPI), error mapping, auth and size gate                     |
| `server`       | running an instance (uvicorn) (the `freight dev` service: freight.dev.registry_service) |
| `client`       | a small HTTP client for Freight's CLI                                          |

Design: one fenced writer, chosen by the log itself
----------------------------------------------------
State is event-sourced: every change is a record in a single-partition compacted topic, and every instance
applies the records in log order, so instances that read the same log hold the same state, and a restarted
instance rebuilds it by reading from the beginning. Keys are chosen so that the latest record per key carries
everything that key contributes (a version, a subject's config, ...): the compacted log rebuilds the same
state as the full log (tests/unit/test_registry_replay.py checks this for random histories).

Ids must never be given to two different schemas, also with several instances writing concurrently. Writes
go through a Kafka transactional producer whose `transactional.id` (`freight-registry-<topic>`) is shared by
all instances. Becoming the writer means calling `init_transactions`, which makes the broker fence every
earlier producer with that id: from then on their commits fail, and a transaction they had open is aborted.
The new writer commits a WRITER record (its URL and instance id) and reads the log up to it, so its state is
complete; it then plans each write (next id, next version, compatibility) from that state and commits it. A
commit that succeeds proves no other instance wrote in between (it would have fenced us), so an id or version
computed from our state cannot collide; a fenced commit is planned again after taking over again.

Why not elect a leader with a consumer group and forward to it (Confluent's design)? Group membership alone
does not stop a deposed leader whose write is still in flight (a paused process, a partition) from landing
it after the new leader's - and with compaction, a stale record with the same key can even replace a good
one. Broker-side fencing rules that out instead of making it unlikely. Forwarding is kept, for speed: an
instance that is not the writer relays writes to the URL in the latest WRITER record, so the role stays put
instead of moving (one `init_transactions` round trip, ~50-600 ms) on every write; if the writer does not
answer, the instance takes the role over itself, and an instance fenced in the middle of a client's write
relays that write to the instance that fenced it rather than fencing it back. Reads are served by every
instance from its own state; a write returns only after the instance that received it has read the written
record back (a relayed write waits for the writer's offset), so clients read their own writes on the
instance they used.

Costs: each write is one Kafka transaction (~5-15 ms on a laptop broker); re-registering an existing schema
(what serializers do at start-up) needs no write and is answered by any instance.
"""
