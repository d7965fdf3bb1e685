"""Load the Avro schemas shipped in `schemas/` (package `freight.avsc`) by record name."""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from typing import Any

OBJECT_EVENT = "object_event"
STORE_CONFIG = "store_config"


@cache
def schema_text(name: str) -> str:
    """The .avsc text of `name` (file stem, e.g. 'object_event')."""
    resource = files("freight.avsc").joinpath(f"{name}.avsc")
    if not resource.is_file():
        known = sorted(p.name[:-5] for p in files("freight.avsc").iterdir() if p.name.endswith(".avsc"))
        raise KeyError(f"no schema named {name!r}; shipped schemas: {', '.join(known)}")
    return resource.read_text(encoding="utf-8")


def schema_dict(name: str) -> dict[str, Any]:
    """The parsed JSON of a shipped schema (a fresh copy each call)."""
    parsed: dict[str, Any] = json.loads(schema_text(name))
    return parsed


def available() -> list[str]:
    """Names of every shipped schema."""
    return sorted(p.name[:-5] for p in files("freight.avsc").iterdir() if p.name.endswith(".avsc"))
