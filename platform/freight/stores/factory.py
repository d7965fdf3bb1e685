"""`build_connector`: a connector from its kind and options, as store configs name them.

Kinds are imported lazily ("tensor" needs torch, "s3" needs s3fs), so `import freight.stores` stays light.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from freight.connectors.protocol import Connector
from freight.errors import ConfigError

#: kind -> "module:Class"; extend with `register_connector`.
CONNECTOR_KINDS: dict[str, str] = {
    "file": "freight.connectors.file:FileConnector",
    "s3": "freight.connectors.s3:S3Connector",
    "memory": "freight.connectors.memory:MemoryConnector",
    "tensor": "freight.connectors.tensor:TensorConnector",
}
_EXTRAS = {"tensor": "torch", "s3": "s3fs"}


def register_connector(kind: str, target: str) -> None:
    """Make `kind` buildable from configs; `target` is 'module:Class' with a `from_config` classmethod."""
    if ":" not in target:
        raise ConfigError(f"connector target {target!r} must be 'module:Class'")
    CONNECTOR_KINDS[kind] = target


def connector_class(kind: str) -> Any:
    """The connector class of `kind`; a ConfigError names the known kinds or the missing extra."""
    target = CONNECTOR_KINDS.get(kind)
    if target is None:
        raise ConfigError(
            f"unknown connector kind {kind!r}; known kinds: {', '.join(sorted(CONNECTOR_KINDS))} "
            "(or add one with freight.stores.register_connector)"
        )
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        extra = _EXTRAS.get(kind)
        hint = f"; install it with pip install 'freight[{extra}]'" if extra == "torch" else ""
        raise ConfigError(f"the {kind} connector needs the package {exc.name!r}{hint}") from exc
    return getattr(module, class_name)


def build_connector(kind: str, options: Mapping[str, Any]) -> Connector:
    """A connector of `kind` built from its non-secret `options` (what its `config()` returned)."""
    connector: Connector = connector_class(kind).from_config(options)
    return connector
