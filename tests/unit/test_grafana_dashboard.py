"""infra/grafana/freight-dashboard.json queries only what Freight exports, with each metric's real labels.

A dashboard that names a metric nobody exports shows an empty panel forever; this test catches a rename on
either side. It also checks that every `freight_*` metric has a panel, and each query's suffix matches the
metric's type (`_total` counters, `_bucket` histograms, bare gauges).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client.metrics import MetricWrapperBase

from freight import metrics

DASHBOARD = Path(__file__).resolve().parents[2] / "infra" / "grafana" / "freight-dashboard.json"
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def _exported() -> dict[str, tuple[str, set[str]]]:
    found = {}
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase) and value._name.startswith("freight_"):
            found[value._name] = (value._type, set(value._labelnames))
    return found


def _queries() -> list[str]:
    doc = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in doc["panels"] if p["type"] != "row" for t in p["targets"]]


def _split(series: str, exported: dict[str, tuple[str, set[str]]]) -> tuple[str, str]:
    for name in sorted(exported, key=len, reverse=True):
        if series.startswith(name):
            return name, series[len(name) :]
    raise AssertionError(f"the dashboard queries {series!r}, which freight.metrics does not export")


def test_every_query_names_an_exported_metric_with_its_type_suffix_and_labels() -> None:
    exported = _exported()
    assert len(exported) >= 15, exported
    for expr in _queries():
        series = re.findall(r"\bfreight_[a-z_]+", expr)
        assert series, f"query without a freight metric: {expr}"
        grouped = set()
        for clause in re.findall(r"by \(([^)]*)\)", expr):
            grouped |= {label.strip() for label in clause.split(",")}
        for s in series:
            name, suffix = _split(s, exported)
            kind, labels = exported[name]
            assert suffix in SUFFIXES[kind], f"{s}: a {kind} is queried as {name}{SUFFIXES[kind][0]}"
            allowed = labels | ({"le"} if suffix == "_bucket" else set())
            assert grouped <= allowed, (
                f"{expr}: {name} has labels {sorted(labels)}, not {sorted(grouped - allowed)}"
            )


def test_every_exported_metric_has_a_panel() -> None:
    queried = {_split(s, _exported())[0] for e in _queries() for s in re.findall(r"\bfreight_[a-z_]+", e)}
    assert set(_exported()) - queried == set()


def test_dashboard_is_importable_grafana_json() -> None:
    doc = json.loads(DASHBOARD.read_text())
    assert doc["uid"] and doc["title"] == "Freight"
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids))
    for p in doc["panels"]:
        if p["type"] != "row":
            assert p["datasource"]["uid"] == "${datasource}" and p["targets"]
