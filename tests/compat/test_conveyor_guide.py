"""Conveyor's streaming guide (seeds/001), run on Freight through `freight.compat.conveyor`.

The guide's examples are kept as written; only the import changes, stand-ins replace what the guide leaves
undefined (`send_notification`, `get_document_list`, `classify_item`, ...: small local functions) or needs
the internet (`fetch_from_api`), and delays are shortened. Timings are not asserted here (see
conveyor_timing.py); orders that do not depend on timing are. The last test runs a Conveyor pipeline over a
Freight consumer on the real broker.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from freight.compat.conveyor import PipelineContext, batch_task, single_task
from freight.config import FreightSettings
from freight.errors import ConfigError


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@single_task
async def variable_delay_task(item: tuple[str, float]) -> str:
    name, delay = item
    await asyncio.sleep(delay)
    return f"Processed {name}"


ITEMS = [("fast", 0.05), ("medium", 0.25), ("slow", 1.0), ("quick", 0.1)]


def test_ordered_streaming_demo() -> None:
    async def ordered_streaming_demo() -> list[str]:
        items = ITEMS
        pipeline = variable_delay_task
        out = []
        async for result in pipeline(items):
            out.append(result)
        return out

    assert run(ordered_streaming_demo()) == [
        "Processed fast",
        "Processed medium",
        "Processed slow",
        "Processed quick",
    ]


def test_as_completed_demo_and_execution_modes() -> None:
    async def as_completed_demo() -> list[str]:
        pipeline = variable_delay_task
        return [result async for result in pipeline.as_completed(ITEMS)]

    done = run(as_completed_demo())
    assert sorted(done) == sorted(f"Processed {n}" for n, _ in ITEMS)
    assert done[-1] == "Processed slow"  # 1 s against at most 0.25 s for the others

    async def modes() -> tuple[list[str], list[str]]:
        pipeline = variable_delay_task
        fast_pipeline = pipeline.with_execution_mode("as_completed")
        by_mode = [r async for r in fast_pipeline(ITEMS)]
        context = PipelineContext(execution_mode="as_completed")
        contextualized_pipeline = pipeline.with_context(**context.__dict__)
        by_context = [r async for r in contextualized_pipeline(ITEMS)]
        return by_mode, by_context

    by_mode, by_context = run(modes())
    assert by_mode[-1] == by_context[-1] == "Processed slow"


def test_real_time_monitoring_filters_none() -> None:
    random.seed(7)
    sent: list[dict[str, Any]] = []

    async def send_notification(alert: dict[str, Any]) -> None:
        sent.append(alert)

    @single_task
    async def fetch_stock_price(symbol: str) -> dict:  # type: ignore[type-arg]
        await asyncio.sleep(random.uniform(0.01, 0.1))
        return {"symbol": symbol, "price": random.uniform(50, 200), "timestamp": time.time()}

    @single_task
    async def check_alerts(price_data: dict) -> dict | None:  # type: ignore[type-arg]
        """Filter for prices that trigger alerts"""
        if price_data["price"] > 150:
            return {**price_data, "alert": "HIGH_PRICE"}
        return None

    async def real_time_monitoring() -> None:
        symbols = ["AAPL", "GOOGL", "MSFT", "AMZN", "TSLA"] * 4
        pipeline = fetch_stock_price | check_alerts
        async for alert in pipeline(symbols):
            print(f"ALERT: {alert['symbol']} at ${alert['price']:.2f}")
            await send_notification(alert)

    run(real_time_monitoring())
    assert sent and all(a["price"] > 150 and a["alert"] == "HIGH_PRICE" for a in sent)


def test_progress_tracking(tmp_path: Path) -> None:
    paths = []
    for i in range(6):
        path = tmp_path / f"doc{i}.txt"
        path.write_bytes(b"x" * (1000 * (i + 1)))
        paths.append(str(path))

    def get_document_list() -> list[str]:
        return paths

    progress_seen: list[float] = []

    async def update_progress_bar(progress: float) -> None:
        progress_seen.append(progress)

    @single_task
    async def process_document(doc_path: str) -> dict:  # type: ignore[type-arg]
        """Process a document (variable processing time)"""
        size = os.path.getsize(doc_path)
        processing_time = size / 1000000
        await asyncio.sleep(processing_time)
        return {"path": doc_path, "size": size, "processed_at": time.time()}

    async def batch_document_processing() -> None:
        documents = get_document_list()
        pipeline = process_document
        total_docs = len(documents)
        processed_count = 0
        async for result in pipeline(documents):
            processed_count += 1
            progress = (processed_count / total_docs) * 100
            print(f"[{progress:5.1f}%] Processed: {result['path']}")
            await update_progress_bar(progress)

    run(batch_document_processing())
    assert progress_seen[-1] == 100.0 and len(progress_seen) == 6


def test_search_interface_fans_a_list_out_to_the_next_task() -> None:
    random.seed(3)

    @single_task
    async def search_database(query: str) -> list[dict]:  # type: ignore[type-arg]
        """Search returns results of varying relevance"""
        await asyncio.sleep(random.uniform(0.01, 0.2))
        return [
            {"query": query, "result": f"Result {i}", "relevance": random.random()}
            for i in range(random.randint(1, 5))
        ]

    @single_task
    async def rank_result(result: dict) -> dict:  # type: ignore[type-arg]
        """Add ranking information"""
        await asyncio.sleep(0.01)
        return {**result, "ranked": True, "score": result["relevance"] * 100}

    async def search_interface() -> list[dict[str, Any]]:
        queries = ["python", "async", "streaming", "pipeline", "batch"]
        pipeline = search_database | rank_result
        out = []
        async for result in pipeline.as_completed(queries):
            print(f"  {result['query']}: {result['result']} (score: {result['score']:.1f})")
            out.append(result)
        return out

    results = run(search_interface())
    assert {r["query"] for r in results} == {"python", "async", "streaming", "pipeline", "batch"}
    assert all(r["ranked"] for r in results) and len(results) >= 5


def test_collection_examples() -> None:
    @single_task
    async def price(symbol: str) -> dict:  # type: ignore[type-arg]
        return {"symbol": symbol, "price": float(len(symbol)), "score": float(len(symbol))}

    async def collect() -> tuple[float, list[dict[str, Any]]]:
        pipeline = price
        symbols = ["A", "BB", "CCC"]
        all_prices = await pipeline(symbols).collect()
        average_price = sum(p["price"] for p in all_prices) / len(all_prices)
        results = await pipeline(symbols).collect()
        sorted_results = sorted(results, key=lambda x: x["score"], reverse=True)
        return average_price, sorted_results

    average, ranked = run(collect())
    assert average == 2.0 and [r["symbol"] for r in ranked] == ["CCC", "BB", "A"]


def test_buffered_streaming_with_a_batch_task() -> None:
    sizes: list[int] = []

    @single_task
    async def create_item(i: int) -> dict:  # type: ignore[type-arg]
        return {"id": i}

    @batch_task(max_size=10, min_size=1)
    async def buffered_processor(items: list[dict]) -> list[dict]:  # type: ignore[type-arg]
        """Process in controlled batches"""
        sizes.append(len(items))
        await asyncio.sleep(0.05)
        return [{"processed": True, **item} for item in items]

    async def controlled_streaming() -> list[dict[str, Any]]:
        large_dataset = range(200)
        pipeline = create_item | buffered_processor
        return [result async for result in pipeline(large_dataset)]

    results = run(controlled_streaming())
    assert [r["id"] for r in results] == list(range(200)) and all(r["processed"] for r in results)
    assert max(sizes) <= 10


def test_multi_source_streaming_keeps_a_final_list_whole() -> None:
    @single_task
    async def fetch_from_api(endpoint: str) -> list[dict]:  # type: ignore[type-arg]
        """Fetch data from API endpoint (stand-in: no network in tests)"""
        await asyncio.sleep(0.01)
        return [{"endpoint": endpoint, "i": i} for i in range(3)]

    async def multi_source_processing() -> list[dict[str, Any]]:
        endpoints = [f"https://api{i}.example.com/data" for i in (1, 2, 3)]
        pipeline = fetch_from_api
        all_data: list[dict[str, Any]] = []
        async for data_batch in pipeline.as_completed(endpoints):
            print(f"Received {len(data_batch)} items from source")
            all_data.extend(data_batch)
        return all_data

    assert len(run(multi_source_processing())) == 9


def test_conditional_streaming() -> None:
    async def classify_item(item: dict[str, Any]) -> str:
        return "urgent" if item["n"] % 3 == 0 else "normal"

    def get_route(category: str) -> str:
        return "fast_track" if category == "urgent" else "bulk_track"

    async def fast_process(item: dict[str, Any]) -> dict[str, Any]:
        return {**item, "done": "fast"}

    async def bulk_process(item: dict[str, Any]) -> dict[str, Any]:
        return {**item, "done": "bulk"}

    async def default_process(item: dict[str, Any]) -> dict[str, Any]:
        return {**item, "done": "default"}

    @single_task
    async def classify_and_route(item: dict) -> dict:  # type: ignore[type-arg]
        category = await classify_item(item)
        return {**item, "category": category, "route": get_route(category)}

    @single_task
    async def route_processor(item: dict) -> dict:  # type: ignore[type-arg]
        route = item["route"]
        if route == "fast_track":
            return await fast_process(item)
        elif route == "bulk_track":
            return await bulk_process(item)
        else:
            return await default_process(item)

    async def conditional_streaming() -> list[dict[str, Any]]:
        mixed_data = [{"n": n} for n in range(6)]
        pipeline = classify_and_route | route_processor
        return [result async for result in pipeline(mixed_data)]

    out = run(conditional_streaming())
    assert [r["done"] for r in out] == ["fast", "bulk", "bulk", "fast", "bulk", "bulk"]


def test_memory_conscious_streaming_from_an_async_generator() -> None:
    @single_task
    async def validate_item(item: dict) -> dict:  # type: ignore[type-arg]
        return item

    @single_task
    def transform_item(item: dict) -> dict:  # type: ignore[type-arg]  # a plain function: runs in a thread
        return {**item, "data": item["data"].upper()}

    @single_task
    async def save_item(item: dict) -> int:  # type: ignore[type-arg]
        return int(item["id"])

    async def memory_efficient_processing() -> int:
        async def data_generator() -> Any:
            for i in range(3000):
                yield {"id": i, "data": f"item_{i}"}
                if i % 1000 == 0:
                    await asyncio.sleep(0)

        pipeline = validate_item | transform_item | save_item
        processed_count = 0
        async for _result in pipeline(data_generator()):
            processed_count += 1
        return processed_count

    assert run(memory_efficient_processing()) == 3000


def test_graceful_degradation_skips_failed_items() -> None:
    @single_task(on_error="skip_item")
    async def fault_tolerant_task(item: dict) -> dict:  # type: ignore[type-arg]
        """Continue streaming even if some items fail"""
        if item.get("corrupted"):
            raise ValueError("Corrupted data")
        return {"processed": True, **item}

    async def resilient_streaming() -> list[dict[str, Any]]:
        mixed_data = [{"id": 1, "valid": True}, {"id": 2, "corrupted": True}, {"id": 3, "valid": True}]
        pipeline = fault_tolerant_task
        return [result async for result in pipeline(mixed_data)]

    assert [r["id"] for r in run(resilient_streaming())] == [1, 3]


def test_error_tracking_in_streams() -> None:
    @single_task
    async def step(item: int) -> dict:  # type: ignore[type-arg]
        return {"error": "odd"} if item % 2 else {"value": item}

    async def streaming_with_error_tracking() -> tuple[int, int]:
        pipeline, data = step, range(10)
        success_count = 0
        error_count = 0
        async for result in pipeline(data):
            if result.get("error"):
                error_count += 1
            else:
                success_count += 1
        return success_count, error_count

    assert run(streaming_with_error_tracking()) == (5, 5)


@pytest.mark.parametrize("bad", ["skip_everything", 3])
def test_bad_on_error_names_the_valid_values(bad: Any) -> None:
    with pytest.raises(ConfigError, match=r"fail_pipeline.*skip_item.*skip_batch"):
        single_task(on_error=bad)(lambda x: x)


def test_a_conveyor_pipeline_over_a_freight_consumer(
    stream_settings: FreightSettings, topic: str, make_producer: Callable[..., Any], group_id: str
) -> None:
    from freight.stream import StreamConsumer

    producer = make_producer()
    for i in range(20):
        producer.send(topic, {"n": i}, serializer="json")
    producer.flush()

    @single_task
    async def double(item: Any) -> int:
        return int(item["n"]) * 2

    async def main() -> list[int]:
        with StreamConsumer(topic, group_id, settings=stream_settings, until_high_watermark=True) as c:
            return await double(c).collect()

    assert run(main()) == [2 * i for i in range(20)]
