"""Schemas shared by the registry tests: a two-version history and one candidate per kind of break.

History: S1 = {a: int}; S2 = {a: int = 0, b: string = ""} (compatible with S1 in every direction).
Candidates and the levels that must reject them:

| candidate      | change                          | breaks                                  |
|----------------|---------------------------------|-----------------------------------------|
| ADD_NO_DEFAULT | adds c: long without default    | BACKWARD vs the latest (new reader)     |
| B_NO_DEFAULT   | b loses its default             | BACKWARD vs S1 only (transitive)        |
| A_TO_LONG      | a widens int -> long            | FORWARD vs the latest (old reader)      |
| DROP_A         | a removed                       | FORWARD vs S1 only (a had no default)   |
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from freight.schemas import schema_text

DATA = Path(__file__).parent / "data"


def record(fields: list[dict[str, Any]], name: str = "Probe") -> str:
    return json.dumps({"type": "record", "name": name, "namespace": "freight.test", "fields": fields})


S1 = record([{"name": "a", "type": "int"}])
S2 = record([{"name": "a", "type": "int", "default": 0}, {"name": "b", "type": "string", "default": ""}])
HISTORY = [S1, S2]

CANDIDATES = {
    "ADD_NO_DEFAULT": record(
        [
            {"name": "a", "type": "int", "default": 0},
            {"name": "b", "type": "string", "default": ""},
            {"name": "c", "type": "long"},
        ]
    ),
    "B_NO_DEFAULT": record([{"name": "a", "type": "int"}, {"name": "b", "type": "string"}]),
    "A_TO_LONG": record(
        [{"name": "a", "type": "long", "default": 0}, {"name": "b", "type": "string", "default": ""}]
    ),
    "DROP_A": record([{"name": "b", "type": "string", "default": ""}]),
}

# level -> the candidates it must reject (every other candidate is accepted)
REJECTED = {
    "NONE": set(),
    "BACKWARD": {"ADD_NO_DEFAULT"},
    "BACKWARD_TRANSITIVE": {"ADD_NO_DEFAULT", "B_NO_DEFAULT"},
    "FORWARD": {"A_TO_LONG"},
    "FORWARD_TRANSITIVE": {"A_TO_LONG", "DROP_A"},
    "FULL": {"ADD_NO_DEFAULT", "A_TO_LONG"},
    "FULL_TRANSITIVE": {"ADD_NO_DEFAULT", "B_NO_DEFAULT", "A_TO_LONG", "DROP_A"},
}
LEVELS = list(REJECTED)


def object_event_v1() -> str:
    return schema_text("object_event")


def object_event_v2() -> str:
    """The event with two optional fields added: a BACKWARD (indeed FULL) compatible evolution."""
    return (DATA / "object_event_v2.avsc").read_text()


def reformatted(text: str) -> str:
    """The same schema written differently: indented, keys reversed, names fully qualified."""
    data = json.loads(text)

    def walk(node: Any, ns: str | None) -> Any:
        if isinstance(node, list):
            return [walk(n, ns) for n in node]
        if not isinstance(node, dict):
            return node
        out = dict(node)
        if node.get("type") in ("record", "enum", "fixed") and "." not in node["name"]:
            ns = node.get("namespace", ns)
            out.pop("namespace", None)
            out["name"] = f"{ns}.{node['name']}" if ns else node["name"]
        if "fields" in node:
            out["fields"] = [{**f, "type": walk(f["type"], ns)} for f in node["fields"]]
        if isinstance(node.get("type"), (dict, list)):
            out["type"] = walk(node["type"], ns)
        return dict(reversed(list(out.items())))

    return json.dumps(walk(data, None), indent=4)
