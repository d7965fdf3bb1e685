"""The registry's HTTP layer (FastAPI), kept apart from its core (planner, service, log, state).

One router per resource (`subjects`, `schemas`, `config`, `mode`, `compatibility`, and `instance` for
Freight's own endpoints), the `Gate` middleware in front (auth, size, JSON bodies), the write relay to the
writer instance, and `http`: the one table from domain problems to HTTP statuses and Confluent error codes.
`freight.registry.app` assembles them.
"""
