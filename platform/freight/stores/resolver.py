"""Finding stores by (cluster, name) in any process: stores registered locally first, then the catalog.

A producer or consumer registers its stores here, so proxies resolved in that process use them directly.
In any other process the first proxy of a store rebuilds it from the cluster's store catalog (with
credentials from that process's environment, and only within its allow-list: `freight.stores.trust`) and
caches it, so later proxies cost a dictionary lookup.

Which cluster a proxy may make this process talk to is this process's decision, not the proxy's: a
pickled proxy names the cluster its event came from, and the resolver uses it only if this process was
configured for that cluster (its environment, or the settings of a producer, consumer or evictor built in
this process), or the cluster is listed in `FREIGHT_ALLOWED_CLUSTERS`. Otherwise it refuses with
`StoreTrustError`: a worker never sends its credentials to a broker that a pickle names.
"""

from __future__ import annotations

import threading
from functools import cache
from typing import TYPE_CHECKING, Any

from freight.config import FreightSettings, load_settings
from freight.errors import StoreTrustError

if TYPE_CHECKING:
    from freight.schemas.events import ArrayDescriptor
    from freight.stores.catalog import StoreCatalog
    from freight.stores.serializers import SerializerRegistry
    from freight.stores.store import Store


def cluster_id(bootstrap: str) -> str:
    """A canonical name of a cluster from its bootstrap list (order, case and spaces do not matter)."""
    hosts = {h.strip().lower().removeprefix("plaintext://") for h in bootstrap.split(",") if h.strip()}
    return ",".join(sorted(hosts))


class StoreResolver:
    """Process-wide map from (cluster, store name) to `Store` (see the module docstring)."""

    def __init__(self) -> None:
        self._stores: dict[tuple[str | None, str], Store] = {}
        self._catalogs: dict[str, StoreCatalog] = {}
        self._clusters: dict[str, FreightSettings] = {}
        self._lock = threading.Lock()
        self._serializers: SerializerRegistry | None = None

    def trust(self, settings: FreightSettings) -> None:
        """Accept proxies of `settings`' cluster, resolved with these settings (called by the producer,
        consumer and evictor this process builds: their settings are this process's configuration)."""
        with self._lock:
            self._clusters.setdefault(cluster_id(settings.kafka_bootstrap), settings)

    def register(self, store: Store, *, settings: FreightSettings | None = None) -> None:
        """Make `store` resolvable by name in this process (replacing a previous one of that name).

        Args:
            store: The store.
            settings: The cluster whose events name it (its settings become trusted); None registers it
                for events of any cluster.
        """
        cluster = None if settings is None else cluster_id(settings.kafka_bootstrap)
        if settings is not None:
            self.trust(settings)
        with self._lock:
            self._stores[(cluster, store.name)] = store

    def forget(self, name: str) -> None:
        """Drop every store called `name` from this process's cache."""
        with self._lock:
            for key in [k for k in self._stores if k[1] == name]:
                del self._stores[key]

    def stores(self) -> list[Store]:
        """The stores this process has registered or built."""
        with self._lock:
            return list(self._stores.values())

    def settings_for(self, bootstrap: str | None) -> FreightSettings:
        """The settings to use for a proxy whose event came from `bootstrap` (None: this process's own).

        Raises:
            StoreTrustError: this process is not configured for that cluster and does not allow it.
        """
        if bootstrap is None:
            return load_settings()
        wanted = cluster_id(bootstrap)
        with self._lock:
            known = self._clusters.get(wanted)
        if known is not None:
            return known  # before reading the environment: that costs milliseconds, on every proxy
        own = load_settings()
        if wanted == cluster_id(own.kafka_bootstrap):
            self.trust(own)  # a worker configured by its environment: read it once, not per proxy
            return own
        if wanted in {cluster_id(c) for c in own.allowed_clusters}:
            allowed = own.model_copy(update={"kafka_bootstrap": bootstrap})
            self.trust(allowed)
            return allowed
        raise StoreTrustError(
            f"this proxy's event came from the Kafka cluster at {bootstrap}, but this process is configured "
            f"for {own.kafka_bootstrap}; it does not send its credentials to a cluster a proxy names. Set "
            f"FREIGHT_KAFKA_BOOTSTRAP={bootstrap} for this worker, or allow the cluster with "
            f"FREIGHT_ALLOWED_CLUSTERS='{bootstrap}' (';' between clusters)"
        )

    def store(self, name: str, *, bootstrap: str | None = None) -> Store:
        """The store called `name` for events of `bootstrap`: a registered one, else built from the catalog.

        Args:
            name: The store name an event carries.
            bootstrap: The cluster the event came from (a proxy's); None means this process's own.

        Returns:
            The store, cached for later proxies.
        """
        settings = self.settings_for(bootstrap)
        cluster = cluster_id(settings.kafka_bootstrap)
        found = self._stores.get((cluster, name)) or self._stores.get((None, name))
        if found is not None:
            return found
        with self._lock:
            found = self._stores.get((cluster, name)) or self._stores.get((None, name))
            if found is not None:
                return found
            catalog = self._catalogs.get(cluster)
            if catalog is None:
                from freight.stores.catalog import StoreCatalog

                catalog = self._catalogs[cluster] = StoreCatalog(settings)
            store = catalog.build(name)
            self._stores[(cluster, name)] = store
            return store

    def catalogs(self) -> list[StoreCatalog]:
        """The catalogs this process has read (their `rejected` records feed `freight status`)."""
        with self._lock:
            return list(self._catalogs.values())

    def deserialize_inline(self, serializer: str, data: bytes, descriptor: ArrayDescriptor | None) -> Any:
        """Decode an object that travelled inside its event.

        Args:
            serializer: The serializer name the event recorded.
            data: The inline bytes.
            descriptor: The array descriptor, if the object is an array.
        """
        registry = self._serializers
        if registry is None:
            from freight.stores.serializers import SerializerRegistry

            registry = self._serializers = SerializerRegistry(allow_pickle=load_settings().allow_pickle)
        if serializer == "bytes" and type(data) is bytes and registry.plain_bytes:
            return data  # what the built-in bytes serializer returns, without the lookup (once per record)
        return registry.deserialize(serializer, data, descriptor)


@cache
def default_resolver() -> StoreResolver:
    """The resolver of this process."""
    return StoreResolver()
