"""The store catalog: store configs in a compacted Kafka topic, so any process can rebuild a store by name.

Each record is keyed by store name, its value an Avro `freight.v1.StoreConfig` (connector kind and
non-secret options only; credentials come from each process's environment). The topic is a
`CompactedTable`, read incrementally; since anyone who can write it can write a config
(docs/security.md):

- the first config read for a name is kept; a later, different one is reported and ignored unless the
  records are signed (`FREIGHT_CATALOG_KEY`), so an entry cannot be silently replaced;
- a tombstone does not make a known store unresolvable (only a signed one removes it);
- a record that is not a valid config is skipped and reported, never fatal to the other stores;
- `build` checks the config against this process's allow-list (`freight.stores.trust`) before anything
  is opened, created or connected to.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from freight.config import FreightSettings
from freight.errors import ConfigError
from freight.kafka.table import CompactedTable, RejectedRecord
from freight.schemas import STORE_CONFIG
from freight.schemas.events import now_ms
from freight.stores.config import StoreConfig
from freight.stores.trust import check_store_config

if TYPE_CHECKING:
    from freight.schemas.serde import EventSerde
    from freight.stores.store import Store

STORES_TOPIC = "_freight_stores"


def store_location(config: StoreConfig) -> tuple[str, str]:
    """Where a store's objects are (kind and root, endpoint/bucket/prefix, owner host): what a later catalog
    record may not change without a signature. Other options (a tensor owner's port, fsync) may change."""
    opts = config.options
    if config.connector == "file":
        where = str(opts.get("root"))
    elif config.connector == "s3":
        where = f"{opts.get('endpoint_url') or 'AWS'} s3://{opts.get('bucket')}/{opts.get('prefix', '')}"
    elif config.connector == "tensor":
        where = f"owner host {str(opts.get('address') or '').rsplit(':', 1)[0]} table {opts.get('name')}"
    else:
        where = json.dumps(opts, sort_keys=True)
    return config.connector, where


class StoreCatalog:
    """Publish and look up store configs on one cluster.

    Args:
        settings: The cluster, registry, allow-lists and catalog key of this process.
        serde: The Avro serde to reuse (built from `settings` when first needed).
    """

    def __init__(self, settings: FreightSettings, *, serde: EventSerde | None = None) -> None:
        self.settings = settings
        self._serde = serde
        self._published: dict[str, str] = {}  # name -> JSON of what this process last published
        self.table: CompactedTable[StoreConfig] = CompactedTable(
            settings,
            STORES_TOPIC,
            decode=self._decode,
            what="store config",
            pin_first=True,
            identity=store_location,
            tombstones="signed-only",
        )

    @property
    def serde(self) -> EventSerde:
        if self._serde is None:
            from freight.schemas.serde import EventSerde

            self._serde = EventSerde.from_settings(self.settings)
        return self._serde

    def _decode(self, key: str, value: bytes) -> StoreConfig:
        config = StoreConfig.from_avro(self.serde.decode_record(STORES_TOPIC, value))
        if config.name != key:
            raise ValueError("the record's key and store name differ")
        return config

    def publish(self, config: StoreConfig) -> None:
        """Write a store config (once per distinct config per process); waits for the broker's ack."""
        fingerprint = config.model_dump_json()
        if self._published.get(config.name) == fingerprint:
            return
        known = self.refresh().get(config.name)
        if known is not None and not self.table.signed and store_location(known) != store_location(config):
            raise ConfigError(
                f"store {config.name!r} is already in the store catalog at {store_location(known)[1]}, and "
                f"readers keep that entry (a catalog entry cannot be silently moved: docs/security.md); this "
                f"one is at {store_location(config)[1]}. Give this store another name, or sign catalog "
                "records with FREIGHT_CATALOG_KEY to move it"
            )
        record = {
            "name": config.name,
            "connector": config.connector,
            "options": json.dumps(config.options, sort_keys=True),
            "checksum": config.checksum,
            "updated_at": now_ms(),
        }
        self.table.put(config.name, self.serde.encode_record(STORES_TOPIC, STORE_CONFIG, record))
        self._published[config.name] = fingerprint

    def refresh(self) -> dict[str, StoreConfig]:
        """Read what was added to the catalog topic since the last call; return name -> config."""
        return self.table.refresh()

    @property
    def rejected(self) -> list[RejectedRecord]:
        """Catalog records skipped as garbage, unsigned or conflicting (for `freight status`)."""
        return self.table.rejected

    def lookup(self, name: str) -> StoreConfig:
        """The config of store `name` (reading the topic on if it is not known yet)."""
        found = self.table.get(name)
        if found is None:
            found = self.refresh().get(name)
        if found is None:
            known = ", ".join(sorted(self.table.refresh())) or "none"
            raise ConfigError(
                f"store {name!r} is not in the store catalog (topic {STORES_TOPIC!r} on "
                f"{self.settings.kafka_bootstrap}; known stores: {known}). The producer publishes it on "
                "first send; check that this process uses the same cluster, or pass the store to the "
                "consumer."
            )
        return found

    def build(self, name: str) -> Store:
        """A working `Store` for `name`, once its config passed this process's allow-list.

        Raises:
            StoreTrustError: the config names a root, endpoint, bucket or host this process does not allow.
            ConfigError: no config of that name was published.
        """
        from freight.stores.store import Store

        config = self.lookup(name)
        check_store_config(config, self.settings)
        return Store.from_config(config)

    def close(self) -> None:
        """Close the catalog reader."""
        self.table.close()
