"""The benchmark's fixed, seeded dataset: produced once to a fresh topic, with its truth."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Iterable, Iterator

from app.cli.order_generator import GeneratorConfig, OrderGenerator
from app.cli.generate import print_progress
from app.kafka.clients import Connection
from app.kafka.offsets import log_bounds
from app.kafka.producer import produce
from app.kafka.topics import ensure_topic

# store -> window start (ISO) -> [orders, revenue, items]
Windows = dict[str, dict[str, list[int]]]


@dataclass
class Dataset:
    topic: str
    events: int
    stores: int
    truth: Windows
    ends: dict[int, int] = field(default_factory=dict)  # partition -> log end once produced
    unkeyed: "Dataset | None" = None  # the same orders without keys (bench --unkeyed)
    hostile: int = 0  # hostile events mixed in (each must be dead-lettered, none counted)
    with_hostile: "Dataset | None" = None  # the same orders plus hostile ones (--hostile)

    @property
    def records(self) -> int:
        """Every record of the topic: what a contender's throughput is counted in."""
        return self.events + self.hostile


def mix_hostile(valid: Iterable[tuple[bytes | None, bytes]], share: float
                ) -> Iterator[tuple[bytes | None, bytes | None]]:
    """``valid`` with hostile events spread evenly so they are ``share`` of all records
    (tests/hostile_corpus.py: undecodable, deep, huge ids, control characters, ...)."""
    from tests.hostile_corpus import hostile_stream

    hostile = hostile_stream(10**9)
    owed = 0.0
    for i, record in enumerate(valid):
        yield record
        owed += share / (1 - share)
        while owed >= 1:
            owed -= 1
            case = next(hostile)
            keyed = i % 2 or case.value is None  # a record needs a key or a value
            yield (b"s-hostile" if keyed else None), case.value


def produce_dataset(broker: str, topic: str, events: int, stores: int, seed: int,
                    partitions: int = 8, span_s: int = 3600, keys: str = "raw",
                    hostile: float = 0.0) -> Dataset:
    """Valid orders only (every contender must count all of them), created over the last
    ``span_s`` seconds, Zipf-skewed over ``stores``; keyed by the raw store id (the direct
    path) unless ``keys`` says otherwise (the same orders for the same seed)."""
    gen = OrderGenerator(GeneratorConfig(stores=stores, seed=seed, keys=keys))
    now_ms = int(time.time() * 1000)
    sent = 0
    ends: dict[int, int] = {}

    async def run() -> None:
        nonlocal sent, ends
        conn = Connection(broker)
        await ensure_topic(conn, topic, partitions)
        records = gen.events(events, now_ms - span_s * 1000, span_s * 1000, now_ms)
        sent = await produce(conn, topic, mix_hostile(records, hostile) if hostile else records,
                             progress=print_progress)
        ends = {p: hi for p, (_lo, hi) in (await log_bounds(conn, topic)).items()}

    asyncio.run(run())
    truth = {store: {start: [w["orders"], w["revenue"], w["items"]]
                     for start, w in s["windows"].items()}
             for store, s in gen.truth.stores.items()}
    return Dataset(topic, events, stores, truth, ends, hostile=sent - events)


def diff_windows(truth: Windows, got: Windows) -> list[str]:
    """Differences between a contender's windows and the truth (empty = correct)."""
    problems = []
    for store in sorted(set(truth) | set(got)):
        want, have = truth.get(store, {}), got.get(store, {})
        for start in sorted(set(want) | set(have)):
            if want.get(start) != have.get(start):
                problems.append(f"{store} {start}: got {have.get(start)} want {want.get(start)}")
    return problems
