"""The benchmark's fixed, seeded dataset: produced once to a fresh topic, with its truth."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from app.cli.order_generator import GeneratorConfig, OrderGenerator
from app.cli.generate import print_progress
from app.kafka.clients import Connection
from app.kafka.producer import produce
from app.kafka.topics import ensure_topic

Windows = dict[str, dict[str, list[int]]]  # store -> window start (ISO) -> [orders, revenue]


@dataclass
class Dataset:
    topic: str
    events: int
    stores: int
    truth: Windows
    unkeyed: "Dataset | None" = None  # the same orders without keys (bench --unkeyed)


def produce_dataset(broker: str, topic: str, events: int, stores: int, seed: int,
                    partitions: int = 8, span_s: int = 3600, keys: str = "raw") -> Dataset:
    """Valid orders only (every contender must count all of them), created over the last
    ``span_s`` seconds, Zipf-skewed over ``stores``; keyed by the raw store id (the direct
    path) unless ``keys`` says otherwise (the same orders for the same seed)."""
    gen = OrderGenerator(GeneratorConfig(stores=stores, seed=seed, keys=keys))
    now_ms = int(time.time() * 1000)

    async def run() -> None:
        conn = Connection(broker)
        await ensure_topic(conn, topic, partitions)
        await produce(conn, topic, gen.events(events, now_ms - span_s * 1000, span_s * 1000,
                                                now_ms), progress=print_progress)

    asyncio.run(run())
    truth = {store: {start: [w["orders"], w["revenue"]] for start, w in s["windows"].items()}
             for store, s in gen.truth.stores.items()}
    return Dataset(topic, events, stores, truth)


def diff_windows(truth: Windows, got: Windows) -> list[str]:
    """Differences between a contender's windows and the truth (empty = correct)."""
    problems = []
    for store in sorted(set(truth) | set(got)):
        want, have = truth.get(store, {}), got.get(store, {})
        for start in sorted(set(want) | set(have)):
            if want.get(start) != have.get(start):
                problems.append(f"{store} {start}: got {have.get(start)} want {want.get(start)}")
    return problems
