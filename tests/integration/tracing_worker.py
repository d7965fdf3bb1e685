"""A worker process for test_tracing.py: resolves pickled proxies with FREIGHT_TRACING=1 and prints its spans.

Reads the pickled proxies from the file named by argv[1]; prints one JSON object per finished span.
"""

from __future__ import annotations

import json
import pickle
import sys

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from freight.stream import extract


def main() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)  # FREIGHT_TRACING=1: Freight instruments itself with the global one
    with open(sys.argv[1], "rb") as f:
        proxies = pickle.load(f)
    for proxy in proxies:
        extract(proxy)
    for span in exporter.get_finished_spans():
        parent = span.parent
        print(
            json.dumps(
                {
                    "name": span.name,
                    "trace": format(span.context.trace_id, "032x"),
                    "span": format(span.context.span_id, "016x"),
                    "parent": None if parent is None else format(parent.span_id, "016x"),
                }
            )
        )


if __name__ == "__main__":
    main()
