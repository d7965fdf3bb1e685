"""The registry's ASGI application: Confluent Schema Registry's REST API over `RegistryService`.

`create_app` assembles one router per resource (`freight.registry.api`: subjects, schemas, config, mode,
compatibility, and the instance's own endpoints) with the error handlers that map domain problems to
Confluent's codes (`api.http.STATUS`); `gated` puts the `Gate` middleware (auth, size limit, JSON bodies,
path conventions) and the HTTP metrics in front. Responses are `application/vnd.schemaregistry.v1+json`.
Write endpoints relay to the instance that holds the writer role (`api.writes`).
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.types import ASGIApp

from freight import __version__, metrics
from freight.registry.api import compatibility, config, instance, mode, schemas, subjects
from freight.registry.api.gate import Gate
from freight.registry.api.http import RegistryJSONResponse, install_error_handlers
from freight.registry.api.writes import WriteRelay
from freight.registry.service import RegistryService

#: The resources, in the order their routes are matched.
ROUTERS = (instance, subjects, schemas, config, compatibility, mode)


def create_app(service: RegistryService) -> FastAPI:
    """The ASGI application of one registry instance (wrapped by `gated`).

    Args:
        service: the instance's registry service.

    Returns:
        The FastAPI app (its OpenAPI description is the registry's API).
    """
    app = FastAPI(
        title="Freight Schema Registry",
        version=__version__,
        description="Confluent-compatible Schema Registry whose state is a compacted Kafka topic.",
        default_response_class=RegistryJSONResponse,
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(app)
    write = WriteRelay(service)
    for resource in ROUTERS:
        app.include_router(resource.router(service, write))
    app.state.forwarder = write.forwarder
    return app


def gated(service: RegistryService) -> ASGIApp:
    """The full ASGI app: the API behind the auth/size/content-type gate, with HTTP metrics.

    Args:
        service: the instance's registry service.

    Returns:
        The ASGI app to serve.
    """
    auth = service.options.auth.get_secret_value() if service.options.auth is not None else None
    gate = Gate(
        create_app(service), instance=service.instance, auth=auth, max_body=service.options.max_body_bytes
    )
    return metrics.instrument_asgi(gate, "registry")
