"""Finding stores by name in any process: stores registered locally first, then the store-config topic.

A producer registers its stores here, so proxies resolved in the producing process use them directly. In
any other process the first proxy of a store rebuilds it from the compacted store-config topic (with
credentials from that process's environment) and caches it, so later proxies cost a dictionary lookup.
"""

from __future__ import annotations

import threading
from functools import cache
from typing import TYPE_CHECKING, Any

from freight.config import load_settings

if TYPE_CHECKING:
    from freight.stores import SerializerRegistry, Store
    from freight.stream.catalog import StoreCatalog
    from freight.stream.proxy import ProxyRef


class StoreResolver:
    """Process-wide map from store name to `Store`."""

    def __init__(self) -> None:
        self._stores: dict[str, Store] = {}
        self._catalogs: dict[tuple[str, str], StoreCatalog] = {}
        self._lock = threading.Lock()
        self._serializers: SerializerRegistry | None = None

    def register(self, store: Store) -> None:
        """Make `store` resolvable by name in this process (replacing a previous one of that name)."""
        with self._lock:
            self._stores[store.name] = store

    def forget(self, name: str) -> None:
        with self._lock:
            self._stores.pop(name, None)

    def store(self, name: str, *, bootstrap: str | None = None, registry_url: str | None = None) -> Store:
        """The store called `name`: a registered one, else rebuilt from the store-config topic."""
        found = self._stores.get(name)
        if found is not None:
            return found
        settings = load_settings(kafka_bootstrap=bootstrap, schema_registry_url=registry_url)
        key = (settings.kafka_bootstrap, settings.schema_registry_url)
        with self._lock:
            found = self._stores.get(name)
            if found is not None:
                return found
            catalog = self._catalogs.get(key)
            if catalog is None:
                from freight.stream.catalog import StoreCatalog

                catalog = self._catalogs[key] = StoreCatalog(settings)
            store = catalog.build(name)
            self._stores[name] = store
            return store

    def deserialize_inline(self, ref: ProxyRef) -> Any:
        """Decode an object that travelled inside its event."""
        assert ref.inline is not None
        if self._serializers is None:
            from freight.stores import SerializerRegistry

            self._serializers = SerializerRegistry(allow_pickle=load_settings().allow_pickle)
        return self._serializers.deserialize(ref.serializer, ref.inline, ref.descriptor)


@cache
def default_resolver() -> StoreResolver:
    """The resolver of this process."""
    return StoreResolver()
